"""The credits area's ports: the ledger (credit, attempts, refunds), the job queues, parking, notices.

Adapters implement them over boto3; tests and the simulator implement them in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from queue_scaler.credits.domain.ledger import Account, Attempt, JobRecord, Lease, StartVerdict, Summary
from queue_scaler.credits.domain.refund import FailedJob, NoticeState, ParkedRecord, Reservation, UserNotice


class WriteOutcome(StrEnum):
    WRITTEN = "written"  # this delivery wrote the failure (and the refund): it holds the notice claim
    DUPLICATE = "duplicate"  # the job was already failed by an earlier or concurrent delivery
    REJECTED = "rejected"  # the ledger holds no matching reservation: the record must be parked
    COMPLETED = "completed"  # the job completed meanwhile: it is served, nothing is refunded
    RUNNING = "running"  # a receive holds a live lease on the job: neither refund nor return it now


@dataclass(frozen=True)
class FailureWrite:
    """What writing a failed job did, with the job's notice as the ledger holds it."""

    outcome: WriteOutcome
    # DUPLICATE only: the job as the ledger holds it (its claim is the notice's current holder), the
    # notice's state and when it was last claimed.
    stored: FailedJob | None = None
    notice: NoticeState | None = None
    claimed_at: datetime | None = None
    # REJECTED only: why the ledger refused the write.
    reason: str = ""


@dataclass(frozen=True)
class StartResult:
    """What a receive's start did: START means it holds `lease` and runs the job; LEASED carries the
    holder's lease (to come back after it); the other verdicts end the message (StartVerdict.deletes)."""

    verdict: StartVerdict
    lease: Lease | None = None


class AttemptLog(Protocol):
    """The workers' side of the ledger: the run lease and each receive's attempt, on `JOB#<pool>#<job>`
    items only, written with UpdateItem only (adapters.ledger.WORKER_WRITABLE_ATTRIBUTES)."""

    def start_attempt(self, pool: str, job_id: str, attempt: Attempt, lease: Lease, now: float) -> StartResult:
        """Take the job's run lease and record the attempt as started, in one conditional write.

        Written only when the job is reserved, neither completed nor failed, and its lease is free,
        expired (at `now`, epoch seconds) or already `lease.owner`'s; otherwise nothing is written and
        the verdict says why (domain.ledger.start_verdict)."""
        ...

    def renew_lease(self, pool: str, job_id: str, lease: Lease) -> bool:
        """Move the lease's expiry to `lease.expires_at`; False when `lease.owner` no longer holds it."""
        ...

    def end_attempt(
        self, pool: str, job_id: str, attempt: Attempt, owner: str, hold_until: float | None = None
    ) -> bool:
        """Record how the attempt ended. A COMPLETED one also completes the job (its final charge) and
        frees the lease; False when the job had already ended (refunded, or completed by another).
        A FAILED one frees the lease if `owner` still holds it (False when not). A RELEASED one keeps it,
        since the released job may still be finishing in a process about to exit, but no later than
        `hold_until` (epoch seconds: when that process is certainly gone) if `owner` still holds it."""
        ...


class ReturnWrite(StrEnum):
    COUNTED = "counted"  # this dead letter's return is counted: send it back
    ALREADY = "already"  # an earlier delivery of this dead letter sent it back: nothing to do
    UNCONFIRMED = "unconfirmed"  # an earlier delivery counted it but did not confirm the send: send it
    EXHAUSTED = "exhausted"  # the job was sent back the allowed number of times (or has ended)
    RUNNING = "running"  # a receive holds a live lease on the job: leave the dead letter for later


class JobReader(Protocol):
    def job(self, job_id: str) -> JobRecord | None:
        """The job's reservation, lease, attempts and settlement, found from its id alone (its pointer
        names its pool); None when the ledger has no reservation for it."""
        ...


