"""A model-based test of exactly-once settlement: the real producer, the workers' attempt log and the
refund service over the DynamoDB ledger on moto, driven through every interleaving Hypothesis finds.

Simulated around the ledger: one SQS queue (copies of job messages, each received, put back or
dead-lettered), a DLQ, workers that take leases, heartbeat, finish, fail or die, and a clock. A
submit's send is accepted, rejected (nothing queued: the reservation is released) or ambiguous (SQS
took the message, the client saw a timeout: the reservation is kept, send state unknown), and a
submit may be retried with the same job id (a job whose send is unknown is sent again). After every
step the invariants hold: each balance is deposits - reserved + refunded, and each user's reserved
credits are those of the submits that were not rejected, each job reserved once however often it was
retried; no submitted job is left unsent; a job is never both completed and refunded; at most one
live lease per job; no attempt starts on a terminal or unreserved job; credits charged are those of
jobs completed (or still pending), refunds those of jobs failed.

CI runs a bounded number of examples (25 of 25 steps); `QS_MODEL_PROFILE=long` runs more locally
(`QS_MODEL_EXAMPLES`, default 2000, of `QS_MODEL_STEPS` steps, default 20), with
`--hypothesis-seed=N` to vary or replay a run:
`QS_MODEL_PROFILE=long .venv/bin/pytest tests/functional/test_ledger_model.py`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from moto import mock_aws

from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.ledger import Attempt, AttemptOutcome, JobStatus, Lease, SendState, StartVerdict
from queue_scaler.credits.domain.refund import DeadLetterPolicy, RefundPolicy
from queue_scaler.credits.services.refunds import RefundService
from queue_scaler.producer import Producer, SendUnknown, SubmitFailed
from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.shared.errors import (
    AwsCallError,
    Forbidden,
    InsufficientCredits,
    JobRunning,
    NotificationPending,
    OutcomeUnknown,
    ReferenceTaken,
)
from queue_scaler.shared.events import DeadLetter
from tests.fakes import FakeNotifier, FakeParking, RecordingMetrics
from tests.functional.moto_stack import create_ledger_table

settings.register_profile(
    "ci", max_examples=25, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("QS_MODEL_EXAMPLES", "2000")),
    stateful_step_count=int(os.environ.get("QS_MODEL_STEPS", "20")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
PROFILE = settings.get_profile(os.environ.get("QS_MODEL_PROFILE", "ci"))
# The CI profile stays under the suite's 300 s per test; a long run is bounded by its example count.
pytestmark = pytest.mark.timeout(300 if os.environ.get("QS_MODEL_PROFILE", "ci") == "ci" else 0)

START = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
POOL, QUEUE = "video", "video-pro"
LEASE = 30.0
MAX_RECEIVES = 3  # the queue's maxReceiveCount: then the copy goes to the DLQ
USERS = ("u-1", "u-2")
REFERENCES = ("r-1", "r-2", "r-3")
CONFIG = ScalerConfig.model_validate(
    {"pools": [{"name": POOL, "max_size": 2, "queues": [{"name": QUEUE, "target_per_instance": 1}]}]}
)


@dataclass
class Copy:
    """One copy of a job's message in the simulated queue (a duplicate or a return is another copy)."""

    job_id: str
    body: str
    message_id: str
    receives: int = 0
    visible_at: float = 0.0


@dataclass
class Run:
    """A receive that was granted the lease and runs the job (until it ends or its worker dies)."""

    job_id: str
    owner: str
    copy: Copy
    expires_at: float


@dataclass
class Sqs:
    """The producer's and the refund service's queue: SendMessage's outcome is chosen per call."""

    sink: list[Copy]
    ids: Any = field(default_factory=lambda: count(1))
    outcome: str = "ok"

    def send(self, queue: str, body: str) -> str:
        if self.outcome == "fail":  # a definite rejection: the message was not taken
            raise Forbidden("SendMessage", "AccessDenied")
        message_id = f"m-{next(self.ids)}"
        self.sink.append(Copy(json.loads(body)["job_id"], body, message_id))
        if self.outcome == "ambiguous":  # SQS took it; the client saw a timeout
            raise OutcomeUnknown("SendMessage", "ReadTimeoutError")
        return message_id


class LedgerModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # One moto account for the whole run, a fresh table per example: examples stay independent.
        self.ledger = DynamoLedger(
            create_ledger_table(f"ledger-{next(TABLES)}"), boto3.client("dynamodb", region_name="us-east-1")
        )
        self.clock = 0.0
        self.queue: list[Copy] = []
        self.dlq: list[Copy] = []
        self.inflight: list[Copy] = []  # received by a worker that died: visible again at visible_at
        self.runs: list[Run] = []
        self.dead: list[Run] = []  # runs whose worker died: their leases stay until they expire
        self.sqs = Sqs(self.queue)
        self.deposited: dict[str, int] = dict.fromkeys(USERS, 0)
        self.owners: dict[str, str] = {}  # reference -> the user it credited
        self.jobs: dict[str, tuple[str, int]] = {}  # job -> (user, credits), as first submitted
        self.reserved: dict[str, int] = dict.fromkeys(USERS, 0)  # credits the model expects reserved
        self.ended: dict[str, str] = {}  # job -> "completed" | "refunded", as their writers were told
        self.receipts = count(1)
        self.producer = Producer(self.ledger, self.sqs, CONFIG, RecordingMetrics(), policy=RefundPolicy(cap=1000))
        self.refunds = RefundService(
            self.ledger,
            FakeParking(),
            FakeNotifier(),
            RecordingMetrics(),
            queues=self.sqs,
            policy=RefundPolicy(cap=1000),
            dead_letters=DeadLetterPolicy(required_failures=2, max_returns=1),
            lease_seconds=LEASE,
        )

    def now(self) -> datetime:
        return START + timedelta(seconds=self.clock)

    def epoch(self) -> float:
        return self.now().timestamp()

    # The producer's side --------------------------------------------------------------------------

    @rule(user=st.sampled_from(USERS), credits=st.integers(1, 40), reference=st.sampled_from(REFERENCES))
    def deposit(self, user: str, credits: int, reference: str) -> None:
        owner = self.owners.get(reference)
        try:
            self.producer.deposit(user, credits, reference, self.now())
        except ReferenceTaken:
            assert owner is not None and owner != user, "a fresh or own reference is never refused"
            return
        assert owner in (None, user), f"reference {reference} of {owner} credited {user} too"
        if owner is None:
            self.owners[reference] = user
            self.deposited[user] += credits

    @rule(
        user=st.sampled_from(USERS),
        credits=st.integers(0, 30),
        outcome=st.sampled_from(["ok", "fail", "ambiguous"]),
    )
    def submit(self, user: str, credits: int, outcome: str) -> None:
        job_id = f"j-{len(self.jobs) + 1}"
        self.jobs[job_id] = (user, credits)
        self._submit(job_id, outcome)

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 50), outcome=st.sampled_from(["ok", "fail", "ambiguous"]))
    def retry(self, index: int, outcome: str) -> None:
        """The same submit again, as a caller told its send may have been lost (or any caller) does."""
        self._submit(list(self.jobs)[index % len(self.jobs)], outcome)

    def _submit(self, job_id: str, outcome: str) -> None:
        user, credits = self.jobs[job_id]
        before = self.ledger.job(job_id)
        copies = len(self.queue)
        self.sqs.outcome = outcome
        try:
            submission = self.producer.submit(
                user_id=user, plan="pro", kind="video.encode", credits=credits, now=self.now(), job_id=job_id
            )
        except InsufficientCredits:
            assert before is None, f"{job_id} is reserved: a retry reserves nothing"
            return
        except SubmitFailed:
            assert outcome == "fail" and (before is None or before.send_state == SendState.UNSENT)
            assert self.ledger.job(job_id) is None, f"{job_id}: a rejected send releases its reservation"
            assert len(self.queue) == copies
            return
        except SendUnknown:
            resent = before is None or before.send_state == SendState.UNKNOWN
            assert outcome == "ambiguous" or (outcome == "fail" and resent), f"{job_id}: {outcome}"
            after = self.ledger.job(job_id)
            assert after is not None and after.send_state == SendState.UNKNOWN, f"{job_id}: reservation kept"
        else:
            assert outcome == "ok" or submission.duplicate, f"{job_id}: {outcome} but submitted"
            after = self.ledger.job(job_id)
            assert after is not None and (submission.duplicate or after.send_state == SendState.SENT)
            assert submission.duplicate == (len(self.queue) == copies), "a duplicate sends nothing"
        finally:
            self.sqs.outcome = "ok"
        if before is None:
            self.reserved[user] += credits

    # SQS and the workers ----------------------------------------------------------------------------

    @precondition(lambda self: self.queue)
    @rule(index=st.integers(0, 50))
    def duplicate(self, index: int) -> None:
        """SQS delivers a copy twice, a producer resends, or a completed job's message is replayed."""
        copy = self.queue[index % len(self.queue)]
        self.queue.append(Copy(copy.job_id, copy.body, f"{copy.message_id}-dup{next(self.receipts)}"))

    @precondition(lambda self: self.queue)
    @rule(index=st.integers(0, 50), worker=st.sampled_from(["w1", "w2"]))
    def receive(self, index: int, worker: str) -> None:
        """A worker receives a copy and asks the ledger for the job's lease (two workers race this way)."""
        copy = self.queue.pop(index % len(self.queue))
        copy.receives += 1
        owner = f"{worker}/{next(self.receipts)}"
        before = self.ledger.job(copy.job_id)
        attempt = Attempt(attempt_id=owner.replace("/", "-"), at=self.now(), outcome=AttemptOutcome.STARTED)
        lease = Lease(owner=owner, attempt_id=attempt.attempt_id, expires_at=self.epoch() + LEASE)
        verdict = self.ledger.start_attempt(POOL, copy.job_id, attempt, lease, self.epoch()).verdict
        if verdict == StartVerdict.START:
            assert before is not None and before.status == JobStatus.RESERVED, f"started {copy.job_id}: {before}"
            live = [r for r in [*self.runs, *self.dead] if r.job_id == copy.job_id and r.expires_at > self.epoch()]
            assert live == [], f"{copy.job_id} started while {live[0].owner} holds a live lease"
            self.runs.append(Run(copy.job_id, owner, copy, lease.expires_at))
        elif verdict == StartVerdict.LEASED:
            copy.visible_at = self.clock + 1
            self.inflight.append(copy)
        # COMPLETED, REFUNDED, UNRESERVED: the worker deletes the copy.

    @precondition(lambda self: self.runs)
    @rule(index=st.integers(0, 50), succeeded=st.booleans())
    def finish(self, index: int, succeeded: bool) -> None:
        run = self.runs.pop(index % len(self.runs))
        outcome = AttemptOutcome.COMPLETED if succeeded else AttemptOutcome.FAILED
        attempt = Attempt(attempt_id=run.owner.replace("/", "-"), at=self.now(), outcome=outcome)
        written = self.ledger.end_attempt(POOL, run.job_id, attempt, run.owner)
        if succeeded:
            if written:
                assert self.ended.get(run.job_id) is None, f"{run.job_id} completed after {self.ended[run.job_id]}"
                self.ended[run.job_id] = "completed"
            return  # the message is deleted
        self._visible_again(run.copy)

    @precondition(lambda self: self.runs)
    @rule(index=st.integers(0, 50))
    def heartbeat(self, index: int) -> None:
        run = self.runs[index % len(self.runs)]
        expires = self.epoch() + LEASE
        lease = Lease(owner=run.owner, attempt_id=run.owner.replace("/", "-"), expires_at=expires)
        if self.ledger.renew_lease(POOL, run.job_id, lease):
            run.expires_at = expires

    @precondition(lambda self: self.runs)
    @rule(index=st.integers(0, 50))
    def die(self, index: int) -> None:
        """The worker dies mid-job: nothing more is written; its copy is visible again at the lease's end."""
        run = self.runs.pop(index % len(self.runs))
        run.copy.visible_at = self.clock + LEASE
        self.inflight.append(run.copy)
        self.dead.append(run)

    @rule(seconds=st.sampled_from([1.0, 5.0, LEASE]))
    def tick(self, seconds: float) -> None:
        self.clock += seconds
        for copy in [c for c in self.inflight if c.visible_at <= self.clock]:
            self.inflight.remove(copy)
            self._visible_again(copy)

    def _visible_again(self, copy: Copy) -> None:
        (self.dlq if copy.receives >= MAX_RECEIVES else self.queue).append(copy)

    # Dead letters -------------------------------------------------------------------------------------

    @precondition(lambda self: self.queue)
    @rule(index=st.integers(0, 50))
    def redrive(self, index: int) -> None:
        """A copy dead-lettered (its receives ran out, or the queue's redrive moved it)."""
        self.dlq.append(self.queue.pop(index % len(self.queue)))

    @precondition(lambda self: self.dlq)
    @rule(index=st.integers(0, 50), deliveries=st.integers(1, 3))
    def dead_letter(self, index: int, deliveries: int) -> None:
        """DlqRefundFunction gets one dead letter, once or several times (at-least-once delivery)."""
        copy = self.dlq[index % len(self.dlq)]
        letter = DeadLetter.model_validate(
            {
                "messageId": copy.message_id,
                "body": copy.body,
                "attributes": {
                    "ApproximateReceiveCount": str(copy.receives),
                    "DeadLetterQueueSourceArn": f"arn:aws:sqs:us-east-1:123456789012:{QUEUE}",
                },
            }
        )
        handled = False
        for _ in range(deliveries):
            try:
                outcome = self.refunds.handle(letter, self.now())
            except (JobRunning, NotificationPending):
                continue  # left in the DLQ: delivered again later
            except AwsCallError as error:
                raise AssertionError(f"unexpected AWS error: {error}") from error
            handled = True
            if outcome.result in {"refunded", "recorded"}:
                assert self.ended.get(copy.job_id) is None, f"{copy.job_id} refunded after it completed"
                self.ended[copy.job_id] = "refunded"
        if handled:
            self.dlq.remove(copy)

    # Invariants ---------------------------------------------------------------------------------------

    @invariant()
    def ledger_adds_up(self) -> None:
        accounts, records = self.ledger.contents()
        for account in accounts:
            assert account.problems() == []
            assert account.deposited == self.deposited[account.user_id]
            assert account.balance == account.deposited - account.reserved + account.refunded
            assert account.reserved == self.reserved[account.user_id], "each job reserved once, none released"
        for record in records:
            assert not (record.completed_at is not None and record.status == JobStatus.FAILED), record
            if record.send_claim is not None:  # the producer's reservation: sent, or maybe sent
                assert record.send_state != SendState.UNSENT, f"{record.job_id} left unsent: {record}"
            assert (
                self.ended.get(record.job_id, "pending")
                == {
                    JobStatus.COMPLETED: "completed",
                    JobStatus.FAILED: "refunded",
                    JobStatus.RESERVED: "pending",
                }[record.status or JobStatus.RESERVED]
            ), record
        charged = sum(r.credits for r in records if r.status in {JobStatus.COMPLETED, JobStatus.RESERVED})
        refunded = sum(r.credits for r in records if r.status == JobStatus.FAILED)
        assert sum(a.charged for a in accounts) == charged and sum(a.refunded for a in accounts) == refunded

    @invariant()
    def one_live_lease_per_job(self) -> None:
        holders = [*self.runs, *self.dead]
        for job_id in {r.job_id for r in holders}:
            live = [r for r in holders if r.job_id == job_id and r.expires_at > self.epoch()]
            assert len(live) <= 1, f"{job_id}: live leases {[r.owner for r in live]}"


TABLES = count(1)


@pytest.fixture(autouse=True, scope="module")
def moto_account() -> Iterator[None]:
    with mock_aws():
        yield


LedgerModel.TestCase.settings = PROFILE
test_ledger_model = LedgerModel.TestCase
