"""The worker's exit after its drain ends before Docker's SIGKILL, whatever is still slow to answer.

After the release at the drain deadline only bookkeeping is left (the deleter's last batch, the
heartbeat, the scale-in protection's last call); each of those waits is cut to end a second before the
moment the process is killed (its stop timeout or the notice's end), so that the worker exits 0 with
its `worker_stopped` line written instead of being SIGKILLed inside a slow call.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from queue_worker.attempts import AttemptRecorder
from queue_worker.health import HealthFile
from queue_worker.settings import WorkerSettings
from queue_worker.sqs import ReceivedMessage
from queue_worker.worker import EXIT_MARGIN_SECONDS, Worker
from tests.unit.worker.test_worker_failure_paths import Door, SpyTelemetry, until
from tests.unit.worker.test_worker_settlement import body

pytestmark = pytest.mark.timeout(30)

WALL = 1_000_000.0
#: The notice's end, seconds after the SIGTERM: the moment the worker is gone.
NOTICE_SECONDS = 3
#: What a slow call takes here: far past that moment.
SLOW_SECONDS = 20.0


class SlowDeletes(Door):
    """SQS whose DeleteMessageBatch hangs (a local cloud or endpoint slow to answer) until `answer` is set."""

    def __init__(self, bodies: list[str]) -> None:
        super().__init__(bodies)
        self.deleting = threading.Event()
        self.answer = threading.Event()

    def delete(self, messages: list[ReceivedMessage]) -> dict[str, str]:
        self.deleting.set()
        self.answer.wait(SLOW_SECONDS)
        return super().delete(messages)


class SlowUnprotect:
    """Scale-in protection whose last call outlasts any wait: records the wait it was given."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def busy(self) -> None:
        return None

    def idle(self) -> None:
        return None

    def stop(self, timeout: float) -> bool:
        self.waits.append(timeout)
        time.sleep(timeout)
        return False


@pytest.mark.parametrize("stop_timeout", [None, 15.5])
def test_given_calls_slow_past_the_kill_when_the_worker_stops_then_it_exits_before_it_saying_what_it_left(
    tmp_path: Path, stop_timeout: float | None
) -> None:
    door = SlowDeletes([body("done")])
    telemetry = SpyTelemetry()
    protection = SlowUnprotect()
    notice = tmp_path / "notice"
    settings = WorkerSettings(
        queue_urls=door.urls,
        job_handler="m:f",
        drain_seconds=0.5,
        poll_wait_seconds=0,
        stop_notice_file=notice,
        stop_timeout_seconds=stop_timeout,
    )
    worker = Worker(
        settings,
        door,
        lambda job: None,
        telemetry,
        HealthFile(tmp_path / "health"),
        wall_clock=lambda: WALL,
        protection=protection,
        attempts=AttemptRecorder(None, telemetry),
    )
    exited = threading.Event()
    threading.Thread(target=lambda: (worker.run(), exited.set()), daemon=True).start()
    assert door.deleting.wait(10), "the job ran and its delete is under way"

    notice.write_text(f"{int(WALL) + NOTICE_SECONDS}\n")  # a Spot notice: the instance is gone in 3 s
    signalled = time.monotonic()
    worker.request_stop(signal.SIGTERM)
    assert exited.wait(NOTICE_SECONDS), "exited before the instance was gone"
    took = time.monotonic() - signalled
    door.answer.set()

    assert took <= NOTICE_SECONDS - EXIT_MARGIN_SECONDS + 0.5
    assert protection.waits and protection.waits[0] <= NOTICE_SECONDS - EXIT_MARGIN_SECONDS
    [hurried] = until(lambda: telemetry.of("exit_hurried"))
    assert hurried["level"] == "warning" and set(hurried["still_running"]) == {"deleter", "protection"}
    assert 0 < hurried["kill_in_seconds"] <= EXIT_MARGIN_SECONDS + 0.5
    [stopped] = telemetry.of("worker_stopped")
    assert stopped["signal"] == "SIGTERM"


def test_given_no_kill_time_known_when_the_worker_stops_then_it_waits_for_its_calls_as_configured(
    tmp_path: Path,
) -> None:
    door = Door([])
    telemetry = SpyTelemetry()
    protection = SlowUnprotect()
    worker = Worker(
        WorkerSettings(queue_urls=door.urls, job_handler="m:f", drain_seconds=0.5, poll_wait_seconds=0),
        door,
        lambda job: None,
        telemetry,
        HealthFile(tmp_path / "health"),
        protection=protection,
    )
    protection.stop = lambda timeout: protection.waits.append(timeout) or True  # type: ignore[method-assign]
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    until(lambda: telemetry.of("worker_started"))
    worker.request_stop(signal.SIGTERM)
    thread.join(10)
    assert not thread.is_alive()
    assert protection.waits == [10.0], "no SIGKILL known: the protection's last call gets its own bound"
    assert telemetry.of("exit_hurried") == []
