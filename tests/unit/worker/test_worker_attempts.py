"""The worker's run lease and attempt records over in-memory fakes: started, completed, failed, released
(and prefetched); copies of a job that is leased, ended or unreserved are not run."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from queue_scaler.credits.domain.ledger import Attempt, AttemptOutcome, JobStatus, Lease, StartVerdict
from queue_scaler.credits.ports import AttemptLog, StartResult
from queue_scaler.shared.errors import Throttled
from queue_scaler.shared.jobs import JobEnvelope
from queue_worker.attempts import AttemptRecorder, attempt_id
from queue_worker.sqs import ReceivedMessage
from queue_worker.telemetry import Telemetry
from queue_worker.worker import Worker
from tests.fakes import FakeLedger
from tests.unit.worker.test_worker_settlement import POOL, FakeQueues, body, make_worker

pytestmark = pytest.mark.timeout(20)


class BrokenLog:
    """A ledger that cannot be written (throttled)."""

    def start_attempt(self, pool: str, job_id: str, attempt: Attempt, lease: Lease, now: float) -> StartResult:
        raise Throttled("TransactWriteItems", "ProvisionedThroughputExceededException")

    def renew_lease(self, pool: str, job_id: str, lease: Lease) -> bool:
        raise Throttled("UpdateItem", "ProvisionedThroughputExceededException")

    def end_attempt(
        self, pool: str, job_id: str, attempt: Attempt, owner: str, hold_until: float | None = None
    ) -> bool:
        raise Throttled("UpdateItem", "ProvisionedThroughputExceededException")


def reserved(*job_ids: str) -> FakeLedger:
    ledger = FakeLedger()
    for job_id in job_ids:
        ledger.put_job(POOL, job_id)
    return ledger


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
    ledger, queues = reserved("ok"), FakeQueues([body("ok")])
    worker, thread = start(tmp_path, queues, lambda job: None, ledger)
    until(lambda: queues.deleted == ["m-0"])
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    record = ledger.job("ok")
    assert outcomes(ledger, "ok") == ["completed"] and record is not None and record.status == JobStatus.COMPLETED
    assert record.lease is None, "a completion frees the lease"


def test_given_a_job_that_fails_then_its_attempt_is_failed_with_the_reason(tmp_path: Path) -> None:
    def boom(job: JobEnvelope) -> None:
        raise RuntimeError("disk full")

    ledger, queues = reserved("bad"), FakeQueues([body("bad")])
    worker, thread = start(tmp_path, queues, boom, ledger)
    until(lambda: outcomes(ledger, "bad") == ["failed"])
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    [attempt] = ledger.job("bad").attempts  # type: ignore[union-attr]
    assert attempt.reason == "RuntimeError: disk full"
    assert ledger.job("bad").lease is None, "a failure frees the lease: the next receive runs it at once"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "setup"),
    [
        ("given a job the ledger says completed", lambda ledger: ledger.put_job(POOL, "done", JobStatus.COMPLETED)),
        ("given a job refunded (failed for good)", lambda ledger: ledger.put_job(POOL, "done", JobStatus.FAILED)),
        ("given a job with no reservation (never submitted, or released)", lambda ledger: None),
        ("given a job reserved in another pool", lambda ledger: ledger.put_job("other", "done")),
    ],
)
def test_given_an_ended_or_unreserved_job_then_it_is_not_run_and_its_message_deleted(
    tmp_path: Path, name: str, setup: Callable[[FakeLedger], None]
) -> None:
    ledger, queues = FakeLedger(), FakeQueues([body("done")])
    setup(ledger)
    ran: list[str] = []
    worker, thread = start(tmp_path, queues, lambda job: ran.append(job.job_id), ledger)
    until(lambda: queues.deleted == ["m-0"])
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    assert ran == [] and outcomes(ledger, "done") == [], name


def test_given_a_copy_whose_job_another_receive_leases_then_it_is_left_to_come_back_after_the_lease(
    tmp_path: Path,
) -> None:
    ledger, queues = reserved("j"), FakeQueues([body("j")])
    expires = time.time() + 25
    ledger.jobs["j"]["lease"] = Lease(owner="other-worker/a", attempt_id="a", expires_at=expires)
    ran: list[str] = []
    worker, thread = start(tmp_path, queues, lambda job: ran.append(job.job_id), ledger)
    until(lambda: bool(queues.visibility))
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    [(receipt, seconds)] = queues.visibility
    assert ran == [] and queues.deleted == [] and receipt == "m-0"
    assert 20 <= seconds <= 26, "comes back about when the other receive's lease runs out"


def test_given_two_copies_on_two_slots_then_the_job_runs_once_at_a_time(tmp_path: Path) -> None:
    entered, gate = threading.Event(), threading.Event()
    ran: list[str] = []

    def slow(job: JobEnvelope) -> None:
        ran.append(job.job_id)
        entered.set()
        gate.wait(5)

    ledger, queues = reserved("j"), FakeQueues([body("j"), body("j")])
    worker, thread = start(tmp_path, queues, slow, ledger, worker_slots=2)
    assert entered.wait(5)
    until(lambda: len(queues.visibility) == 1)  # the second copy found the first's live lease
    gate.set()
    until(lambda: queues.deleted in (["m-0"], ["m-1"]))
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    assert ran == ["j"] and outcomes(ledger, "j") == ["completed"]


def test_given_a_drain_then_the_running_and_the_prefetched_jobs_are_recorded_released(tmp_path: Path) -> None:
    entered, gate = threading.Event(), threading.Event()

    def blocking(job: JobEnvelope) -> None:
        entered.set()
        gate.wait(10)

    ledger, queues = reserved("running", "prefetched"), FakeQueues([body("running"), body("prefetched")])
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


@pytest.mark.parametrize("stop_timeout", [None, 20.0])
def test_given_a_drain_then_a_released_run_keeps_its_lease_until_its_process_is_certainly_gone(
    tmp_path: Path, stop_timeout: float | None
) -> None:
    entered, gate = threading.Event(), threading.Event()

    def blocking(job: JobEnvelope) -> None:
        entered.set()
        gate.wait(10)

    ledger, queues = reserved("running"), FakeQueues([body("running")])
    worker, thread = start(tmp_path, queues, blocking, ledger, worker_slots=1, stop_timeout_seconds=stop_timeout)
    assert entered.wait(5)
    started = ledger.job("running").lease  # type: ignore[union-attr]
    signalled = time.time()
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    gate.set()
    lease = ledger.job("running").lease  # type: ignore[union-attr]
    assert started is not None and lease is not None and lease.owner == started.owner
    if stop_timeout is None:  # when the process goes is unknown: the lease runs to its expiry
        assert lease.expires_at == started.expires_at
    else:  # Docker's SIGKILL at the stop timeout: the job may run elsewhere from then, not 30 s later
        assert signalled + stop_timeout - 1 <= lease.expires_at <= time.time() + stop_timeout < started.expires_at


def test_given_a_ledger_that_cannot_be_written_then_the_job_waits_for_it_rather_than_run_unleased(
    tmp_path: Path,
) -> None:
    queues = FakeQueues([body("ok")])
    ran: list[str] = []
    worker, thread = start(tmp_path, queues, lambda job: ran.append(job.job_id), BrokenLog())
    until(lambda: bool(queues.visibility))
    worker.request_stop(signal.SIGTERM)
    thread.join(5)
    assert ran == [] and queues.deleted == [] and queues.visibility == [("m-0", 7)], "back after the retry delay"


def test_each_receive_has_its_own_attempt_id() -> None:
    first = ReceivedMessage(0, "u", "m-1", "handle-1", "{}", 1, None)
    second = ReceivedMessage(0, "u", "m-1", "handle-2", "{}", 2, None)
    assert attempt_id(first) != attempt_id(second) and attempt_id(first) == attempt_id(first)


def test_given_no_ledger_then_nothing_is_recorded_and_every_job_runs() -> None:
    recorder = AttemptRecorder(None, Telemetry("unit", "Test", 3600, time.monotonic), now=lambda: datetime.now(UTC))
    message = ReceivedMessage(0, "u", "m-1", "handle-1", "{}", 1, None)
    assert recorder.start("j", message) == StartResult(StartVerdict.START)
    recorder.end("j", message, AttemptOutcome.FAILED, "x")


class Clock:
    """The recorders' wall clock, moved by the ledger's calls."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)


