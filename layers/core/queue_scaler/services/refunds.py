"""Dead-letter refunds: for every job that failed for good, refund its credits once and tell its user once.

Exactly once, in two steps that each hold under concurrent and repeated deliveries of one message:
- the ledger write is one DynamoDB transaction, conditional on the job still being reserved, so only
  one delivery of a job ever writes it (the others find it failed: DUPLICATE);
- that transaction also opens the job's notice, claimed by the writing delivery. Only the holder of
  an unexpired claim publishes; a duplicate delivery that finds the notice pending under a live claim
  is retried later (NotificationPending), and takes the claim over with a conditional write only once
  its lease has run out, i.e. when its holder died between the transaction and the publish.

A record that cannot be refunded (malformed, amount out of bounds, no matching reservation) is parked
with its body and the reason, counted, and acknowledged: it never blocks its batch.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import ValidationError

from queue_scaler.domain.ledger import Summary
from queue_scaler.domain.refund import (
    FailedJob,
    NoticeState,
    NoticeStep,
    ParkedRecord,
    RefundPolicy,
    Reservation,
    Verdict,
    assess,
    failed_job,
    last_error,
    notice_step,
    reservation,
    user_notice,
)
from queue_scaler.errors import AwsCallError, NotificationPending
from queue_scaler.events import DeadLetter
from queue_scaler.jobs import JobEnvelope
from queue_scaler.ports import Ledger, MetricsSink, Notifier, Parking, WriteOutcome
from queue_scaler.validation import describe_validation_error

logger = logging.getLogger(__name__)

#: What may escape `RefundService.handle`: the record is then reported as a batch item failure and
#: delivered again. Everything else ends in a refund, a record, a duplicate or a parked record.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (AwsCallError, NotificationPending)

Result = Literal["refunded", "recorded", "duplicate", "parked"]


@dataclass(frozen=True)
class RefundOutcome:
    """What handling one dead-letter record did."""

    message_id: str
    result: Result
    job_id: str | None = None
    refunded: int = 0
    notified: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "message_id": self.message_id,
            "result": self.result,
            "job_id": self.job_id,
            "refunded": self.refunded,
            "notified": self.notified,
            "reason": self.reason,
        }


def _new_claim() -> str:
    return uuid.uuid4().hex


class RefundService:
    """Refunds dead-lettered jobs: the code behind DlqRefundFunction, and the local cloud's ledger."""

    def __init__(
        self,
        ledger: Ledger,
        parking: Parking,
        notifier: Notifier,
        metrics: MetricsSink,
        *,
        policy: RefundPolicy,
        lease_seconds: float,
        new_claim: Callable[[], str] = _new_claim,
    ) -> None:
        self._ledger = ledger
        self._parking = parking
        self._notifier = notifier
        self._metrics = metrics
        self._policy = policy
        self._lease_seconds = lease_seconds
        self._new_claim = new_claim

    def reserve(self, envelope: JobEnvelope, now: datetime) -> Reservation:
        """Reserve a job's credits at submission (the producer's side of the ledger).

        Raises InvalidAmount, InsufficientCredits or DuplicateReservation; nothing is reserved then.
        """
        held = reservation(
            job_id=envelope.job_id,
            user_id=envelope.user_id,
            plan=envelope.plan,
            kind=envelope.kind,
            credits=envelope.credits,
            policy=self._policy,
            now=now,
        )
        self._ledger.reserve(held)
        return held

    def deposit(self, user_id: str, credits: int, reference: str, now: datetime) -> None:
        """Add credits to a user's balance (a purchase or a grant), once per `reference`."""
        if credits <= 0:
            raise ValueError(f"a deposit must be positive, got {credits}")
        self._ledger.deposit(user_id, credits, reference, now)

    def summary(self) -> Summary:
        """Reserved, refunded and charged credits per user, and how many jobs were refunded."""
        return self._ledger.summary()

    def handle(self, letter: DeadLetter, now: datetime) -> RefundOutcome:
        """Refund, record, recognise as a duplicate, or park one dead-letter record.

        Raises only RETRYABLE_ERRORS: the AWS call failed, or another delivery is sending the notice.
        """
        try:
            return self._handle(letter, now)
        except RETRYABLE_ERRORS as error:
            # A pending notice is the design working (a concurrent duplicate); an AWS failure is an error.
            self._metrics.count("NoticesPending" if isinstance(error, NotificationPending) else "RefundErrors")
            logger.warning(
                "dead letter will be retried",
                extra={"message_id": letter.message_id, "error": str(error), "type": type(error).__name__},
            )
            raise
        except Exception as error:
            # A bug must not lose the record nor block its batch: it is parked whole, with the error.
            logger.exception("dead letter parked: unexpected error", extra={"message_id": letter.message_id})
            return self._park(letter, f"unexpected error: {type(error).__name__}: {error}", now, job_id=None)

    def _handle(self, letter: DeadLetter, now: datetime) -> RefundOutcome:
        try:
            envelope = JobEnvelope.from_body(letter.body)
        except ValidationError as error:
            return self._park(letter, "malformed job envelope:\n" + describe_validation_error(error), now, None)
        assessment = assess(envelope.plan, envelope.credits, self._policy)
        if assessment.verdict == Verdict.PARK:
            return self._park(letter, assessment.reason, now, envelope.job_id)
        job = failed_job(
            job_id=envelope.job_id,
            user_id=envelope.user_id,
            plan=envelope.plan,
            kind=envelope.kind,
            assessment=assessment,
            last_error=last_error(letter.source_queue, letter.attributes.approximate_receive_count),
            now=now,
            claim=self._new_claim(),
        )
        write = self._ledger.record_failure(job)
        if write.outcome == WriteOutcome.REJECTED:
            return self._park(letter, write.reason, now, envelope.job_id)
        if write.outcome == WriteOutcome.WRITTEN:
            result: Result = "refunded" if job.amount else "recorded"
            self._metrics.count("Refunds" if job.amount else "FailuresRecorded")
            if job.amount:
                self._metrics.count("RefundedCredits", job.amount)
            logger.info(
                "job failed for good",
                extra={"job_id": job.job_id, "user_id": job.user_id, "result": result, "refunded": job.amount},
            )
            notified = self._notify(job, job.claim)
            return RefundOutcome(letter.message_id, result, job.job_id, job.amount, notified, assessment.reason)
        return self._duplicate(letter, write.stored, write.notice, write.claimed_at, now)

    def _duplicate(
        self,
        letter: DeadLetter,
        stored: FailedJob | None,
        notice: NoticeState | None,
        claimed_at: datetime | None,
        now: datetime,
    ) -> RefundOutcome:
        if stored is None or notice is None or claimed_at is None:
            raise ValueError("the ledger reported a duplicate without the stored job and its notice")
        self._metrics.count("DuplicateDeliveries")
        step = notice_step(notice, claimed_at, now, self._lease_seconds)
        logger.info("duplicate delivery", extra={"job_id": stored.job_id, "notice": str(notice), "step": str(step)})
        if step == NoticeStep.WAIT:
            raise NotificationPending(stored.job_id)
        notified = False
        if step == NoticeStep.TAKE_OVER:
            claim = self._new_claim()
            if not self._ledger.take_over_notice(stored.job_id, stored.claim, claim, now):
                # Another delivery took it over between our read and our write: it sends, we wait.
                raise NotificationPending(stored.job_id)
            self._metrics.count("NoticesTakenOver")
            logger.warning("notice claim taken over after its lease ran out", extra={"job_id": stored.job_id})
            notified = self._notify(stored, claim)
        return RefundOutcome(letter.message_id, "duplicate", stored.job_id, 0, notified, "already failed")

    def _notify(self, job: FailedJob, claim: str) -> bool:
        try:
            self._notifier.publish(user_notice(job))
        except AwsCallError as error:
            # The claim stays pending: a later delivery takes it over once the lease runs out.
            self._metrics.count("NotificationErrors")
            logger.error("user notice not sent", extra={"job_id": job.job_id, "error": str(error)})
            raise
        self._metrics.count("Notifications")
        if not self._ledger.confirm_notice(job.job_id, claim):
            # Our lease ran out while publishing and another delivery took the claim: it may send a second
            # notice. The lease must exceed the publish's worst case (timeouts times attempts).
            self._metrics.count("NoticeClaimsLost")
            logger.error("notice claim lost while publishing", extra={"job_id": job.job_id})
        return True

    def _park(self, letter: DeadLetter, reason: str, now: datetime, job_id: str | None) -> RefundOutcome:
        self._parking.park(
            ParkedRecord(
                message_id=letter.message_id,
                body=letter.body,
                reason=reason,
                source_queue=letter.source_queue,
                job_id=job_id,
                parked_at=now,
            )
        )
        self._metrics.count("ParkedRecords")
        logger.error(
            "dead letter parked",
            extra={"message_id": letter.message_id, "job_id": job_id, "reason": reason, "queue": letter.source_queue},
        )
        return RefundOutcome(letter.message_id, "parked", job_id, 0, False, reason)
