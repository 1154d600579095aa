"""Refunds of dead-lettered jobs: what a job reserved, whether it is refunded, and who tells the user.

Pure and deterministic: the service passes in the job's plan and credits, the policy and `now`.
The ledger's invariant (README, "Credits"): for every user, credits reserved minus credits refunded
equals credits charged, and the balance equals credits deposited minus credits charged. A reservation
is the charge; a refund returns it; a job that succeeds simply keeps its reservation.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from queue_scaler.credits.domain.ledger import AttemptOutcome, JobRecord, JobStatus, may_settle_as_failed
from queue_scaler.shared.jobs import JobEnvelope, Plan


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RefundPolicy(_Model):
    """What the ledger accepts: which plans are charged at all, and the largest single amount."""

    cap: Annotated[int, Field(gt=0, description="Largest amount one job may reserve or refund")] = 10_000
    uncharged_plans: frozenset[Plan] = Field(
        default=frozenset({"free"}), description="Plans whose jobs reserve nothing, whatever their credits"
    )


class InvalidAmount(ValueError):
    """An amount of credits out of its bounds (negative, zero where it must be positive, above a cap)."""


#: Default caps on credits. DynamoDB stores a number with up to 38 significant digits, and JSON
#: readers (JavaScript) and CloudWatch hold numbers as doubles, exact up to 2^53 (about 9 * 10^15).
#: A balance of at most 10^12 and a deposit of at most 10^9 stay exact everywhere with three orders of
#: magnitude to spare, and an account's running totals (deposited, reserved) would need 10^26
#: deposits to outgrow 38 digits. A product that sells more raises them up to MAX_CREDIT_CAP.
DEFAULT_DEPOSIT_CAP = 10**9
DEFAULT_BALANCE_CAP = 10**12
#: The highest cap a setting may configure: below 2^53, so that every balance is an exact double.
MAX_CREDIT_CAP = 10**15


class CreditLimits(_Model):
    """The bounds of a user's credits: one deposit, and the balance deposits may reach.

    The ledger enforces the balance cap in its deposit's conditional write, so that two deposits that
    each fit cannot together pass it; a deposit above the deposit cap is refused before any write.
    """

    deposit_cap: Annotated[int, Field(gt=0, le=MAX_CREDIT_CAP, description="Most credits one deposit adds")] = (
        DEFAULT_DEPOSIT_CAP
    )
    balance_cap: Annotated[int, Field(gt=0, le=MAX_CREDIT_CAP, description="Most credits one balance holds")] = (
        DEFAULT_BALANCE_CAP
    )

    @model_validator(mode="after")
    def _deposit_fits_a_balance(self) -> CreditLimits:
        if self.deposit_cap > self.balance_cap:
            raise ValueError(f"deposit_cap ({self.deposit_cap}) is above balance_cap ({self.balance_cap})")
        return self

    def check_deposit(self, credits: int) -> None:
        """Raises InvalidAmount, naming the field and the cap, unless 1 <= credits <= deposit_cap."""
        if credits <= 0:
            raise InvalidAmount(f"credits: a deposit must be positive, got {credits}")
        if credits > self.deposit_cap:
            raise InvalidAmount(
                f"credits: {credits} is above the deposit cap of {self.deposit_cap}: check the amount, "
                "or raise DEPOSIT_CAP"
            )


class Verdict(StrEnum):
    """What happens to a dead-lettered job."""

    REFUND = "refund"  # it reserved credits: give them back
    RECORD = "record"  # it reserved nothing: mark it failed, move no credit
    PARK = "park"  # the amount cannot be trusted: keep the record for a person, move nothing


class Assessment(_Model):
    verdict: Verdict
    amount: Annotated[int, Field(ge=0, description="Credits to refund (0 unless REFUND)")]
    reason: str = Field(description="Why, in words an operator reads in the parking table")


class DeadLetterPolicy(_Model):
    """When a dead letter is a job that failed for good, and how often one that did not goes back."""

    required_failures: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=5,
        description="Real failures (handler errors, or attempts whose worker died) a job needs before it is "
        "refunded: the job queues' maxReceiveCount, so releases never count toward it",
    )
    max_returns: Annotated[int, Field(ge=0, le=100)] = Field(
        default=3,
        description="Times a dead letter without enough real failures is sent back to its queue; after "
        "that it is settled as failed for good (refunded), logged and counted as ReturnsExhausted",
    )


class DeadLetterStep(StrEnum):
    """What a dead letter of a known job calls for, before any credit moves."""

    COMPLETED = "completed"  # the job was served (its message came back after it succeeded): delete it
    RUNNING = "running"  # a receive holds a live lease on it: neither return nor refund it now; retry later
    RETURN = "return"  # its receives were mostly releases, not failures: send it back to its queue
    SETTLE = "settle"  # it failed for good: refund (or record) once


class DeadLetterDecision(_Model):
    step: DeadLetterStep
    reason: str
    exhausted: bool = Field(default=False, description="SETTLE because the returns ran out")


def _ended(job: JobRecord, now: float) -> DeadLetterDecision | None:
    """The decision for a job that is settled, completed or running; None for the others."""
    if job.status == JobStatus.FAILED:
        return DeadLetterDecision(step=DeadLetterStep.SETTLE, reason="the job is already settled as failed")
    if job.status == JobStatus.COMPLETED:
        return DeadLetterDecision(step=DeadLetterStep.COMPLETED, reason="the job completed; nothing to refund")
    if not may_settle_as_failed(job, now):
        return DeadLetterDecision(step=DeadLetterStep.RUNNING, reason="the job is running under a live lease")
    return None


def dead_letter_step(job: JobRecord | None, policy: DeadLetterPolicy, now: float) -> DeadLetterDecision:
    """Tell real failures from releases: only a job that failed `required_failures` times is refunded.

    A job running under a live lease (at `now`, epoch seconds) is neither: its dead letter waits.

    An attempt still marked started counts as a failure: its worker died holding it (a crash or a
    SIGKILL), which the job itself may have caused. A job with no release recorded is settled as it
    always was (a worker that records nothing, or a message that kept timing out).
    """
    if job is None:
        return DeadLetterDecision(step=DeadLetterStep.SETTLE, reason="the ledger knows nothing of the job")
    ended = _ended(job, now)
    if ended is not None:
        return ended
    tally = job.tally()
    failures = tally[AttemptOutcome.FAILED] + tally[AttemptOutcome.STARTED]
    releases = tally[AttemptOutcome.RELEASED]
    counts = f"{failures} real failures of {policy.required_failures} needed, {releases} releases"
    if failures >= policy.required_failures:
        return DeadLetterDecision(step=DeadLetterStep.SETTLE, reason=f"failed for good: {counts}")
    if releases == 0:
        return DeadLetterDecision(step=DeadLetterStep.SETTLE, reason=f"no release recorded: {counts}")
    if job.returns >= policy.max_returns:
        return DeadLetterDecision(
            step=DeadLetterStep.SETTLE,
            reason=f"sent back {job.returns} times (the limit) without completing: {counts}",
            exhausted=True,
        )
    return DeadLetterDecision(
        step=DeadLetterStep.RETURN, reason=f"send back ({job.returns + 1} of {policy.max_returns}): {counts}"
    )


def chargeable(plan: Plan, credits: int, policy: RefundPolicy) -> int:
    """The credits a job of `plan` reserves at submission; raises InvalidAmount outside [0, cap]."""
    if credits < 0:
        raise InvalidAmount(f"credits {credits} is negative")
    if plan in policy.uncharged_plans:
        return 0
    if credits > policy.cap:
        raise InvalidAmount(f"credits {credits} exceed the cap of {policy.cap}")
    return credits


def job_credit_cap(policy: RefundPolicy, plan_max: int | None) -> int:
    """The most credits one job of a plan may carry: the plan's `max_credits` in the pool configuration,
    never above the refund cap (a job above it could not be refunded), which is the default."""
    return policy.cap if plan_max is None else min(plan_max, policy.cap)


def check_job_credits(plan: Plan, credits: int, cap: int) -> None:
    """Raises InvalidAmount, naming the field and the cap, unless 0 <= credits <= cap.

    Charged or not: a job of an uncharged plan carries its credits to the workers and the refund
    function too, and a number without a bound is one they could not store or add up.
    """
    if credits < 0:
        raise InvalidAmount(f"credits: {credits} is negative: give 0 or more")
    if credits > cap:
        raise InvalidAmount(
            f"credits: {credits} is above plan {plan}'s cap of {cap} per job: give at most {cap} "
            "(the plan's max_credits in the pool configuration, at most REFUND_CAP)"
        )


def assess(plan: Plan, credits: int, policy: RefundPolicy) -> Assessment:
    """Refund what the job reserved, record a job that reserved nothing, park an amount out of bounds."""
    try:
        amount = chargeable(plan, credits, policy)
    except InvalidAmount as error:
        return Assessment(verdict=Verdict.PARK, amount=0, reason=f"unrefundable: {error}")
    if amount == 0:
        why = f"plan {plan} is not charged" if plan in policy.uncharged_plans else "the job reserved 0 credits"
        return Assessment(verdict=Verdict.RECORD, amount=0, reason=f"nothing to refund: {why}")
    return Assessment(verdict=Verdict.REFUND, amount=amount, reason=f"refund {amount} credits")


class FailedJob(_Model):
    """The ledger transaction for one dead-lettered job, written at most once per job_id.

    One DynamoDB transaction: the refund credit transaction (only when `amount` > 0, condition: none
    yet for this job), the balance credited by `amount`, and the job marked failed with `last_error`
    (condition: still reserved by this user for exactly `amount`). It also opens the job's user
    notice, claimed by `claim` at `failed_at`, so that the notice is born with the refund.
    """

    job_id: str
    pool: str = Field(description="The pool of the job's reservation (its ledger key)")
    user_id: str
    plan: Plan
    kind: str
    amount: Annotated[int, Field(ge=0)]
    last_error: str
    failed_at: datetime
    claim: Annotated[str, Field(min_length=1, description="Token of the delivery that holds the notice")]


def failed_job(
    *,
    job_id: str,
    pool: str,
    user_id: str,
    plan: Plan,
    kind: str,
    assessment: Assessment,
    last_error: str,
    now: datetime,
    claim: str,
) -> FailedJob:
    """The transaction to write for a job assessed REFUND or RECORD (a PARK verdict writes none)."""
    if assessment.verdict == Verdict.PARK:
        raise ValueError(f"job {job_id} is parked, not written to the ledger: {assessment.reason}")
    return FailedJob(
        job_id=job_id,
        pool=pool,
        user_id=user_id,
        plan=plan,
        kind=kind,
        amount=assessment.amount,
        last_error=last_error,
        failed_at=now,
        claim=claim,
    )


def last_error(source_queue: str | None, receive_count: int | None) -> str:
    """What the ledger keeps as the job's last error.

    SQS cannot rewrite a message's body or attributes, so a worker's exception stays in the worker's
    log (`job_failed`, keyed by job_id); the dead-letter record says where and how often it failed.
    """
    where = f"from {source_queue}" if source_queue else "from an unknown queue"
    attempts = f" after {receive_count} receives" if receive_count else ""
    return f"dead-lettered {where}{attempts}"


class NoticeState(StrEnum):
    PENDING = "pending"  # claimed by a delivery that has not started publishing (or whose publish was refused)
    PUBLISHING = "publishing"  # its holder is publishing (or did, and could not confirm it, or died doing so)
    SENT = "sent"


class NoticeStep(StrEnum):
    """What a delivery that found the job already failed does about the user's notice."""

    DONE = "done"  # the notice was sent, or may have been (publishing past its lease): never send again
    WAIT = "wait"  # another delivery holds a live claim: retry later, it may still fail
    TAKE_OVER = "take_over"  # the claim's lease ran out before its holder published: claim it and send