class SlowLedger(FakeLedger):
    """A ledger whose calls take `start_seconds` / `renew_seconds` on `clock` (a loaded endpoint, retries)."""

    def __init__(self, clock: Clock, start_seconds: float, renew_seconds: float = 0.0) -> None:
        super().__init__()
        self.clock, self.start_seconds, self.renew_seconds = clock, start_seconds, renew_seconds
        self.renewals = 0

    def start_attempt(self, pool: str, job_id: str, attempt: Attempt, lease: Lease, now: float) -> StartResult:
        result = super().start_attempt(pool, job_id, attempt, lease, now)
        self.clock.t += self.start_seconds
        return result

    def renew_lease(self, pool: str, job_id: str, lease: Lease) -> bool:
        self.renewals += 1
        renewed = super().renew_lease(pool, job_id, lease)
        self.clock.t += self.renew_seconds
        return renewed


def receive(n: int) -> ReceivedMessage:
    """The `n`th receive of the same message (SQS delivers at least once; a slow heartbeat lets it show)."""
    return ReceivedMessage(0, "http://sqs.local/1/jobs", "m-1", f"r-{n}", body("slow"), n, 0.0)


@pytest.mark.parametrize(
    ("start_seconds", "renew_seconds", "first_runs", "renewals"),
    [
        (1.0, 0.0, True, 0),  # a prompt start: no renewal needed, the heartbeat's comes in time
        (8.0, 0.0, True, 1),  # a slow start: renewed at once, then run
        (8.0, 8.0, False, 1),  # the renewal slow too: not run, released, back later
    ],
)
def test_given_a_start_that_took_most_of_the_lease_then_a_second_receive_never_runs_the_job_at_the_same_time(
    start_seconds: float, renew_seconds: float, first_runs: bool, renewals: int
) -> None:
    # Lease 10 s, heartbeat every 10/3 s: a job starts only under a lease with two periods to go.
    clock = Clock()
    ledger = SlowLedger(clock, start_seconds, renew_seconds)
    ledger.put_job(POOL, "slow")
    first = AttemptRecorder(ledger, Telemetry("unit", "Test", 3600, time.monotonic), pool=POOL, identity="w1",
                            lease_seconds=10, now=clock.now)  # fmt: skip
    second = AttemptRecorder(ledger, Telemetry("unit", "Test", 3600, time.monotonic), pool=POOL, identity="w2",
                             lease_seconds=10, now=clock.now)  # fmt: skip
    began = clock.t
    a = first.start("slow", receive(1))
    assert (a is not None and a.verdict == StartVerdict.START) == first_runs
    assert ledger.renewals == renewals, "renewed at once only when the start took too long"
    if first_runs:
        # The heartbeat's first renewal, a period after the job started, if it comes before the copy.
        heartbeat = clock.t + 10 / 3
        if heartbeat < began + 10.5:
            clock.t = heartbeat
            assert first.renew("slow", receive(1))
    clock.t = max(clock.t, began + 10.5)  # a copy shows up once the first start's lease term is over
    ledger.start_seconds = 0.0
    b = second.start("slow", receive(2))
    assert b is not None
    if first_runs:
        assert b.verdict == StartVerdict.LEASED, "the first receive still runs the job under a renewed lease"
    else:
        assert b.verdict == StartVerdict.START
        assert outcomes(ledger, "slow")[0] == "released", "the first receive recorded it did not run"
