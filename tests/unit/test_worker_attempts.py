"""The worker's attempt records over in-memory fakes: started, completed, failed, released (and prefetched)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from queue_scaler.domain.ledger import Attempt, AttemptOutcome, JobStatus
from queue_scaler.errors import Throttled
from queue_scaler.jobs import JobEnvelope
from queue_scaler.ports import AttemptLog
from queue_worker.attempts import AttemptRecorder, attempt_id
from queue_worker.sqs import ReceivedMessage
from queue_worker.telemetry import Telemetry
from queue_worker.worker import Worker
from tests.fakes import FakeLedger
from tests.unit.test_worker_settlement import FakeQueues, body, make_worker

pytestmark = pytest.mark.timeout(20)


class BrokenLog:
    """A ledger that cannot be written (throttled)."""

    def start_attempt(self, job_id: str, attempt: Attempt) -> bool:
        raise Throttled("TransactWriteItems", "ProvisionedThroughputExceededException")

    def end_attempt(self, job_id: str, attempt: Attempt) -> None:
        raise Throttled("UpdateItem", "ProvisionedThroughputExceededException")


def start(
    tmp_path: Path, queues: FakeQueues, handler: Callable[[JobEnvelope], object], log: AttemptLog, **settings: object
) -> tuple[Worker, threading.Thread]:
    worker = make_worker(tmp_path / "health", queues, handler, log, **settings)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return worker, thread


def until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def outcomes(ledger: FakeLedger, job_id: str) -> list[str]:
    record = ledger.job(job_id)
    return [str(a.outcome) for a in record.attempts] if record else []


def test_given_a_job_that_succeeds_then_its_attempt_is_completed_and_the_job_settled(tmp_path: Path) -> None:
    ledger, queues = FakeLedger(), FakeQueues([body("ok")])
    worker, thread = start(tmp_path, queues, lambda job: None, ledger)
    until(lambda: queues.deleted == ["m-0"])
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    assert outcomes(ledger, "ok") == ["completed"] and ledger.jobs["ok"]["status"] == JobStatus.COMPLETED


def test_given_a_job_that_fails_then_its_attempt_is_failed_with_the_reason(tmp_path: Path) -> None:
    def boom(job: JobEnvelope) -> None:
        raise RuntimeError("disk full")

    ledger, queues = FakeLedger(), FakeQueues([body("bad")])
    worker, thread = start(tmp_path, queues, boom, ledger)
    until(lambda: outcomes(ledger, "bad") == ["failed"])
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    [attempt] = ledger.job("bad").attempts  # type: ignore[union-attr]
    assert attempt.reason == "RuntimeError: disk full"


def test_given_a_job_the_ledger_says_completed_then_it_is_not_run_again(tmp_path: Path) -> None:
    ledger, queues = FakeLedger(), FakeQueues([body("done")])
    ledger.jobs["done"] = {"status": JobStatus.COMPLETED}
    ran: list[str] = []
    worker, thread = start(tmp_path, queues, lambda job: ran.append(job.job_id), ledger)
    until(lambda: queues.deleted == ["m-0"])
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    assert ran == [] and outcomes(ledger, "done") == []


def test_given_a_drain_then_the_running_and_the_prefetched_jobs_are_recorded_released(tmp_path: Path) -> None:
    entered, gate = threading.Event(), threading.Event()

    def blocking(job: JobEnvelope) -> None:
        entered.set()
        gate.wait(10)

    ledger, queues = FakeLedger(), FakeQueues([body("running"), body("prefetched")])
    worker, thread = start(tmp_path, queues, blocking, ledger, worker_slots=1, worker_prefetch=1)
    assert entered.wait(5)
    until(lambda: not queues._pending)  # both messages are held by the worker
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    gate.set()
    assert outcomes(ledger, "running") == ["released"]
    [prefetched] = ledger.job("prefetched").attempts  # type: ignore[union-attr]
    assert (prefetched.outcome, prefetched.reason) == (AttemptOutcome.RELEASED, "not started before stop")
    assert ledger.job("running").attempts[0].reason == "drain deadline reached"  # type: ignore[union-attr]


def test_given_a_ledger_that_cannot_be_written_then_the_job_still_runs_and_completes(tmp_path: Path) -> None:
    queues = FakeQueues([body("ok")])
    worker, thread = start(tmp_path, queues, lambda job: None, BrokenLog())
    until(lambda: queues.deleted == ["m-0"])
    worker.request_stop(signal.SIGTERM)
    thread.join(5)


def test_each_receive_has_its_own_attempt_id() -> None:
    first = ReceivedMessage(0, "u", "m-1", "handle-1", "{}", 1, None)
    second = ReceivedMessage(0, "u", "m-1", "handle-2", "{}", 2, None)
    assert attempt_id(first) != attempt_id(second) and attempt_id(first) == attempt_id(first)


def test_given_no_ledger_then_nothing_is_recorded_and_every_job_runs() -> None:
    recorder = AttemptRecorder(None, Telemetry("unit", "Test", 3600, time.monotonic), lambda: datetime.now(UTC))
    message = ReceivedMessage(0, "u", "m-1", "handle-1", "{}", 1, None)
    assert recorder.start("j", message)
    recorder.end("j", message, AttemptOutcome.FAILED, "x")