def notice_step(state: NoticeState, claimed_at: datetime, now: datetime, lease_seconds: float) -> NoticeStep:
    """At most one notice per job: only the holder of an unexpired claim may publish.

    While the claim is live, duplicates wait (the holder may still fail and put the notice back to
    pending). Once it has run out, a pending notice is taken over (its holder died before publishing),
    but a publishing one never is: its holder may have published and then failed to confirm it (the
    publish and the confirm cannot be one transaction), and a second notice is worse than an
    unconfirmed one, which the NoticesUnconfirmed metric reports.
    """
    if state == NoticeState.SENT:
        return NoticeStep.DONE
    if (now - claimed_at).total_seconds() < lease_seconds:
        return NoticeStep.WAIT
    return NoticeStep.DONE if state == NoticeState.PUBLISHING else NoticeStep.TAKE_OVER


class Reservation(_Model):
    """Credits a producer reserves when it submits a job: the job's charge unless it is refunded."""

    job_id: str
    pool: str = Field(description="The pool routing sends the job to: its ledger key's first part")
    user_id: str
    plan: Plan
    kind: str
    amount: Annotated[int, Field(ge=0)]
    at: datetime


def reservation(
    *,
    job_id: str,
    pool: str,
    user_id: str,
    plan: Plan,
    kind: str,
    credits: int,
    policy: RefundPolicy,
    now: datetime,
) -> Reservation:
    """The reservation for a submitted job; raises InvalidAmount when `credits` is out of bounds."""
    amount = chargeable(plan, credits, policy)
    return Reservation(job_id=job_id, pool=pool, user_id=user_id, plan=plan, kind=kind, amount=amount, at=now)