class CreditLedger(JobReader, Protocol):
    """The producer's side of the ledger: deposits, reservations and their sends."""

    def deposit(self, user_id: str, credits: int, reference: str, now: datetime) -> None:
        """Add credits to a user's balance, once per `reference`.

        Raises ReferenceTaken when another user's deposit used `reference`, BalanceCapExceeded when the
        balance would pass the ledger's balance cap (checked in the same atomic write: nothing credited).
        """
        ...

    def account(self, user_id: str) -> Account | None:
        """The user's running totals, None when the user has none."""
        ...

    def reserve(self, reservation: Reservation, claim: str) -> None:
        """Reserve a job's credits in one transaction (with its pointer), its send claimed by `claim`.

        Raises InsufficientCredits when the balance is short, DuplicateReservation when the job id has one.
        """
        ...

    def mark_sent(self, pool: str, job_id: str, claim: str, queue: str, message_id: str) -> bool:
        """Note that the job's message was sent; False when `claim` no longer holds the send."""
        ...

    def mark_send_unknown(self, pool: str, job_id: str, claim: str) -> bool:
        """Note that the job's message may have been sent (the send's answer was lost): the reservation
        is kept for good, never released. False when `claim` no longer holds the send, or it was sent."""
        ...

    def release(self, reservation: Reservation, claim: str) -> bool:
        """Undo an unsent, never started reservation (its send failed): the credits go back, the job
        is forgotten. False when `claim` no longer holds the send (taken over, sent or started) or a
        send's outcome is unknown (its message may be queued)."""
        ...

    def take_over_send(self, pool: str, job_id: str, seen_claim: str, claim: str, now: datetime) -> bool:
        """Move an unsent job's send claim from `seen_claim` to `claim`; False when someone moved it first."""
        ...


class RefundLedger(JobReader, Protocol):
    """DlqRefundFunction's side of the ledger: returns, failures (refunds) and the user's notice."""

    def record_return(self, pool: str, job_id: str, message_id: str, max_returns: int, now: datetime) -> ReturnWrite:
        """Count one dead letter (`message_id`) of the job as sent back to its queue, once per message,
        only while the job is reserved, not completed and not running under a live lease."""
        ...

    def confirm_return(self, pool: str, job_id: str, message_id: str) -> None:
        """Note that the counted return of `message_id` was sent (a later delivery then sends nothing)."""
        ...

    def mark_parked(self, pool: str, job_id: str, message_id: str, now: datetime) -> None:
        """Note on an unsettled job that a dead letter of it was parked (for `jobs show`)."""
        ...

    def record_failure(self, job: FailedJob) -> FailureWrite:
        """Write the failed job (refund, balance, job status, notice claim) in one transaction, once per
        job, only while it is reserved, not completed and not running under a live lease."""
        ...

    def take_over_notice(self, pool: str, job_id: str, seen_claim: str, claim: str, now: datetime) -> bool:
        """Move the job's notice claim from `seen_claim` to `claim`; False when someone else moved it first."""
        ...

    def start_notice(self, pool: str, job_id: str, claim: str) -> bool:
        """Mark the notice publishing if `claim` still holds it pending; False otherwise (do not publish)."""
        ...

    def reopen_notice(self, pool: str, job_id: str, claim: str) -> bool:
        """Put a publishing notice back to pending (its publish was refused); False when `claim` lost it."""
        ...

    def confirm_notice(self, pool: str, job_id: str, claim: str) -> bool:
        """Mark the notice sent if `claim` still holds it; False when another delivery took it over."""
        ...

    def summary(self) -> Summary:
        """Every account's totals and the count of refunded and recorded jobs."""
        ...


class Ledger(CreditLedger, AttemptLog, RefundLedger, Protocol):
    """The whole ledger: what the adapter and the fake implement, and what operators' tools read."""


class Parking(Protocol):
    def park(self, record: ParkedRecord) -> None:
        """Keep a record that cannot be refunded, with its body and the reason, for a person to act on."""
        ...


class JobQueues(Protocol):
    def send(self, queue: str, body: str) -> str:
        """Send one message to the named job queue; returns its message id.

        Raises OutcomeUnknown when the message may be on the queue (the answer was lost), any other
        AwsCallError when it certainly is not."""
        ...


class Notifier(Protocol):
    def publish(self, notice: UserNotice) -> None:
        """Send the user's notice (one SNS message)."""
        ...
