"""Each receive's run lease and outcome in the ledger: the worker's side of "exactly once".

Before a job runs, its receive takes the job's run lease in the ledger (one conditional write that
also records the attempt as started). Only a reserved job, neither completed nor refunded, whose lease
is free or expired, starts: so one job never runs twice at the same time, never again after it
completed, never after its refund, and never unpaid. The heartbeat renews the lease with the
message's visibility; a worker that dies stops renewing, and the job runs again once it expires.

The DLQ refund tells a job that failed for good from one that was only released (a drain deadline, a
prefetched or long-polled message given back at SIGTERM) by the attempt records. Through
ports.AttemptLog (the ledger adapter), so the worker never learns the table's layout.

Every ledger call is bounded by short timeouts. A start that cannot be written does not run the job
(its message comes back after the retry delay): running without a lease could run it twice. Ending
writes are best effort: the worker logs `attempt_not_recorded`, and the lease then expires on its own.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime

import boto3
from botocore.config import Config

from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.ledger import Attempt, AttemptOutcome, Lease, StartVerdict
from queue_scaler.credits.ports import AttemptLog, StartResult
from queue_scaler.shared.errors import AwsCallError
from queue_worker.settings import WorkerSettings
from queue_worker.sqs import ReceivedMessage
from queue_worker.telemetry import Telemetry

#: Short: a write happens before each job and after it, and releases are written inside the drain.
LEDGER_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})


def attempt_id(message: ReceivedMessage) -> str:
    """Unique per receive: every receive of a message gets a new receipt handle."""
    return hashlib.sha256(message.receipt_handle.encode()).hexdigest()[:24]


def worker_identity(settings: WorkerSettings) -> str:
    """This worker process: its instance (or host) and process id, the first half of a lease's owner."""
    return f"{settings.instance_id or socket.gethostname()}:{os.getpid()}"


def make_attempt_log(settings: WorkerSettings) -> AttemptLog | None:
    """The ledger's attempt log when LEDGER_TABLE is set, else None (no lease, nothing recorded)."""
    if not settings.ledger_table:
        return None
    return DynamoLedger(settings.ledger_table, boto3.client("dynamodb", config=LEDGER_CONFIG))


class AttemptRecorder:
    """Takes, renews and frees run leases and records attempts for one worker process; never raises."""

    def __init__(
        self,
        log: AttemptLog | None,
        telemetry: Telemetry,
        *,
        pool: str = "default",
        identity: str = "worker",
        lease_seconds: float = 120,
        min_lease_left: float | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._log = log
        self._telemetry = telemetry
        self._pool = pool
        self._identity = identity
        self._lease_seconds = lease_seconds
        # What a lease must have left when its job starts: the heartbeat renews it once a period and a
        # renewal may take up to a period (two thirds of the lease with the default period, a third).
        self._min_lease_left = 2 * lease_seconds / 3 if min_lease_left is None else min_lease_left
        self._now = now

    @classmethod
    def for_settings(cls, settings: WorkerSettings, telemetry: Telemetry) -> AttemptRecorder:
        """The recorder of a worker process: its pool's jobs, leases as long as its visibility timeout."""
        return cls(
            make_attempt_log(settings),
            telemetry,
            pool=settings.pool_name,
            identity=worker_identity(settings),
            lease_seconds=settings.visibility_timeout,
            min_lease_left=min(2 * settings.heartbeat_period, 2 * settings.visibility_timeout / 3),
        )

    def owner(self, message: ReceivedMessage) -> str:
        """The lease owner of this receive: this worker and the receive's attempt id."""
        return f"{self._identity}/{attempt_id(message)}"

    def start(self, job_id: str, message: ReceivedMessage) -> StartResult | None:
        """Take the job's lease and record the attempt as started.

        START: run the job. LEASED: another receive runs it (its lease says until when). COMPLETED,
        REFUNDED, UNRESERVED: never run it. None: the ledger could not be written; do not run it now.
        Without a ledger (LEDGER_TABLE unset) every job starts, with no lease.
        """
        if self._log is None:
            return StartResult(StartVerdict.START)
        now = self._now()
        attempt = Attempt(attempt_id=attempt_id(message), at=now, outcome=AttemptOutcome.STARTED)
        lease = Lease(owner=self.owner(message), attempt_id=attempt.attempt_id, expires_at=self._expiry(now))
        try:
            result = self._log.start_attempt(self._pool, job_id, attempt, lease, now.timestamp())
        except AwsCallError as error:
            self._not_recorded(job_id, attempt, error)
            return None
        if result.verdict == StartVerdict.START and not self._lease_lasts(job_id, message, lease.expires_at):
            return None
        return result

    def _lease_lasts(self, job_id: str, message: ReceivedMessage, expires_at: float) -> bool:
        """Whether a lease just taken has the time left its renewals need; renewed once when it has not.

        The lease runs from before the call that took it (the ledger compares it with the next receive's
        clock), so a call that took most of the lease leaves a lease that may run out before the
        heartbeat's first renewal, and another receive of the same job (SQS delivers at least once, and
        a slow heartbeat lets the message show again) would then start it too. The job runs only under a
        lease with `min_lease_left` to go; otherwise the attempt ends `released`, its lease cut to now,
        and the message comes back.
        """
        if expires_at - self._now().timestamp() >= self._min_lease_left:
            return True
        renewed_from = self._now()
        if self.renew(job_id, message) and self._expiry(renewed_from) - self._now().timestamp() >= self._min_lease_left:
            return True
        self._telemetry.event(
            "lease_too_short",
            "the ledger answered too late for the job to run under its lease; it comes back later",
            level="warning",
            job_id=job_id,
            min_lease_left_seconds=round(self._min_lease_left, 3),
        )
        self.end(job_id, message, AttemptOutcome.RELEASED, "lease too short to run", hold_until=self._now().timestamp())
        return False

    def renew(self, job_id: str, message: ReceivedMessage) -> bool:
        """Extend this receive's lease by the lease period; False when it was lost (or cannot be written)."""
        if self._log is None:
            return True
        now = self._now()
        lease = Lease(owner=self.owner(message), attempt_id=attempt_id(message), expires_at=self._expiry(now))
        try:
            return self._log.renew_lease(self._pool, job_id, lease)
        except AwsCallError as error:
            self._telemetry.event(
                "lease_not_renewed",
                "the ledger could not renew the lease",
                level="warning",
                job_id=job_id,
                error=str(error),
            )
            return False

    def end(
        self,
        job_id: str | None,
        message: ReceivedMessage,
        outcome: AttemptOutcome,
        reason: str = "",
        hold_until: float | None = None,
    ) -> bool:
        """Record how the attempt ended and free its lease (a completion also settles the job's charge);
        a release keeps the lease no later than `hold_until` (epoch seconds: this process gone).

        False when a completion found the job already ended (refunded meanwhile), or nothing was written."""
        if self._log is None or job_id is None:
            return True
        attempt = Attempt(attempt_id=attempt_id(message), at=self._now(), outcome=outcome, reason=reason or None)
        try:
            return self._log.end_attempt(self._pool, job_id, attempt, self.owner(message), hold_until)
        except AwsCallError as error:
            self._not_recorded(job_id, attempt, error)
            return False

    def _expiry(self, now: datetime) -> float:
        return now.timestamp() + self._lease_seconds

    def _not_recorded(self, job_id: str, attempt: Attempt, error: AwsCallError) -> None:
        self._telemetry.event(
            "attempt_not_recorded",
            "the ledger could not record this attempt",
            level="warning",
            job_id=job_id,
            outcome=str(attempt.outcome),
            error=str(error),
        )
