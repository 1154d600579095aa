"""Real `python -m queue_worker` processes against a moto server: SIGTERM, SIGKILL and heartbeats.

Given/When/Then in each name. Short visibility timeouts and drain windows keep the module fast;
every wait is bounded.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.worker_fixtures import (
    WorkerProcess,
    counts,
    drain_bodies,
    envelope,
    make_queue,
    send_bodies,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)

StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def start_worker(endpoint: str, tmp_path: Path) -> Iterator[StartWorker]:
    started: list[WorkerProcess] = []

    def start(name: str = "worker", **settings: str | int | float) -> WorkerProcess:
        worker = WorkerProcess(endpoint, tmp_path, name, **settings)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def test_given_a_running_job_and_prefetched_ones_when_sigterm_then_job_completes_and_the_rest_return_at_once(
    sqs: Any, start_worker: StartWorker
) -> None:
    url, _ = make_queue(sqs, "term")
    send_bodies(sqs, url, [envelope(f"t-{i}", seconds=2.5) for i in range(4)])
    drain = 5
    worker = start_worker(QUEUE_URLS=url, WORKER_SLOTS=1, WORKER_PREFETCH=3, DRAIN_SECONDS=drain, VISIBILITY_TIMEOUT=30)
    # The worker holds all four: one running, three prefetched.
    assert wait_for(lambda: worker.job_ids("job_started"), 15), worker.log_text()
    assert wait_for(lambda: counts(sqs, url) == (0, 4), 5), counts(sqs, url)
    running = worker.job_ids("job_started")[0]

    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert wait_for(lambda: counts(sqs, url) == (3, 1), 1.5), "prefetched messages were not released at once"
    assert worker.wait(drain + 2) == 0
    assert time.monotonic() - sent < drain + 2

    assert worker.job_ids("job_completed") == [running]
    assert counts(sqs, url) == (3, 0)
    left = {json.loads(body)["job_id"] for body in drain_bodies(sqs, url, 3)}
    assert left == {f"t-{i}" for i in range(4)} - {running}
    assert len(worker.events("job_released")) == 3
    assert worker.events("worker_stopped")[0]["completed"] == 1


def test_given_a_job_longer_than_the_drain_window_when_sigterm_then_it_is_released_not_lost(
    sqs: Any, start_worker: StartWorker
) -> None:
    url, _ = make_queue(sqs, "long")
    send_bodies(sqs, url, [envelope("long-1", seconds=30)])
    drain = 2
    worker = start_worker(QUEUE_URLS=url, DRAIN_SECONDS=drain, VISIBILITY_TIMEOUT=30)
    assert wait_for(lambda: worker.job_ids("job_started"), 15), worker.log_text()

    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(drain + 2) == 0
    assert time.monotonic() - sent < drain + 2

    assert counts(sqs, url) == (1, 0), "the released message must be visible at once"
    released = worker.events("job_released")
    assert [r["job_id"] for r in released] == ["long-1"]
    assert released[0]["reason"] == "drain deadline reached"
    assert worker.events("job_completed") == []


def test_given_a_running_job_when_sigkill_then_the_message_returns_after_its_visibility_timeout(
    sqs: Any, start_worker: StartWorker
) -> None:
    url, _ = make_queue(sqs, "kill")
    send_bodies(sqs, url, [envelope("kill-1", seconds=30)])
    visibility = 3
    worker = start_worker(QUEUE_URLS=url, DRAIN_SECONDS=5, VISIBILITY_TIMEOUT=visibility)
    assert wait_for(lambda: worker.job_ids("job_started"), 15), worker.log_text()

    worker.signal(signal.SIGKILL)
    assert worker.wait(5) == -signal.SIGKILL
    killed = time.monotonic()
    assert counts(sqs, url) == (0, 1), "a killed worker cannot release; the message stays hidden"
    # Hidden for at most one visibility timeout after the last heartbeat, which preceded the kill.
    assert wait_for(lambda: counts(sqs, url) == (1, 0), visibility + 2)
    assert time.monotonic() - killed <= visibility + 2
    assert json.loads(drain_bodies(sqs, url, 1)[0])["job_id"] == "kill-1"


def test_given_a_job_longer_than_the_visibility_timeout_when_two_workers_poll_then_it_runs_once(
    sqs: Any, start_worker: StartWorker
) -> None:
    visibility = 2
    url, _ = make_queue(sqs, "beat", visibility=visibility)
    send_bodies(sqs, url, [envelope("beat-1", seconds=3.5 * visibility)])
    settings: dict[str, str | int | float] = {
        "QUEUE_URLS": url,
        "DRAIN_SECONDS": 3,
        "VISIBILITY_TIMEOUT": visibility,
    }
    first = start_worker("first", **settings)
    assert wait_for(lambda: first.job_ids("job_started"), 15), first.log_text()
    second = start_worker("second", **settings)
    assert wait_for(lambda: second.events("worker_started"), 15), second.log_text()

    assert wait_for(lambda: first.job_ids("job_completed"), 3.5 * visibility + 5), first.log_text()
    for worker in (first, second):
        worker.signal(signal.SIGTERM)
        assert worker.wait(5) == 0
    assert first.job_ids("job_started") == ["beat-1"]
    assert second.job_ids("job_started") == [], "the heartbeat must keep the message hidden"
    assert counts(sqs, url) == (0, 0)


def test_given_malformed_bodies_when_received_then_job_failed_with_reason_and_they_reach_the_dlq(
    sqs: Any, start_worker: StartWorker
) -> None:
    url, dlq = make_queue(sqs, "bad", max_receive_count=2)
    missing_credits = json.loads(envelope("bad-2"))
    del missing_credits["credits"]
    send_bodies(sqs, url, ["not json", json.dumps(missing_credits), envelope("good-1")])
    worker = start_worker(QUEUE_URLS=url, DRAIN_SECONDS=2, RETRY_DELAY_SECONDS=0, POLL_WAIT_SECONDS=1)

    assert wait_for(lambda: counts(sqs, dlq) == (2, 0), 20), worker.log_text()
    assert worker.process.poll() is None, "a malformed body must never crash the worker"
    failed = worker.events("job_failed")
    assert all(r["reason"].startswith("invalid envelope") for r in failed)
    assert any("credits" in r["reason"] and r.get("job_id") == "bad-2" for r in failed)
    assert wait_for(lambda: worker.job_ids("job_completed"), 5) == ["good-1"]

    worker.signal(signal.SIGTERM)
    assert worker.wait(4) == 0
    assert counts(sqs, url) == (0, 0)


def test_given_polling_works_when_running_then_healthy_and_when_stopped_then_unhealthy(
    sqs: Any, start_worker: StartWorker
) -> None:
    url, _ = make_queue(sqs, "health")
    worker = start_worker(QUEUE_URLS=url, DRAIN_SECONDS=2, POLL_WAIT_SECONDS=1)
    check = [sys.executable, "-m", "queue_worker.health"]

    def healthy() -> bool:
        return subprocess.run(check, env=worker.env, capture_output=True, check=False).returncode == 0

    assert wait_for(healthy, 15, interval=0.5), worker.log_text()
    worker.signal(signal.SIGINT)
    assert worker.wait(4) == 0
    assert not healthy()
    assert worker.events("worker_stopped")[0]["signal"] == "SIGINT"


def test_given_no_queue_urls_when_started_then_it_exits_2_naming_the_variable(endpoint: str, tmp_path: Path) -> None:
    worker = WorkerProcess(endpoint, tmp_path, "misconfigured")
    try:
        assert worker.wait(15) == 2
    finally:
        worker.kill()
    assert "queue_urls" in worker.log_text().lower()
