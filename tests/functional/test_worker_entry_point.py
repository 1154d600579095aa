"""`python -m queue_worker`'s main() and the HEALTHCHECK's, called in this process against a moto server.

The same code as the worker container's entry point, run here so that what it wires (settings, client,
handler, signal handlers, exit codes) is checked in-process too. SIGTERM is sent to this process once
the worker holds a job; the signal handlers main() installs are restored after each test.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from queue_worker import app, attempts, health
from queue_worker.telemetry import Telemetry
from tests.fakes import FakeLedger
from tests.functional.worker_fixtures import BASE_ENV, counts, envelope, make_queue, send_bodies
from tests.worker_events import undocumented

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, endpoint: str, tmp_path: Path) -> Path:
    """The worker's environment (moto's endpoint, no AWS setup); returns the health file's path."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    for key, value in BASE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("HEALTH_FILE", str(tmp_path / "health"))
    monkeypatch.setenv("JOB_HANDLER", "queue_worker.examples:sleep_job")
    monkeypatch.setenv("POLL_WAIT_SECONDS", "1")
    monkeypatch.setenv("DRAIN_SECONDS", "5")
    return tmp_path / "health"


@pytest.fixture
def restored_signals() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


class SpyTelemetry(Telemetry):
    """The worker's telemetry, keeping each event for the test (Powertools' handler keeps its first stdout)."""

    events: ClassVar[list[dict[str, Any]]] = []

    def event(self, event: str, message: str, *, job_id: str | None = None, level: str = "info", **fields: Any) -> None:
        SpyTelemetry.events.append({"event": event, "message": message, "job_id": job_id, "level": level, **fields})
        super().event(event, message, job_id=job_id, level=level, **fields)


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    SpyTelemetry.events = []
    monkeypatch.setattr(app, "Telemetry", SpyTelemetry)
    yield SpyTelemetry.events
    assert undocumented(SpyTelemetry.events) == [], "every line as docs/worker-events.md says"


def test_given_a_job_when_main_runs_and_sigterm_arrives_then_it_completes_and_exits_0(
    environment: Path,
    restored_signals: None,
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
    events: list[dict[str, Any]],
) -> None:
    url, _ = make_queue(sqs, "main")
    monkeypatch.setenv("QUEUE_URLS", url)
    monkeypatch.setenv("LEDGER_TABLE", "ledger")
    monkeypatch.setenv("POOL_NAME", "entry")
    ledger = FakeLedger()
    ledger.put_job("entry", "m-1")  # reserved in the worker's pool: the only jobs it runs
    asked: list[str | None] = []
    monkeypatch.setattr(attempts, "make_attempt_log", lambda settings: asked.append(settings.ledger_table) or ledger)
    send_bodies(sqs, url, [envelope("m-1", seconds=0.5)])

    def stop_once_the_job_is_done() -> None:
        deadline = time.monotonic() + 30
        while counts(sqs, url) != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the worker's handler, on the main thread

    threading.Thread(target=stop_once_the_job_is_done, daemon=True).start()
    assert app.main() == 0
    names = [e["event"] for e in events]
    assert {"worker_started", "job_started", "job_completed", "worker_stopping", "worker_stopped"} <= set(names)
    assert [e["job_id"] for e in events if e["event"] == "job_completed"] == ["m-1"]
    record = ledger.job("m-1")
    assert asked == ["ledger"] and record is not None, "attempts go to LEDGER_TABLE"
    assert [str(a.outcome) for a in record.attempts] == ["completed"]
    assert not environment.exists(), "stopped: not healthy"


def test_given_sigterm_while_the_worker_starts_then_it_runs_nothing_and_exits_0(
    environment: Path,
    restored_signals: None,
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
    events: list[dict[str, Any]],
) -> None:
    # A drain can reach a container still starting (an instance refresh replacing one just launched).
    url, _ = make_queue(sqs, "early")
    monkeypatch.setenv("QUEUE_URLS", url)
    send_bodies(sqs, url, [envelope("e-1", seconds=0.5)])

    def not_caught(signum: int, _frame: object) -> None:
        raise AssertionError("a SIGTERM while the worker starts was left to the handler before main()")

    signal.signal(signal.SIGTERM, not_caught)
    load = app.load_handler

    def load_while_signalled(name: str) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)  # handled before this returns, on the main thread
        return load(name)

    monkeypatch.setattr(app, "load_handler", load_while_signalled)
    assert app.main() == 0
    names = [e["event"] for e in events]
    assert names[-3:] == ["worker_started", "worker_stopping", "worker_stopped"], names
    assert events[-1]["signal"] == "SIGTERM" and events[-1]["completed"] == 0
    assert counts(sqs, url) == (1, 0), "the job was never received: it waits for another worker"


def test_given_no_queue_urls_when_main_runs_then_it_exits_2_naming_the_variable(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("QUEUE_URLS", raising=False)
    assert app.main() == app.EXIT_CONFIG == 2
    err = capsys.readouterr().err
    assert err.startswith("queue_worker: invalid configuration:") and "queue_urls" in err


def test_given_a_handler_that_cannot_be_loaded_when_main_runs_then_it_exits_2_with_a_worker_failed_line(
    environment: Path, monkeypatch: pytest.MonkeyPatch, events: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("QUEUE_URLS", "http://127.0.0.1:1/123456789012/none")
    monkeypatch.setenv("JOB_HANDLER", "queue_worker.examples:no_such_job")
    assert app.main() == 2
    [line] = [e for e in events if e["event"] == "worker_failed"]
    assert line["handler"] == "queue_worker.examples:no_such_job" and "no_such_job" in line["error"]
    assert line["level"] == "error"
    assert "worker_started" not in [e["event"] for e in events]


def test_given_protection_on_and_no_instance_metadata_when_main_runs_then_it_exits_2(
    environment: Path, monkeypatch: pytest.MonkeyPatch, events: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("QUEUE_URLS", "http://127.0.0.1:1/123456789012/none")
    monkeypatch.setenv("SCALE_IN_PROTECTION", "true")
    monkeypatch.setenv("AUTOSCALING_GROUP_NAME", "pool")

    def no_metadata(timeout: float = 2.0) -> str:
        raise OSError("no instance metadata here")

    monkeypatch.setattr("queue_worker.protection.instance_id_from_imds", no_metadata)
    assert app.main() == 2
    [line] = [e for e in events if e["event"] == "worker_failed"]
    assert "no instance metadata here" in line["error"] and line["level"] == "error"


@pytest.mark.parametrize(
    ("case", "age", "code"),
    [("fresh", 0, 0), ("at the limit", 30, 0), ("past the limit", 32, 1), ("missing", None, 1)],
)
def test_given_a_health_file_when_the_healthcheck_runs_then_0_only_while_fresh(  # noqa: PLR0917 - fixtures
    case: str,
    age: float | None,
    code: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "health"
    monkeypatch.setenv("HEALTH_FILE", str(path))
    monkeypatch.setenv("HEALTH_MAX_AGE_SECONDS", "31")
    if age is not None:
        path.touch()
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
    assert health.main() == code, case
    err = capsys.readouterr().err
    if code:
        assert err == f"unhealthy: {path} missing or older than 31.0 s\n", case
    else:
        assert err == "", case
