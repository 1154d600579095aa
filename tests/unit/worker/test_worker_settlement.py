"""The worker's settle rules over an in-memory fake of its SQS door (threads, no sockets).

What the functional tests cannot time reliably: a job that finishes after the drain released its
message must never delete it (another worker may be running it by then).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from queue_scaler.credits.ports import AttemptLog
from queue_scaler.shared.jobs import JobEnvelope
from queue_worker.attempts import AttemptRecorder
from queue_worker.health import HealthFile
from queue_worker.settings import WorkerSettings
from queue_worker.sqs import Queues, ReceivedMessage
from queue_worker.telemetry import Telemetry
from queue_worker.worker import Worker

pytestmark = pytest.mark.timeout(20)


class FakeQueues(Queues):
    """Delivers the given bodies once from queue 0 and records deletes and visibility changes."""

    def __init__(self, bodies: list[str]) -> None:
        super().__init__(client=None, urls=["http://sqs.local/1/jobs"])
        self._pending = [
            ReceivedMessage(0, self.urls[0], f"m-{i}", f"r-{i}", body, 1, time.time()) for i, body in enumerate(bodies)
        ]
        self.deleted: list[str] = []
        self.visibility: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def receive(self, index: int, max_messages: int, wait_seconds: int, visibility: int) -> list[ReceivedMessage]:
        with self._lock:
            batch, self._pending = self._pending[:max_messages], self._pending[max_messages:]
        if not batch:
            time.sleep(min(wait_seconds, 0.05))
        return batch

    def delete(self, messages: list[ReceivedMessage]) -> dict[str, str]:
        with self._lock:
            self.deleted += [m.message_id for m in messages]
        return {}

    def set_visibility(self, messages: list[ReceivedMessage], seconds: int) -> list[tuple[ReceivedMessage, str]]:
        with self._lock:
            self.visibility += [(m.message_id, seconds) for m in messages]
        return []


#: The pool of the workers these tests build: the first part of their jobs' ledger keys.
POOL = "unit"


def body(job_id: str) -> str:
    return json.dumps(
        {
            "job_id": job_id,
            "user_id": "u",
            "plan": "pro",
            "kind": "k",
            "credits": 1,
            "submitted_at": "2026-01-01T00:00:00Z",
            "payload": {},
        }
    )


def make_worker(
    health: Path,
    queues: FakeQueues,
    handler: Callable[[JobEnvelope], object],
    log: AttemptLog | None = None,
    **settings: object,
) -> Worker:
    """A worker over the fake queues, recording attempts in `log` when one is given."""
    values: dict[str, object] = {
        "queue_urls": queues.urls,
        "job_handler": "m:f",
        "drain_seconds": 0.5,
        "visibility_timeout": 30,
        "poll_wait_seconds": 0,
        "retry_delay_seconds": 7,
        **settings,
    }
    telemetry = Telemetry("unit", "Test", 3600, time.monotonic)
    return Worker(
        WorkerSettings(**values),
        queues,
        handler,
        telemetry,
        HealthFile(health),
        attempts=AttemptRecorder(log, telemetry, pool=POOL, lease_seconds=float(values["visibility_timeout"])),  # type: ignore[arg-type]
    )


@pytest.fixture
def run_worker(tmp_path: Path) -> Iterator[Callable[..., tuple[Worker, threading.Thread, list[int]]]]:
    threads: list[threading.Thread] = []

    def start(queues: FakeQueues, handler: Callable[[JobEnvelope], object], **settings: object):
        worker = make_worker(tmp_path / "health", queues, handler, **settings)
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(worker.run()), daemon=True)
        thread.start()
        threads.append(thread)
        return worker, thread, result

    yield start
    for thread in threads:
        thread.join(5)


def test_given_a_job_past_the_drain_deadline_when_it_finishes_later_then_its_message_is_not_deleted(
    run_worker: Callable[..., tuple[Worker, threading.Thread, list[int]]],
) -> None:
    entered, gate = threading.Event(), threading.Event()

    def blocking(job: JobEnvelope) -> None:
        entered.set()
        gate.wait(10)

    queues = FakeQueues([body("late")])
    worker, thread, result = run_worker(queues, blocking)
    assert entered.wait(5)
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    assert result == [0]
    assert queues.visibility[-1] == ("m-0", 0), "released at the deadline"

    gate.set()
    time.sleep(0.2)
    assert queues.deleted == [], "a released message belongs to whoever receives it next"


def test_given_a_failing_job_then_its_message_gets_the_retry_delay_and_is_not_deleted(
    run_worker: Callable[..., tuple[Worker, threading.Thread, list[int]]],
) -> None:
    failed = threading.Event()

    def failing(job: JobEnvelope) -> None:
        failed.set()
        raise RuntimeError("boom")

    queues = FakeQueues([body("bad"), body("good")])
    worker, thread, result = run_worker(queues, lambda job: failing(job) if job.job_id == "bad" else None)
    assert failed.wait(5)
    deadline = time.monotonic() + 5
    while queues.deleted != ["m-1"] and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    assert result == [0]
    assert queues.deleted == ["m-1"]
    assert ("m-0", 7) in queues.visibility
    assert ("m-0", 0) not in queues.visibility, "a settled message is never released again"


def test_given_a_finished_jobs_delete_under_way_at_the_drain_deadline_then_it_is_deleted_not_released(
    tmp_path: Path,
) -> None:
    """The deleter has taken the job's success from its list but not yet deleted it when the drain
    releases what is still held: that message is finished, and must be deleted, not released (a
    release would send a completed job round again and lose its `job_completed`)."""
    taken, released = threading.Event(), threading.Event()

    class DeleterBehindTheDrain(Worker):
        def _complete(self, batch: list[Any]) -> None:
            taken.set()
            assert released.wait(5), "the drain never reached its release"
            super()._complete(batch)

        def _release(self, messages: list[ReceivedMessage], reason: str) -> None:
            super()._release(messages, reason)
            if reason == "drain deadline reached":
                released.set()

    queues = FakeQueues([body("done")])
    values = {"queue_urls": queues.urls, "job_handler": "m:f", "drain_seconds": 0.5, "poll_wait_seconds": 0}
    telemetry = Telemetry("unit", "Test", 3600, time.monotonic)
    worker = DeleterBehindTheDrain(
        WorkerSettings(**values), queues, lambda job: None, telemetry, HealthFile(tmp_path / "health")
    )
    events: list[str] = []
    telemetry.event = lambda name, *args, **fields: events.append(name)  # type: ignore[method-assign]
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert taken.wait(5)
    worker.request_stop(signal.SIGTERM)
    thread.join(10)
    assert not thread.is_alive()
    assert queues.deleted == ["m-0"] and ("m-0", 0) not in queues.visibility
    assert "job_completed" in events and "job_finished_after_release" not in events


def test_given_a_job_ending_after_the_deleters_last_turn_then_it_is_still_counted_completed(tmp_path: Path) -> None:
    """Released at the drain deadline, the job's handler returns once the deleter has stopped: the
    job completed (its end is in the ledger), so JobsCompleted counts it before the last flush."""
    gate = threading.Event()

    class JobEndsLate(Worker):
        def _release(self, messages: list[ReceivedMessage], reason: str) -> None:
            super()._release(messages, reason)
            if reason == "drain deadline reached":
                # The deleter was told to stop just before this release and may have gone already.
                deleter = next((t for t in threading.enumerate() if t.name == "deleter"), None)
                if deleter is not None:
                    deleter.join(5)
                gate.set()
                ended_by = time.monotonic() + 5
                while not self._deletes:  # the job's success, queued for a deleter that is gone
                    assert time.monotonic() < ended_by
                    time.sleep(0.01)

    def blocking(job: JobEnvelope) -> None:
        gate.wait(10)

    queues = FakeQueues([body("late")])
    values = {"queue_urls": queues.urls, "job_handler": "m:f", "drain_seconds": 0.5, "poll_wait_seconds": 0}
    telemetry = Telemetry("unit", "Test", 3600, time.monotonic)
    worker = JobEndsLate(WorkerSettings(**values), queues, blocking, telemetry, HealthFile(tmp_path / "health"))
    events: list[str] = []
    real_event = telemetry.event

    def event(name: str, *args: Any, **fields: Any) -> None:
        events.append(name)
        real_event(name, *args, **fields)

    telemetry.event = event  # type: ignore[method-assign]
    completed: list[float] = []
    telemetry.job_completed = completed.append  # type: ignore[method-assign]
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    until_running = time.monotonic() + 5
    while "job_started" not in events and time.monotonic() < until_running:
        time.sleep(0.02)
    worker.request_stop(signal.SIGTERM)
    thread.join(10)
    assert not thread.is_alive()
    assert queues.deleted == [] and ("m-0", 0) in queues.visibility, "released, never deleted"
    assert "job_finished_after_release" in events and len(completed) == 1


class SlowHeartbeat(FakeQueues):
    """SQS that answers the first visibility extension only once `gate` is set: a heartbeat under way
    when the drain reaches its deadline."""

    def __init__(self, bodies: list[str]) -> None:
        super().__init__(bodies)
        self.extending = threading.Event()
        self.gate = threading.Event()

    def set_visibility(self, messages: list[ReceivedMessage], seconds: int) -> list[tuple[ReceivedMessage, str]]:
        if seconds > 0 and not self.extending.is_set():
            self.extending.set()
            self.gate.wait(10)
        return super().set_visibility(messages, seconds)


@pytest.mark.parametrize("heartbeat_first", [True, False], ids=["heartbeat under way", "release first"])
def test_given_a_heartbeat_and_the_release_of_one_message_in_either_order_then_the_release_is_the_last_word(
    run_worker: Callable[..., tuple[Worker, threading.Thread, list[int]]], heartbeat_first: bool
) -> None:
    # The release's call is made outside the settle lock (a slow delete must not hold it back); the
    # heartbeat's is made under it, on messages still held. Either order ends with the message visible.
    entered, done = threading.Event(), threading.Event()

    def long_job(job: JobEnvelope) -> None:
        entered.set()
        done.wait(10)

    queues = SlowHeartbeat([body("long")])
    if not heartbeat_first:
        queues.extending.set()  # the heartbeat's calls answer at once
    worker, thread, result = run_worker(queues, long_job, heartbeat_seconds=0.2)
    assert entered.wait(5)
    if heartbeat_first:
        assert queues.extending.wait(5), "a heartbeat is under way"
    worker.request_stop(signal.SIGTERM)
    if heartbeat_first:
        time.sleep(0.8)  # past the 0.5 s drain deadline: the release waits for the heartbeat's call
        assert ("m-0", 0) not in queues.visibility
        queues.gate.set()
    thread.join(5)
    assert result == [0]
    time.sleep(0.5)  # heartbeats' time to come round again: none extends a released message
    done.set()
    assert queues.visibility[-1] == ("m-0", 0), queues.visibility
    assert queues.visibility.count(("m-0", 0)) == 1
