"""The credit ledger's model: each user's account and the invariant every write keeps.

Every movement of credits is one DynamoDB transaction that updates the account's running totals and
writes the matching credit transaction, so the totals below are exact, not estimates:

    charged = reserved - refunded          (a reservation is the charge; a refund returns it)
    balance = deposited - charged          (credits the user may still reserve)
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from queue_scaler.shared.jobs import Reference, UserId


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TransactionKind(StrEnum):
    """The kinds of credit transaction, one item each in the user's statement."""

    DEPOSIT = "deposit"
    RESERVE = "reserve"
    REFUND = "refund"


class JobStatus(StrEnum):
    """A job's state in the ledger. COMPLETED and FAILED are its two exclusive ends: whichever write
    comes first wins, and the other's condition (still RESERVED, not completed) then fails."""

    RESERVED = "reserved"  # submitted; its credits are reserved (charged unless refunded)
    COMPLETED = "completed"  # its handler succeeded: the reservation is the final charge
    FAILED = "failed"  # dead-lettered; refunded if it had reserved anything


class SendState(StrEnum):
    """Whether the producer's message of a job reached SQS, as `jobs show` prints it."""

    UNSENT = "unsent"  # reserved, its send not (yet) answered: released if SQS rejects it
    UNKNOWN = "unknown"  # the send's answer was lost: it may be queued; the reservation is kept for good
    SENT = "sent"  # SQS took it


class AttemptOutcome(StrEnum):
    """How one receive of a job's message ended, as its worker recorded it."""

    STARTED = "started"  # the handler is running, or its worker died (SIGKILL, crash) before it ended
    COMPLETED = "completed"
    FAILED = "failed"  # the handler raised, or the envelope was invalid
    RELEASED = "released"  # given back unfinished (drain deadline, prefetched or received while stopping)


class Attempt(_Model):
    """One receive of a job's message: `attempt_id` is unique per receive (derived from its receipt handle)."""

    attempt_id: str
    at: datetime
    outcome: AttemptOutcome
    reason: str | None = None


class JobOutcome(StrEnum):
    """A job's fate as `queue-scaler jobs show` prints it (CONTRACTS.md section 6)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    REFUNDED = "refunded"
    RECORDED = "recorded"
    PARKED = "parked"


class Lease(_Model):
    """The right to run a job: held by one receive of one of its messages until `expires_at`.

    `owner` names the worker instance and the receive (its attempt id, derived from the receipt
    handle), so that another copy of the message, or the same message received again after its
    visibility ran out, is another owner. The worker renews `expires_at` with its visibility
    heartbeat; a worker that dies stops renewing, and the job may run again once it has expired.
    """

    owner: str
    attempt_id: str
    expires_at: float = Field(description="Epoch seconds")

    def live(self, now: float) -> bool:
        return now < self.expires_at


class StartVerdict(StrEnum):
    """Whether a receive of a job's message may run it (see `start_verdict`)."""

    START = "start"  # the lease is this receive's: run the job
    LEASED = "leased"  # another receive holds a live lease: leave the message to come back after it
    COMPLETED = "completed"  # terminal: the job ran; delete the message
    REFUNDED = "refunded"  # terminal: the job failed for good (refunded or recorded); delete it
    UNRESERVED = "unreserved"  # no reservation (never submitted, or released): never run unpaid; delete it

    @property
    def deletes(self) -> bool:
        """The message is deleted: the job is terminal or was never paid for."""
        return self not in (StartVerdict.START, StartVerdict.LEASED)


class JobRecord(_Model):
    """Everything the ledger holds about one job: its reservation, attempts and settlement."""

    job_id: str
    pool: str | None = None
    user_id: str | None = None
    plan: str | None = None
    kind: str | None = None
    credits: Annotated[int, Field(ge=0)] = 0
    status: JobStatus | None = Field(default=None, description="None: attempts recorded but no reservation")
    refunded: Annotated[int, Field(ge=0)] = 0
    sent: bool = Field(default=False, description="The producer's message was accepted by SQS")
    send_unknown: bool = Field(default=False, description="A send's answer was lost: the message may be queued")
    send_claim: str | None = Field(default=None, description="Token of the submit that holds the send")
    claimed_at: datetime | None = None
    queue: str | None = Field(default=None, description="The queue the producer sent it to")
    parked: bool = False
    returns: Annotated[int, Field(ge=0)] = Field(default=0, description="Dead letters sent back to the queue")
    returned: frozenset[str] = Field(default=frozenset(), description="Message ids of those dead letters")
    returns_sent: frozenset[str] = Field(default=frozenset(), description="Those whose send was confirmed")
    attempts: list[Attempt] = Field(default_factory=list)
    lease: Lease | None = None
    completed_at: datetime | None = None
    completed_attempt: str | None = None

    @property
    def outcome(self) -> JobOutcome:
        """Settled states first (failed, completed, parked), then what its attempts say (job_outcome)."""
        return job_outcome(self)

    @property
    def send_state(self) -> SendState:
        if self.sent:
            return SendState.SENT
        return SendState.UNKNOWN if self.send_unknown else SendState.UNSENT

    def tally(self) -> Counter[AttemptOutcome]:
        """Attempts per outcome."""
        return Counter(a.outcome for a in self.attempts)


