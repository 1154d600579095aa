"""What the worker writes to the ledger for each receive, and what it says when it cannot."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from queue_scaler.credits.domain.ledger import Attempt, AttemptOutcome, Lease, StartVerdict
from queue_scaler.credits.ports import StartResult
from queue_scaler.shared.errors import Throttled
from queue_worker.attempts import AttemptRecorder, attempt_id, make_attempt_log
from queue_worker.settings import WorkerSettings
from queue_worker.sqs import ReceivedMessage
from queue_worker.telemetry import Telemetry

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MESSAGE = ReceivedMessage(0, "http://sqs.local/1/q", "m-1", "handle-1", "{}", 3, None)


class SpyTelemetry(Telemetry):
    def __init__(self) -> None:
        super().__init__("unit", "Test", 3600, time.monotonic)
        self.events: list[dict[str, Any]] = []

    def event(self, event: str, message: str, *, job_id: str | None = None, level: str = "info", **fields: Any) -> None:
        self.events.append({"event": event, "job_id": job_id, "level": level, **fields})


class Log:
    """An attempt log recording its calls; `completed` jobs answer COMPLETED to a start."""

    def __init__(self, completed: frozenset[str] = frozenset(), fail: bool = False) -> None:
        self.calls: list[tuple[str, str, Attempt]] = []
        self.leases: list[tuple[str, str, Lease]] = []
        self.owners: list[str] = []
        self.completed = completed
        self.fail = fail

    def start_attempt(self, pool: str, job_id: str, attempt: Attempt, lease: Lease, now: float) -> StartResult:
        self.calls.append(("start", job_id, attempt))
        self.leases.append((pool, job_id, lease))
        if self.fail:
            raise Throttled("TransactWriteItems", "ThrottlingException")
        return StartResult(StartVerdict.COMPLETED if job_id in self.completed else StartVerdict.START, lease)

    def renew_lease(self, pool: str, job_id: str, lease: Lease) -> bool:
        self.leases.append((pool, job_id, lease))
        return not self.fail

    def end_attempt(
        self, pool: str, job_id: str, attempt: Attempt, owner: str, hold_until: float | None = None
    ) -> bool:
        self.calls.append(("end", job_id, attempt))
        self.owners.append(owner)
        if self.fail:
            raise Throttled("UpdateItem", "ThrottlingException")
        return True


def test_an_attempt_id_is_the_first_24_hex_of_the_receipt_handles_sha256() -> None:
    assert attempt_id(MESSAGE) == hashlib.sha256(b"handle-1").hexdigest()[:24]


def test_given_a_receive_then_started_and_ended_records_carry_its_id_time_outcome_and_reason() -> None:
    log = Log()
    recorder = AttemptRecorder(log, SpyTelemetry(), pool="video", identity="i-1:7", lease_seconds=90, now=lambda: AT)
    for _ in range(2):  # a retried start of the same receive is the same lease
        started = recorder.start("j-1", MESSAGE)
        assert started is not None and started.verdict == StartVerdict.START
    assert recorder.renew("j-1", MESSAGE)
    recorder.end("j-1", MESSAGE, AttemptOutcome.FAILED, "boom")
    recorder.end("j-1", MESSAGE, AttemptOutcome.COMPLETED)
    expected = attempt_id(MESSAGE)
    assert [(kind, job, a.attempt_id, a.at, a.outcome, a.reason) for kind, job, a in log.calls] == [
        ("start", "j-1", expected, AT, AttemptOutcome.STARTED, None),
        ("start", "j-1", expected, AT, AttemptOutcome.STARTED, None),
        ("end", "j-1", expected, AT, AttemptOutcome.FAILED, "boom"),
        ("end", "j-1", expected, AT, AttemptOutcome.COMPLETED, None),
    ]
    # The lease: this pool's job, owned by this worker and this receive, for the lease period from now.
    owner = f"i-1:7/{expected}"
    lease = Lease(owner=owner, attempt_id=expected, expires_at=AT.timestamp() + 90)
    assert log.leases == [("video", "j-1", lease)] * 3 and log.owners == [owner, owner]


def test_given_a_job_the_ledger_has_completed_then_start_says_so() -> None:
    recorder = AttemptRecorder(Log(completed=frozenset({"j-1"})), SpyTelemetry(), now=lambda: AT)
    started = recorder.start("j-1", MESSAGE)
    assert started is not None and started.verdict == StartVerdict.COMPLETED


def test_given_no_job_id_then_nothing_is_recorded() -> None:
    log = Log()
    AttemptRecorder(log, SpyTelemetry(), now=lambda: AT).end(None, MESSAGE, AttemptOutcome.RELEASED, "stop")
    assert log.calls == []


def test_given_a_ledger_that_cannot_be_written_then_the_job_does_not_start_and_each_miss_is_logged() -> None:
    telemetry = SpyTelemetry()
    recorder = AttemptRecorder(Log(fail=True), telemetry, now=lambda: AT)
    assert recorder.start("j-1", MESSAGE) is None, "no lease, no run: running unleased could run it twice"
    recorder.end("j-1", MESSAGE, AttemptOutcome.RELEASED, "stop")
    assert [(e["event"], e["job_id"], e["level"], e["outcome"]) for e in telemetry.events] == [
        ("attempt_not_recorded", "j-1", "warning", "started"),
        ("attempt_not_recorded", "j-1", "warning", "released"),
    ]
    assert all("ThrottlingException" in e["error"] for e in telemetry.events)


def test_given_a_ledger_table_then_attempts_go_to_it_and_without_one_nowhere(monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    base = {"queue_urls": "http://sqs.local/1/q", "job_handler": "m:f"}
    assert make_attempt_log(WorkerSettings(**base)) is None
    assert make_attempt_log(WorkerSettings(**base, ledger_table="ledger")) is not None
