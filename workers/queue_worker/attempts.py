"""Each receive's outcome in the ledger: the worker's side of "refunds only for real failures".

The DLQ refund tells a job that failed for good from one that was only released (a drain deadline, a
prefetched or long-polled message given back at SIGTERM) by these records, and a job already
completed is never run again. Through ports.AttemptLog (the ledger adapter), so the worker never
learns the table's layout.

Recording is best effort and bounded: a ledger that cannot be written never fails nor delays a job
beyond the client's short timeouts; the worker logs `attempt_not_recorded` and the dead letter is
then settled as it was before attempts existed (as a failure).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import boto3
from botocore.config import Config

from queue_scaler.adapters.ledger import DynamoLedger
from queue_scaler.domain.ledger import Attempt, AttemptOutcome
from queue_scaler.errors import AwsCallError
from queue_scaler.ports import AttemptLog
from queue_worker.settings import WorkerSettings
from queue_worker.sqs import ReceivedMessage
from queue_worker.telemetry import Telemetry

#: Short: a write happens before each job and after it, and releases are written inside the drain.
LEDGER_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})


def attempt_id(message: ReceivedMessage) -> str:
    """Unique per receive: every receive of a message gets a new receipt handle."""
    return hashlib.sha256(message.receipt_handle.encode()).hexdigest()[:24]


def make_attempt_log(settings: WorkerSettings) -> AttemptLog | None:
    """The ledger's attempt log when LEDGER_TABLE is set, else None (attempts are not recorded)."""
    if not settings.ledger_table:
        return None
    return DynamoLedger(settings.ledger_table, boto3.client("dynamodb", config=LEDGER_CONFIG))


class AttemptRecorder:
    """Records started, completed, failed and released attempts; never raises."""

    def __init__(
        self,
        log: AttemptLog | None,
        telemetry: Telemetry,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._log = log
        self._telemetry = telemetry
        self._now = now

    def start(self, job_id: str, message: ReceivedMessage) -> bool:
        """Record the attempt as started; False when the ledger says the job already completed."""
        if self._log is None:
            return True
        attempt = Attempt(attempt_id=attempt_id(message), at=self._now(), outcome=AttemptOutcome.STARTED)
        try:
            return self._log.start_attempt(job_id, attempt)
        except AwsCallError as error:
            self._not_recorded(job_id, attempt, error)
            return True

    def end(self, job_id: str | None, message: ReceivedMessage, outcome: AttemptOutcome, reason: str = "") -> None:
        """Record how the attempt ended (a completion also settles the job's charge)."""
        if self._log is None or job_id is None:
            return
        attempt = Attempt(attempt_id=attempt_id(message), at=self._now(), outcome=outcome, reason=reason or None)
        try:
            self._log.end_attempt(job_id, attempt)
        except AwsCallError as error:
            self._not_recorded(job_id, attempt, error)

    def _not_recorded(self, job_id: str, attempt: Attempt, error: AwsCallError) -> None:
        self._telemetry.event(
            "attempt_not_recorded",
            "the ledger could not record this attempt",
            level="warning",
            job_id=job_id,
            outcome=str(attempt.outcome),
            error=str(error),
        )