def envelope_reservation(envelope: JobEnvelope, pool: str, policy: RefundPolicy, now: datetime) -> Reservation:
    """The reservation for a job envelope routed to `pool` (what a producer reserves before it sends it)."""
    return reservation(
        job_id=envelope.job_id,
        pool=pool,
        user_id=envelope.user_id,
        plan=envelope.plan,
        kind=envelope.kind,
        credits=envelope.credits,
        policy=policy,
        now=now,
    )


class UserNotice(_Model):
    """The one message a user receives about a job that failed for good."""

    job_id: str
    user_id: str
    kind: str
    refunded: Annotated[int, Field(ge=0)]
    subject: str
    message: str


def user_notice(job: FailedJob) -> UserNotice:
    """What to tell the user: the job failed, and what came back to their balance."""
    if job.amount:
        outcome = f"{job.amount} credits were returned to your balance."
    else:
        outcome = "It had not reserved any credits, so your balance is unchanged."
    return UserNotice(
        job_id=job.job_id,
        user_id=job.user_id,
        kind=job.kind,
        refunded=job.amount,
        subject=f"Job {job.job_id} failed",
        message=f"Your {job.kind} job {job.job_id} could not be completed after several attempts. {outcome}",
    )


#: Bytes of a dead letter's body a parked record keeps: a DynamoDB item holds at most 400 KB, and an
#: SQS message may carry up to 1 MiB (256 KiB before 2025), so a longer body is kept truncated with
#: its length and hash. The reason is bounded too: a validation error may quote the body.
MAX_PARKED_BODY_BYTES = 256 * 1024
MAX_PARKED_REASON_CHARS = 8 * 1024


