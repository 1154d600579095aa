"""Dead-letter refunds: for every job that failed for good, refund its credits once and tell its user once.

First the job's fate in the ledger decides what the dead letter is (domain.refund.dead_letter_step):
a job that completed is served (its dead letter is deleted and counted, never refunded); a job whose
receives were releases rather than failures is sent back to its queue, a bounded number of times;
every other job failed for good.

A refund happens exactly once, in two steps that each hold under concurrent and repeated deliveries:
- the ledger write is one DynamoDB transaction, conditional on the job still being reserved, so only
  one delivery of a job ever writes it (the others find it failed: DUPLICATE);
- that transaction also opens the job's notice, claimed by the writing delivery. Only the holder of
  an unexpired claim publishes; a duplicate delivery that finds the notice pending under a live claim
  is retried later (NotificationPending), and takes the claim over with a conditional write only once
  its lease has run out, i.e. when its holder died between the transaction and the publish. The holder
  marks the notice publishing just before it publishes, and a publishing notice is never taken over
  (a refused publish puts it back to pending): when the confirm write fails after SNS accepted the
  notice, no retry sends a second one.

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

from queue_scaler.credits.domain.ledger import Summary
from queue_scaler.credits.domain.refund import (
    Assessment,
    DeadLetterDecision,
    DeadLetterPolicy,
    DeadLetterStep,
    FailedJob,
    NoticeState,
    NoticeStep,
    RefundPolicy,
    Verdict,
    assess,
    dead_letter_step,
    failed_job,
    last_error,
    notice_step,
    parked_record,
    user_notice,
)
from queue_scaler.credits.ports import JobQueues, Notifier, Parking, RefundLedger, ReturnWrite, WriteOutcome
from queue_scaler.shared.errors import AwsCallError, JobRunning, NotificationPending
from queue_scaler.shared.events import DeadLetter
from queue_scaler.shared.jobs import JobEnvelope
from queue_scaler.shared.metric_names import Metric
from queue_scaler.shared.ports import MetricsSink
from queue_scaler.shared.validation import describe_validation_error

logger = logging.getLogger(__name__)

#: What may escape `RefundService.handle`: the record is then reported as a batch item failure and
#: delivered again. Everything else ends in a refund, a record, a duplicate or a parked record.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (AwsCallError, NotificationPending, JobRunning)

Result = Literal["refunded", "recorded", "duplicate", "parked", "completed", "returned"]


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


_RETRY_METRICS: dict[type[Exception], Metric] = {
    NotificationPending: Metric.NOTICES_PENDING,
    JobRunning: Metric.DEAD_LETTERS_OF_RUNNING_JOBS,
}


class RefundService:
    """Refunds dead-lettered jobs: the code behind DlqRefundFunction, and the local cloud's ledger."""

    def __init__(
        self,
        ledger: RefundLedger,
        parking: Parking,
        notifier: Notifier,
        metrics: MetricsSink,
        *,
        queues: JobQueues,
        policy: RefundPolicy,
        dead_letters: DeadLetterPolicy,
        lease_seconds: float,
        new_claim: Callable[[], str] = _new_claim,
    ) -> None:
        self._ledger = ledger
        self._parking = parking
        self._notifier = notifier
        self._metrics = metrics
        self._queues = queues
        self._policy = policy
        self._dead_letters = dead_letters
        self._lease_seconds = lease_seconds
        self._new_claim = new_claim

    def summary(self) -> Summary:
        """Reserved, refunded and charged credits per user, and how many jobs ended each way."""
        return self._ledger.summary()

    def handle(self, letter: DeadLetter, now: datetime) -> RefundOutcome:
        """Refund, record, recognise as a duplicate, or park one dead-letter record.

        Raises only RETRYABLE_ERRORS: the AWS call failed, or another delivery is sending the notice.
        """
        try:
            return self._handle(letter, now)
        except RETRYABLE_ERRORS as error:
            # A pending notice or a running job is the design working (a concurrent duplicate, a copy being
            # worked); an AWS failure is an error.
            self._metrics.count(_RETRY_METRICS.get(type(error), Metric.REFUND_ERRORS))
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
        record = self._ledger.job(envelope.job_id)
        if record is None or record.pool is None:
            # Never reserved, or released (its send failed): nothing was charged, nothing is refunded.
            return self._park(letter, f"no reservation for job {envelope.job_id}", now, envelope.job_id)
        decision = dead_letter_step(record, self._dead_letters, now.timestamp())
        if decision.step == DeadLetterStep.COMPLETED:
            return self._served(letter, envelope.job_id, decision.reason)
        if decision.step == DeadLetterStep.RUNNING:
            raise JobRunning(envelope.job_id)
        if decision.step == DeadLetterStep.RETURN:
            returned = self._send_back(letter, envelope, record.pool, decision, now)
            if returned is not None:
                return returned
        elif decision.exhausted:
            self._metrics.count(Metric.RETURNS_EXHAUSTED)
            logger.warning(
                "job sent back too often; settled as failed for good",
                extra={"job_id": envelope.job_id, "reason": decision.reason},
            )
        return self._fail(letter, envelope, pool=record.pool, assessment=assessment, decision=decision, now=now)

    def _fail(
        self,
        letter: DeadLetter,
        envelope: JobEnvelope,
        *,
        pool: str,
        assessment: Assessment,
        decision: DeadLetterDecision,
        now: datetime,
    ) -> RefundOutcome:
        """Write the job failed for good (refunded or recorded) once, then tell its user once."""
        job = failed_job(
            job_id=envelope.job_id,
            pool=pool,
            user_id=envelope.user_id,
            plan=envelope.plan,
            kind=envelope.kind,
            assessment=assessment,
            last_error=last_error(letter.source_queue, letter.attributes.approximate_receive_count),
            now=now,
            claim=self._new_claim(),
        )
        write = self._ledger.record_failure(job)
        if write.outcome == WriteOutcome.COMPLETED:
            return self._served(letter, envelope.job_id, "the job completed while its dead letter was handled")
        if write.outcome == WriteOutcome.RUNNING:
            # A copy started between our read and this write: it runs; the dead letter waits.
            raise JobRunning(envelope.job_id)
        if write.outcome == WriteOutcome.REJECTED:
            return self._park(letter, write.reason, now, envelope.job_id, pool)
        if write.outcome == WriteOutcome.WRITTEN:
            result: Result = "refunded" if job.amount else "recorded"
            self._metrics.count(Metric.REFUNDS if job.amount else Metric.FAILURES_RECORDED)
            # Both at once, for the jobs-failed-for-good alarm: one alarm metric instead of two.
            self._metrics.count(Metric.JOBS_FAILED_FOR_GOOD)
            if job.amount:
                self._metrics.count(Metric.REFUNDED_CREDITS, job.amount)
            logger.info(
                "job failed for good",
                extra={"job_id": job.job_id, "user_id": job.user_id, "result": result, "refunded": job.amount},
            )
            notified = self._notify(job, job.claim)
            return RefundOutcome(
                letter.message_id, result, job.job_id, job.amount, notified, f"{assessment.reason}; {decision.reason}"
            )
        return self._duplicate(letter, write.stored, write.notice, write.claimed_at, now)

    def _served(self, letter: DeadLetter, job_id: str, reason: str) -> RefundOutcome:
        """A dead letter of a job that completed (a lost heartbeat, a failed delete): delete it, refund nothing."""
        self._metrics.count(Metric.COMPLETED_DEAD_LETTERS)
        logger.warning("dead letter of a completed job deleted", extra={"job_id": job_id, "reason": reason})
        return RefundOutcome(letter.message_id, "completed", job_id, 0, False, reason)

    def _send_back(
        self, letter: DeadLetter, envelope: JobEnvelope, pool: str, decision: DeadLetterDecision, now: datetime
    ) -> RefundOutcome | None:
        """Send a released (not failed) job back to its queue once per dead letter; None when it must
        be settled instead."""
        queue = letter.source_queue
        if queue is None:
            logger.warning("dead letter without its source queue; settled", extra={"job_id": envelope.job_id})
            return None
        write = self._ledger.record_return(
            pool, envelope.job_id, letter.message_id, self._dead_letters.max_returns, now
        )
        if write == ReturnWrite.RUNNING:
            raise JobRunning(envelope.job_id)
        if write == ReturnWrite.EXHAUSTED:
            # A concurrent delivery of another dead letter of this job used the last return.
            self._metrics.count(Metric.RETURNS_EXHAUSTED)
            return None
        if write == ReturnWrite.ALREADY:
            # An earlier delivery of this very dead letter sent it back: one copy per dead letter.
            self._metrics.count(Metric.DUPLICATE_DELIVERIES)
            return RefundOutcome(letter.message_id, "duplicate", envelope.job_id, 0, False, "already sent back")
        # UNCONFIRMED: an earlier delivery counted it and may have died before the send. Sending again
        # can at worst give the job a second copy, which the run lease runs once at a time and never
        # after the job completed.
        self._queues.send(queue, letter.body)
        self._ledger.confirm_return(pool, envelope.job_id, letter.message_id)
        self._metrics.count(Metric.DEAD_LETTERS_RETURNED)
        logger.info(
            "released job sent back to its queue",
            extra={"job_id": envelope.job_id, "queue": queue, "reason": decision.reason, "write": str(write)},
        )
        return RefundOutcome(letter.message_id, "returned", envelope.job_id, 0, False, decision.reason)

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
        self._metrics.count(Metric.DUPLICATE_DELIVERIES)
        step = notice_step(notice, claimed_at, now, self._lease_seconds)
        logger.info("duplicate delivery", extra={"job_id": stored.job_id, "notice": str(notice), "step": str(step)})
        if step == NoticeStep.WAIT:
            raise NotificationPending(stored.job_id)
        notified = False
        if step == NoticeStep.DONE and notice == NoticeState.PUBLISHING:
            # Past its lease and never confirmed: sent (the confirm failed) or not (its holder died while
            # publishing). Resending risks a second notice; an operator can tell from SNS delivery logs.
            self._metrics.count(Metric.NOTICES_UNCONFIRMED)
            logger.error("user notice unconfirmed past its lease; not sent again", extra={"job_id": stored.job_id})
        if step == NoticeStep.TAKE_OVER:
            claim = self._new_claim()
            if not self._ledger.take_over_notice(stored.pool, stored.job_id, stored.claim, claim, now):
                # Another delivery took it over between our read and our write: it sends, we wait.
                raise NotificationPending(stored.job_id)
            self._metrics.count(Metric.NOTICES_TAKEN_OVER)
            logger.warning("notice claim taken over after its lease ran out", extra={"job_id": stored.job_id})
            notified = self._notify(stored, claim)
        return RefundOutcome(letter.message_id, "duplicate", stored.job_id, 0, notified, "already failed")

    def _notify(self, job: FailedJob, claim: str) -> bool:
        if not self._ledger.start_notice(job.pool, job.job_id, claim):
            # Our lease ran out before we published and another delivery took the claim: it sends.
            self._metrics.count(Metric.NOTICE_CLAIMS_LOST)
            logger.warning("notice claim lost before publishing", extra={"job_id": job.job_id})
            return False
        # From here a crash can never lead to a second notice, at worst to none (counted as
        # NoticesUnconfirmed by the delivery that finds it publishing past its lease).
        try:
            self._notifier.publish(user_notice(job))
        except AwsCallError as error:
            # SNS refused it: put the claim back to pending so that a later delivery takes it over once
            # the lease runs out. If even that write fails, the notice stays unsent and counted.
            self._metrics.count(Metric.NOTIFICATION_ERRORS)
            logger.error("user notice not sent", extra={"job_id": job.job_id, "error": str(error)})
            if not self._ledger.reopen_notice(job.pool, job.job_id, claim):
                self._metrics.count(Metric.NOTICES_UNCONFIRMED)
            raise
        self._metrics.count(Metric.NOTIFICATIONS)
        try:
            confirmed = self._ledger.confirm_notice(job.pool, job.job_id, claim)
        except AwsCallError as error:
            confirmed = False
            logger.error("user notice sent but not confirmed", extra={"job_id": job.job_id, "error": str(error)})
        if not confirmed:
            # It stays "publishing", which no delivery ever sends again: one notice, unconfirmed.
            self._metrics.count(Metric.NOTICES_UNCONFIRMED)
        return True

    def _park(
        self, letter: DeadLetter, reason: str, now: datetime, job_id: str | None, pool: str | None = None
    ) -> RefundOutcome:
        record = parked_record(
            message_id=letter.message_id,
            body=letter.body,
            reason=reason,
            source_queue=letter.source_queue,
            job_id=job_id,
            now=now,
        )
        self._parking.park(record)
        if job_id is not None and pool is not None:
            self._ledger.mark_parked(pool, job_id, letter.message_id, now)
        self._metrics.count(Metric.PARKED_RECORDS)
        if record.truncated:
            self._metrics.count(Metric.PARKED_TRUNCATED)
        logger.error(
            "dead letter parked",
            extra={"message_id": letter.message_id, "job_id": job_id, "reason": reason, "queue": letter.source_queue},
        )
        return RefundOutcome(letter.message_id, "parked", job_id, 0, False, reason)
