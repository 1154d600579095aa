"""The producer's side of the ledger: deposit credits, submit jobs (CONTRACTS.md section 6).

A submission routes the job (kind to pool, plan to queue, from the pool configuration), reserves its
credits and sends its envelope, in that order, so that a job is never run unpaid. Each step keeps one
promise under retries and failures:
- a reservation never outlives its message: a send that SQS definitely rejected (a 4xx at the first
  attempt, or no connection made) releases it in one transaction;
- a message never outlives its reservation: a send whose answer was lost (a timeout reading it, a
  connection dropped after the request left, a 5xx: adapters.aws_errors.outcome_unknown) may have
  queued the message, so its reservation is kept for good, its send state `unknown`, and SendUnknown
  tells the caller to retry with the same job id;
- the same job id is reserved once: the reservation is conditional on the job id, and a retry that
  finds it sent returns the first submission. A retry that finds it unsent while its send claim is
  live (another submit of the same job is sending) raises SubmissionInProgress; once the claim's
  lease has run out (that submit died between its reservation and its send), it takes the claim over
  and sends. A retry that finds its send state unknown takes the claim over at once and sends again:
  a second copy is harmless, since the run lease runs the job once and a worker deletes a copy of a
  completed job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from queue_scaler.credits.domain.ledger import Account, Deposit, JobRecord
from queue_scaler.credits.domain.refund import (
    CreditLimits,
    RefundPolicy,
    Reservation,
    check_job_credits,
    envelope_reservation,
    job_credit_cap,
)
from queue_scaler.credits.domain.routing import Route, route
from queue_scaler.credits.ports import CreditLedger, JobQueues
from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.shared.errors import AwsCallError, DuplicateReservation, OutcomeUnknown
from queue_scaler.shared.jobs import JobEnvelope, Plan
from queue_scaler.shared.metric_names import Metric
from queue_scaler.shared.ports import MetricsSink

logger = logging.getLogger(__name__)

#: How long a submit may hold an unsent job's send before a retry takes it over: well above one
#: reservation plus one send (each at most 3 attempts of 8 s).
SEND_LEASE_SECONDS = 60.0


class SubmissionInProgress(Exception):
    """Another submit of the same job id holds its send; retry after the lease (nothing was sent)."""


class JobIdConflict(ValueError):
    """The job id was already submitted for another user, kind or plan; nothing was sent."""


class SubmitFailed(Exception):
    """Sending the job failed; its reservation was released (or, if even that failed, is left to a retry)."""


class SendUnknown(Exception):
    """The job's message may have been sent (the send's answer was lost); its reservation is kept.

    Retrying the submit with the same job id is safe: it sends the job again and marks it sent, and
    the job runs (and is charged) once however many copies reach the queue.
    """

    def __init__(self, job_id: str, queue: str, error: AwsCallError) -> None:
        super().__init__(
            f"job {job_id}: queue {queue}: {error}; the job may have been sent and its credits stay reserved: "
            f"retrying the submit with job id {job_id} is safe (it runs and is charged once)"
        )
        self.job_id = job_id


@dataclass(frozen=True)
class Submission:
    """What `queue-scaler submit` prints: where the job went and the credits it reserved."""

    job_id: str
    queue: str
    reserved: int
    #: True when this call found the job already submitted and sent nothing.
    duplicate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "queue": self.queue, "reserved": self.reserved, "duplicate": self.duplicate}


def _new_claim() -> str:
    return uuid.uuid4().hex


class Producer:
    """Deposits and submissions over the ledger and the job queues (the library behind the CLI)."""

    def __init__(
        self,
        ledger: CreditLedger,
        queues: JobQueues,
        config: ScalerConfig,
        metrics: MetricsSink,
        *,
        policy: RefundPolicy,
        limits: CreditLimits | None = None,
        lease_seconds: float = SEND_LEASE_SECONDS,
        new_claim: Callable[[], str] = _new_claim,
    ) -> None:
        self._ledger = ledger
        self._queues = queues
        self._config = config
        self._metrics = metrics
        self._policy = policy
        self._limits = limits or CreditLimits()
        self._lease_seconds = lease_seconds
        self._new_claim = new_claim

    def deposit(self, user_id: str, credits: int, reference: str, now: datetime) -> Account:
        """Add credits to a user's balance once per `reference`; returns the account as it stands.

        Raises pydantic.ValidationError (a bad id) or InvalidAmount (outside 1 to the deposit cap),
        ReferenceTaken, or BalanceCapExceeded (nothing credited).
        """
        return deposit_credits(
            self._ledger, self._limits, user_id=user_id, credits=credits, reference=reference, now=now
        )

    def route(self, kind: str, plan: str) -> Route:
        """Where a job of `kind` on `plan` goes; raises Unroutable naming what no pool serves."""
        return route(self._config, kind, plan)

    def submit(
        self,
        *,
        user_id: str,
        plan: Plan,
        kind: str,
        credits: int,
        now: datetime,
        payload: dict[str, Any] | None = None,
        job_id: str | None = None,
    ) -> Submission:
        """Route, reserve and send one job.

        Raises pydantic.ValidationError or InvalidAmount (a bad field, or credits above the plan's cap),
        Unroutable, JobIdConflict, InsufficientCredits (nothing reserved or sent), SubmissionInProgress,
        SubmitFailed (nothing sent), or SendUnknown (maybe sent, its credits kept reserved: retry with
        the same job id).
        """
        target = self.route(kind, plan)
        envelope = JobEnvelope(
            job_id=job_id or f"j-{uuid.uuid4().hex}",
            user_id=user_id,
            plan=plan,
            kind=kind,
            credits=credits,
            submitted_at=now,
            payload=payload or {},
        )
        check_job_credits(plan, credits, job_credit_cap(self._policy, self._config.max_credits(plan)))
        held = envelope_reservation(envelope, target.pool, self._policy, now)
        claim = self._new_claim()
        try:
            self._ledger.reserve(held, claim)
        except DuplicateReservation:
            return self._resume(envelope, held, target, now)
        return self._send(envelope, held, claim, target)

    def _send(
        self, envelope: JobEnvelope, held: Reservation, claim: str, target: Route, *, unknown: bool = False
    ) -> Submission:
        """Send the envelope under `claim`; `unknown`: an earlier send's outcome is unknown (a resend)."""
        queue = target.queue_url or target.queue
        try:
            message_id = self._queues.send(queue, envelope.to_body())
        except OutcomeUnknown as error:
            self._metrics.count(Metric.SUBMIT_SEND_UNKNOWN)
            self._mark_unknown(held, claim, error)
            raise SendUnknown(envelope.job_id, target.queue, error) from error
        except AwsCallError as error:
            self._metrics.count(Metric.SUBMIT_ERRORS)
            if unknown:
                # Rejected now, but the first send may have queued the job: its reservation stays.
                self._metrics.count(Metric.SUBMIT_SEND_UNKNOWN)
                raise SendUnknown(envelope.job_id, target.queue, error) from error
            if self._release(held, claim):
                raise SubmitFailed(
                    f"job {envelope.job_id}: queue {target.queue}: {error}; nothing was sent, its reservation "
                    "was released"
                ) from error
            raise SubmitFailed(f"job {envelope.job_id}: queue {target.queue}: {error}; nothing was sent") from error
        try:
            if not self._ledger.mark_sent(held.pool, envelope.job_id, claim, target.queue, message_id):
                logger.warning("send claim lost after the send", extra={"job_id": envelope.job_id})
        except AwsCallError as error:
            # The message is on its queue: the job is submitted. Only a retry of this submit within the
            # lease could send it again, which is why the claim's lease outlasts any client retry.
            self._metrics.count(Metric.SUBMIT_MARK_ERRORS)
            logger.error("job sent but not marked sent", extra={"job_id": envelope.job_id, "error": str(error)})
        self._metrics.count(Metric.JOBS_SUBMITTED)
        logger.info(
            "job submitted",
            extra={"job_id": envelope.job_id, "queue": target.queue, "reserved": held.amount, "pool": target.pool},
        )
        return Submission(envelope.job_id, target.queue, held.amount)

    def _mark_unknown(self, held: Reservation, claim: str, error: AwsCallError) -> None:
        context = {"job_id": held.job_id, "error": str(error)}
        try:
            if self._ledger.mark_send_unknown(held.pool, held.job_id, claim):
                logger.warning("send's outcome unknown: the job may be queued, its reservation kept", extra=context)
            else:
                # Sent meanwhile, or its claim taken over by a retry after the lease: that one sends.
                logger.warning("send's outcome unknown and its claim lost", extra=context)
        except AwsCallError as mark_error:
            # Left unsent under this claim: nothing releases it now; a retry after the lease takes it
            # over and sends. Should that send be rejected and released while this message is queued,
            # the worker refuses the unreserved copy: the job never runs unpaid.
            self._metrics.count(Metric.SUBMIT_MARK_ERRORS)
            logger.error("send's outcome unknown and not recorded", extra=context | {"mark_error": str(mark_error)})

    def _release(self, held: Reservation, claim: str) -> bool:
        try:
            released = self._ledger.release(held, claim)
        except AwsCallError as error:
            # Left unsent under this claim: a retried submit takes it over after the lease and sends.
            self._metrics.count(Metric.RELEASE_ERRORS)
            logger.error(
                "reservation of an unsent job could not be released",
                extra={"job_id": held.job_id, "error": str(error)},
            )
            return False
        if released:
            self._metrics.count(Metric.RESERVATIONS_RELEASED)
        return released

    def _resume(self, envelope: JobEnvelope, held: Reservation, target: Route, now: datetime) -> Submission:
        stored = self._ledger.job(envelope.job_id)
        if stored is None:
            raise SubmissionInProgress(f"job {envelope.job_id} is being submitted or released; retry")
        _check_same_job(stored, held)
        if stored.sent or stored.status != "reserved" or stored.attempts or stored.lease is not None:
            self._metrics.count(Metric.DUPLICATE_SUBMITS)
            return Submission(envelope.job_id, stored.queue or target.queue, stored.credits, duplicate=True)
        claimed_at = stored.claimed_at or now
        if stored.send_claim is None or (
            # A send whose outcome is unknown is not in progress: its submit gave up, so resend at once.
            not stored.send_unknown and (now - claimed_at).total_seconds() < self._lease_seconds
        ):
            raise SubmissionInProgress(f"job {envelope.job_id} is being sent by another submit; retry later")
        claim = self._new_claim()
        if not self._ledger.take_over_send(held.pool, envelope.job_id, stored.send_claim, claim, now):
            raise SubmissionInProgress(f"job {envelope.job_id} is being sent by another submit; retry later")
        if stored.send_unknown:
            logger.warning("job whose send's outcome is unknown sent again", extra={"job_id": envelope.job_id})
        else:
            logger.warning("unsent job's send taken over after its lease ran out", extra={"job_id": envelope.job_id})
        return self._send(
            envelope, held.model_copy(update={"amount": stored.credits}), claim, target, unknown=stored.send_unknown
        )


def deposit_credits(
    ledger: CreditLedger, limits: CreditLimits, *, user_id: str, credits: int, reference: str, now: datetime
) -> Account:
    """One deposit, checked before any write (ids, then the amount); the ledger checks the balance cap."""
    checked = Deposit(user_id=user_id, credits=credits, reference=reference)
    limits.check_deposit(checked.credits)
    ledger.deposit(checked.user_id, checked.credits, checked.reference, now)
    account = ledger.account(checked.user_id)
    if account is None:
        raise AwsCallError("GetItem(account)", "Missing", f"user {user_id} has no account after a deposit")
    return account


def _check_same_job(stored: JobRecord, held: Reservation) -> None:
    mismatched = [
        name
        for name, theirs, ours in (
            ("pool", stored.pool, held.pool),
            ("user", stored.user_id, held.user_id),
            ("plan", stored.plan, held.plan),
            ("kind", stored.kind, held.kind),
            ("credits", stored.credits, held.amount),
        )
        if theirs != ours
    ]
    if mismatched:
        raise JobIdConflict(f"job id {held.job_id} was already submitted with another {', '.join(mismatched)}")