class ParkedRecord(_Model):
    """A dead-letter record that was neither refunded nor recorded, kept for a person to act on.

    `body` is the whole body up to MAX_PARKED_BODY_BYTES of UTF-8; `body_bytes` and `body_sha256`
    always describe the original, so a truncated record still identifies its message.
    """

    message_id: str
    body: str
    reason: str
    source_queue: str | None = None
    job_id: str | None = Field(default=None, description="When the body named one")
    parked_at: datetime
    body_bytes: Annotated[int, Field(ge=0)] = 0
    body_sha256: str = ""
    truncated: bool = False


def parked_record(
    *, message_id: str, body: str, reason: str, source_queue: str | None, job_id: str | None, now: datetime
) -> ParkedRecord:
    """The record to park: the body cut at a character boundary below MAX_PARKED_BODY_BYTES, with the
    original's length and SHA-256, so that parking never fails on size."""
    raw = body.encode("utf-8", errors="surrogatepass")
    kept = raw[:MAX_PARKED_BODY_BYTES].decode("utf-8", errors="ignore")
    if len(reason) > MAX_PARKED_REASON_CHARS:
        reason = reason[:MAX_PARKED_REASON_CHARS] + f"... ({len(reason)} characters)"
    return ParkedRecord(
        message_id=message_id,
        body=kept,
        reason=reason,
        source_queue=source_queue,
        job_id=job_id,
        parked_at=now,
        body_bytes=len(raw),
        body_sha256=hashlib.sha256(raw).hexdigest(),
        truncated=len(raw) > MAX_PARKED_BODY_BYTES,
    )
