"""The refund service's orchestration over in-memory ports: refund, record, park, duplicates, notices."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest

from queue_scaler.credits.domain.ledger import Attempt, AttemptOutcome, JobOutcome, Lease, StartVerdict
from queue_scaler.credits.domain.refund import DeadLetterPolicy, InvalidAmount, RefundPolicy, envelope_reservation
from queue_scaler.credits.services.refunds import RefundService
from queue_scaler.shared.errors import (
    DuplicateReservation,
    InsufficientCredits,
    JobRunning,
    NotificationPending,
    Throttled,
)
from queue_scaler.shared.events import DeadLetter
from queue_scaler.shared.jobs import JobEnvelope
from tests.fakes import FakeJobQueues, FakeLedger, FakeNotifier, FakeParking, RecordingMetrics

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
POOL = "video"
LEASE = 60.0
MALFORMED = "malformed job envelope:\n"


class World:
    def __init__(self) -> None:
        self.ledger, self.parking, self.notifier, self.metrics = (
            FakeLedger(),
            FakeParking(),
            FakeNotifier(),
            RecordingMetrics(),
        )
        self.queues = FakeJobQueues()
        claims = count(1)
        self.service = RefundService(
            self.ledger,
            self.parking,
            self.notifier,
            self.metrics,
            queues=self.queues,
            policy=RefundPolicy(cap=100),
            dead_letters=DeadLetterPolicy(required_failures=2, max_returns=2),
            lease_seconds=LEASE,
            new_claim=lambda: f"claim-{next(claims)}",
        )

    def counted(self, name: str) -> float:
        return self.metrics.counts[(name, None)]


def envelope(job_id: str = "j-1", user_id: str = "u-1", plan: str = "pro", credits: int = 12) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "user_id": user_id,
        "plan": plan,
        "kind": "video.transcode",
        "credits": credits,
        "submitted_at": "2026-11-22T09:00:00Z",
        "payload": {},
    }


def letter(body: dict[str, Any] | str, message_id: str = "m-1") -> DeadLetter:
    return DeadLetter.model_validate(
        {
            "messageId": message_id,
            "body": body if isinstance(body, str) else json.dumps(body),
            "attributes": {
                "ApproximateReceiveCount": "5",
                "DeadLetterQueueSourceArn": "arn:aws:sqs:us-east-1:123456789012:video-pro",
            },
        }
    )


@pytest.fixture
def world() -> World:
    w = World()
    w.ledger.deposit("u-1", 100, "purchase-1", NOW)
    return w


def reserve(world: World, **fields: Any) -> None:
    world.ledger.reserve(
        envelope_reservation(JobEnvelope.model_validate(envelope(**fields)), POOL, RefundPolicy(cap=100), NOW)
    )


def test_given_a_reserved_job_when_it_is_dead_lettered_then_it_is_refunded_and_notified(world: World) -> None:
    reserve(world)
    outcome = world.service.handle(letter(envelope()), NOW)
    assert (outcome.result, outcome.refunded, outcome.notified) == ("refunded", 12, True)
    [account] = world.service.summary().accounts
    assert (account.balance, account.reserved, account.refunded, account.charged) == (100, 12, 12, 0)
    [notice] = world.notifier.sent
    assert notice.refunded == 12 and notice.user_id == "u-1"
    assert world.ledger.jobs["j-1"]["failed"].last_error == "dead-lettered from video-pro after 5 receives"
    assert world.counted("Refunds") == 1 and world.counted("RefundedCredits") == 12


def test_given_a_free_job_when_it_is_dead_lettered_then_it_is_recorded_not_refunded(world: World) -> None:
    reserve(world, job_id="j-free", plan="free", credits=30)
    outcome = world.service.handle(letter(envelope(job_id="j-free", plan="free", credits=30)), NOW)
    assert (outcome.result, outcome.refunded, outcome.notified) == ("recorded", 0, True)
    assert world.service.summary().accounts[0].balance == 100
    assert world.counted("FailuresRecorded") == 1 and world.counted("Refunds") == 0


def test_given_a_zero_credit_job_never_reserved_when_dead_lettered_then_it_is_parked(world: World) -> None:
    outcome = world.service.handle(letter(envelope(job_id="j-0", credits=0)), NOW)
    assert outcome.result == "parked" and "no reservation" in outcome.reason and world.notifier.sent == []


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("given a body that is not JSON then it is parked", '{"job_id": "j-1", "credits": 3', MALFORMED),
        ("given a missing user then it is parked", {k: v for k, v in envelope().items() if k != "user_id"}, "user_id"),
        ("given string credits then it is parked", envelope() | {"credits": "12"}, "credits"),
        ("given negative credits then it is parked", envelope() | {"credits": -5}, "credits"),
        ("given a plan no queue name could carry then it is parked", envelope() | {"plan": "gold plan"}, "plan"),
        ("given credits above the cap then it is parked", envelope(credits=101), "exceed the cap of 100"),
        ("given no reservation then it is parked", envelope(job_id="j-unknown"), "no reservation"),
    ],
)
def test_unrefundable_records_are_parked(world: World, name: str, body: Any, reason: str) -> None:
    outcome = world.service.handle(letter(body, message_id="m-bad"), NOW)
    assert outcome.result == "parked" and reason in outcome.reason
    # An envelope that does not validate names no job; one that does is parked under its job.
    job_id = body.get("job_id") if isinstance(body, dict) and not outcome.reason.startswith(MALFORMED) else None
    assert outcome.job_id == job_id, name
    parked = world.parking.parked["m-bad"]
    assert parked.job_id == job_id, name
    assert parked.body == (body if isinstance(body, str) else json.dumps(body))
    assert reason in parked.reason and parked.source_queue == "video-pro"
    assert world.notifier.sent == [] and world.counted("ParkedRecords") == 1


def test_given_an_envelope_that_disagrees_with_its_reservation_then_it_is_parked(world: World) -> None:
    reserve(world, credits=5)
    outcome = world.service.handle(letter(envelope(credits=12)), NOW)
    assert outcome.result == "parked" and "does not match" in outcome.reason
    assert world.service.summary().accounts[0].refunded == 0


def test_given_a_second_delivery_after_the_notice_was_sent_then_nothing_more_happens(world: World) -> None:
    reserve(world)
    world.service.handle(letter(envelope(), "m-1"), NOW)
    again = world.service.handle(letter(envelope(), "m-2"), NOW + timedelta(seconds=1))
    assert (again.result, again.refunded, again.notified) == ("duplicate", 0, False)
    assert len(world.notifier.sent) == 1 and world.service.summary().accounts[0].refunded == 12
    assert world.counted("DuplicateDeliveries") == 1


def test_given_a_live_claim_when_a_duplicate_arrives_then_it_is_retried_not_sent(world: World) -> None:
    reserve(world)
    world.notifier.fail = Throttled("Publish", "Throttling")
    with pytest.raises(Throttled):
        world.service.handle(letter(envelope(), "m-1"), NOW)
    world.notifier.fail = None
    with pytest.raises(NotificationPending):
        world.service.handle(letter(envelope(), "m-2"), NOW + timedelta(seconds=LEASE - 1))
    assert world.notifier.sent == [] and world.counted("NoticesPending") == 1
    assert world.counted("NotificationErrors") == 1 and world.counted("RefundErrors") == 1


def test_given_a_claim_whose_holder_died_when_the_lease_ran_out_then_a_duplicate_sends_once(world: World) -> None:
    reserve(world)
    world.notifier.fail = Throttled("Publish", "Throttling")
    with pytest.raises(Throttled):
        world.service.handle(letter(envelope(), "m-1"), NOW)
    world.notifier.fail = None
    later = NOW + timedelta(seconds=LEASE)
    taken = world.service.handle(letter(envelope(), "m-1"), later)
    assert (taken.result, taken.notified) == ("duplicate", True)
    again = world.service.handle(letter(envelope(), "m-3"), later + timedelta(seconds=1))
    assert not again.notified
    assert len(world.notifier.sent) == 1 and world.counted("NoticesTakenOver") == 1
    assert world.service.summary().accounts[0].refunded == 12  # the refund itself happened once


def test_given_the_confirm_write_fails_after_the_publish_then_no_delivery_sends_a_second_notice(world: World) -> None:
    reserve(world)
    world.ledger.fail_confirm = Throttled("UpdateItem", "ProvisionedThroughputExceededException")
    first = world.service.handle(letter(envelope(), "m-1"), NOW)
    assert (first.result, first.notified) == ("refunded", True)  # sent: the record is done, not retried
    with pytest.raises(NotificationPending):  # a duplicate within the lease waits, as for any live claim
        world.service.handle(letter(envelope(), "m-2"), NOW + timedelta(seconds=1))
    for later in (NOW + timedelta(seconds=LEASE), NOW + timedelta(seconds=LEASE * 10)):
        again = world.service.handle(letter(envelope(), "m-1"), later)
        assert (again.result, again.notified) == ("duplicate", False)
    # Counted when the confirm failed, and by each later delivery that found it unconfirmed.
    assert len(world.notifier.sent) == 1 and world.counted("NoticesUnconfirmed") == 3


def test_given_a_publishing_notice_then_it_is_never_taken_over(world: World) -> None:
    reserve(world)
    real_publish = world.notifier.publish

    def overtaking(notice: object) -> None:
        assert not world.ledger.take_over_notice(POOL, "j-1", "claim-1", "someone-else", NOW)
        real_publish(notice)  # type: ignore[arg-type]

    world.notifier.publish = overtaking  # type: ignore[method-assign]
    outcome = world.service.handle(letter(envelope()), NOW)
    assert outcome.notified and len(world.notifier.sent) == 1 and world.counted("NoticesUnconfirmed") == 0


def test_given_an_unexpected_error_then_the_record_is_parked_not_raised(world: World) -> None:
    def broken(job: object) -> None:
        raise KeyError("status")

    world.ledger.record_failure = broken  # type: ignore[assignment, method-assign]
    reserve(world)
    outcome = world.service.handle(letter(envelope()), NOW)
    assert outcome.result == "parked" and "unexpected error: KeyError" in outcome.reason


def test_given_the_parking_table_fails_then_the_record_is_retried(world: World) -> None:
    def down(record: object) -> None:
        raise Throttled("PutItem", "ProvisionedThroughputExceededException")

    world.parking.park = down  # type: ignore[assignment, method-assign]
    with pytest.raises(Throttled):
        world.service.handle(letter("not json"), NOW)


def test_reserve_rules(world: World) -> None:
    reserve(world, job_id="j-a", credits=60)
    with pytest.raises(DuplicateReservation):
        reserve(world, job_id="j-a", credits=60)
    with pytest.raises(InsufficientCredits):
        reserve(world, job_id="j-b", credits=41)
    with pytest.raises(InvalidAmount):
        reserve(world, job_id="j-c", credits=101)
    reserve(world, job_id="j-free", plan="free", credits=50)
    [account] = world.service.summary().accounts
    assert (account.balance, account.reserved) == (40, 60)


def test_given_reservations_refunds_and_successes_then_reserved_minus_refunded_is_charged(world: World) -> None:
    world.ledger.deposit("u-2", 50, "purchase-2", NOW)
    world.ledger.deposit("u-2", 50, "purchase-2", NOW)  # a retried purchase counts once
    for job, user, credits in [("j-1", "u-1", 10), ("j-2", "u-1", 20), ("j-3", "u-2", 7), ("j-4", "u-2", 9)]:
        reserve(world, job_id=job, user_id=user, credits=credits)
    for job, user, credits in [("j-2", "u-1", 20), ("j-4", "u-2", 9)]:  # j-1 and j-3 succeeded
        world.service.handle(letter(envelope(job_id=job, user_id=user, credits=credits), f"m-{job}"), NOW)
    summary = world.service.summary()
    assert summary.problems() == []
    by_user = {a.user_id: (a.reserved, a.refunded, a.charged, a.balance) for a in summary.accounts}
    assert by_user == {"u-1": (30, 20, 10, 90), "u-2": (16, 9, 7, 43)}
    assert (summary.reserved - summary.refunded, summary.charged, summary.refunds) == (17, 17, 2)


def attempt(world: World, job_id: str, index: int, outcome: AttemptOutcome | None) -> None:
    """One receive of the job: started under a 30 s lease, then ended with `outcome`; None: still running
    now. Ended receives lie in the past, 40 s apart: a released one keeps its lease until it expires."""
    at = NOW if outcome is None else NOW - timedelta(seconds=40 * (10 - index))
    key = f"{job_id}-{index}"
    lease = Lease(owner=f"w/{key}", attempt_id=key, expires_at=at.timestamp() + 30)
    started = Attempt(attempt_id=key, at=at, outcome=AttemptOutcome.STARTED)
    assert world.ledger.start_attempt(POOL, job_id, started, lease, at.timestamp()).verdict == StartVerdict.START
    if outcome is not None:
        world.ledger.end_attempt(POOL, job_id, Attempt(attempt_id=key, at=at, outcome=outcome), lease.owner)


def test_given_a_completed_job_when_its_dead_letter_arrives_then_it_is_deleted_never_refunded(world: World) -> None:
    reserve(world)
    attempt(world, "j-1", 1, AttemptOutcome.COMPLETED)
    for message_id in ("m-1", "m-2"):  # replayed: still nothing
        outcome = world.service.handle(letter(envelope(), message_id), NOW)
        assert (outcome.result, outcome.refunded) == ("completed", 0)
    assert world.notifier.sent == [] and world.service.summary().accounts[0].refunded == 0
    assert world.counted("CompletedDeadLetters") == 2


def test_given_a_released_job_when_dead_lettered_then_it_goes_back_to_its_queue_once_per_letter(world: World) -> None:
    reserve(world)
    attempt(world, "j-1", 1, AttemptOutcome.RELEASED)
    attempt(world, "j-1", 2, AttemptOutcome.RELEASED)
    first = world.service.handle(letter(envelope(), "m-1"), NOW)
    again = world.service.handle(letter(envelope(), "m-1"), NOW)  # the same dead letter delivered twice
    assert (first.result, again.result) == ("returned", "duplicate")
    assert [q for q, _ in world.queues.sent] == ["video-pro"]
    assert world.ledger.job("j-1").returns == 1  # type: ignore[union-attr]
    assert world.notifier.sent == [] and world.counted("DeadLettersReturned") == 1


def test_given_a_return_counted_but_never_confirmed_then_the_next_delivery_sends_it(world: World) -> None:
    reserve(world)
    attempt(world, "j-1", 1, AttemptOutcome.RELEASED)
    attempt(world, "j-1", 2, AttemptOutcome.RELEASED)
    world.queues.fail = Throttled("SendMessage", "Throttling")  # the delivery dies between count and send
    with pytest.raises(Throttled):
        world.service.handle(letter(envelope(), "m-1"), NOW)
    world.queues.fail = None
    assert world.service.handle(letter(envelope(), "m-1"), NOW).result == "returned"
    assert world.service.handle(letter(envelope(), "m-1"), NOW).result == "duplicate"
    assert len(world.queues.sent) == 1


@pytest.mark.parametrize(
    ("name", "outcomes"),
    [
        ("given failures then a copy running under a live lease", (AttemptOutcome.FAILED, AttemptOutcome.FAILED, None)),
        ("given releases then a copy running under a live lease", (AttemptOutcome.RELEASED, None)),
    ],
)
def test_given_a_job_running_under_a_live_lease_then_its_dead_letter_is_neither_refunded_nor_returned(
    world: World, name: str, outcomes: tuple[AttemptOutcome | None, ...]
) -> None:
    reserve(world)
    for index, outcome in enumerate(outcomes):
        attempt(world, "j-1", index, outcome)
    with pytest.raises(JobRunning):
        world.service.handle(letter(envelope(), "m-1"), NOW)
    assert world.queues.sent == [] and world.notifier.sent == [], name
    assert world.service.summary().accounts[0].refunded == 0 and world.counted("DeadLettersOfRunningJobs") == 1
    # Once the lease expired (its worker died), the next delivery settles it.
    later = NOW + timedelta(seconds=len(outcomes) + 30)
    assert world.service.handle(letter(envelope(), "m-1"), later).result in {"refunded", "returned"}


def test_given_a_refund_then_no_copy_of_the_job_starts(world: World) -> None:
    reserve(world)
    assert world.service.handle(letter(envelope()), NOW).result == "refunded"
    lease = Lease(owner="w/late", attempt_id="late", expires_at=NOW.timestamp() + 30)
    late = Attempt(attempt_id="late", at=NOW, outcome=AttemptOutcome.STARTED)
    assert world.ledger.start_attempt(POOL, "j-1", late, lease, NOW.timestamp()).verdict == StartVerdict.REFUNDED


def test_given_a_job_returned_up_to_the_bound_then_it_is_refunded_and_the_exhaustion_counted(world: World) -> None:
    reserve(world)
    for index in range(2):
        attempt(world, "j-1", index, AttemptOutcome.RELEASED)
    results = [world.service.handle(letter(envelope(), f"m-{n}"), NOW).result for n in range(3)]
    assert results == ["returned", "returned", "refunded"]
    assert world.counted("ReturnsExhausted") == 1 and len(world.notifier.sent) == 1


def test_given_a_dead_letter_without_its_source_queue_then_a_released_job_is_settled(world: World) -> None:
    reserve(world)
    attempt(world, "j-1", 1, AttemptOutcome.RELEASED)
    bare = DeadLetter.model_validate({"messageId": "m-1", "body": json.dumps(envelope())})
    assert world.service.handle(bare, NOW).result == "refunded"


def test_given_a_parked_job_then_the_ledger_marks_it_parked(world: World) -> None:
    reserve(world, credits=12)
    outcome = world.service.handle(letter(envelope(credits=13)), NOW)  # disagrees with its reservation
    assert outcome.result == "parked" and world.ledger.job("j-1").outcome == JobOutcome.PARKED  # type: ignore[union-attr]