def job_outcome(job: JobRecord) -> JobOutcome:
    """The outcome a job is counted under: settled states first (failed, completed, parked), then what
    its attempts say. JobRecord.outcome's rule, kept out of the property because mutmut does not mutate
    decorated functions, so that `make mutate` tests it."""
    if job.status == JobStatus.FAILED:
        return JobOutcome.REFUNDED if job.refunded else JobOutcome.RECORDED
    if job.status == JobStatus.COMPLETED:
        return JobOutcome.COMPLETED
    if job.parked:
        return JobOutcome.PARKED
    if job.attempts and max(job.attempts, key=lambda a: a.at).outcome == AttemptOutcome.STARTED:
        return JobOutcome.RUNNING
    return JobOutcome.PENDING


def start_verdict(job: JobRecord | None, owner: str, now: float) -> StartVerdict:
    """May the receive `owner` start the job now? The ledger's start condition, as a pure rule.

    Only a reserved job that is neither completed nor failed runs, and only under a lease that is
    free, expired, or already this receive's (a retried start).
    """
    if job is None or job.status is None:
        return StartVerdict.UNRESERVED
    if job.status == JobStatus.COMPLETED:
        return StartVerdict.COMPLETED
    if job.status == JobStatus.FAILED:
        return StartVerdict.REFUNDED
    if job.lease is not None and job.lease.owner != owner and job.lease.live(now):
        return StartVerdict.LEASED
    return StartVerdict.START


def may_settle_as_failed(job: JobRecord, now: float) -> bool:
    """A dead letter may refund (or record, or send back) the job only while no receive holds a live
    lease on it: a job that is running is neither refunded nor returned."""
    return job.lease is None or not job.lease.live(now)


class Deposit(_Model):
    """A deposit as a producer asks for it: the ids by their one rule (queue_scaler.shared.jobs); the amount
    is bounded by the CreditLimits (domain.refund), which settings configure."""

    user_id: UserId
    credits: Annotated[int, Field(strict=True)]
    reference: Reference


class Account(_Model):
    """One user's running totals, as stored on the user's balance item."""

    user_id: str
    balance: Annotated[int, Field(ge=0)] = 0
    deposited: Annotated[int, Field(ge=0)] = 0
    reserved: Annotated[int, Field(ge=0)] = 0
    refunded: Annotated[int, Field(ge=0)] = 0

    @property
    def charged(self) -> int:
        """Credits the user finally paid: reserved by jobs that did not fail for good."""
        return self.reserved - self.refunded

    def problems(self) -> list[str]:
        """Violations of the ledger's invariant; empty when the account adds up."""
        found = []
        if self.refunded > self.reserved:
            found.append(f"{self.user_id}: refunded {self.refunded} exceeds reserved {self.reserved}")
        if self.balance != self.deposited - self.charged:
            found.append(
                f"{self.user_id}: balance {self.balance} != deposited {self.deposited} - charged {self.charged}"
            )
        return found


class Summary(_Model):
    """The ledger's totals across users: what the demo summary and `local status` print."""

    accounts: list[Account]
    refunds: Annotated[int, Field(ge=0, description="Jobs refunded (credits returned)")]
    recorded: Annotated[int, Field(ge=0, description="Failed jobs that had reserved nothing")]
    outcomes: dict[JobOutcome, int] = Field(
        default_factory=dict, description="Jobs per outcome (each job the ledger knows counted once)"
    )

    @property
    def jobs(self) -> int:
        """Jobs the ledger knows: the sum of `outcomes`."""
        return sum(self.outcomes.values())

    @property
    def reserved(self) -> int:
        return sum(a.reserved for a in self.accounts)

    @property
    def refunded(self) -> int:
        return sum(a.refunded for a in self.accounts)

    @property
    def charged(self) -> int:
        return sum(a.charged for a in self.accounts)

    def problems(self) -> list[str]:
        return [p for a in self.accounts for p in a.problems()]
