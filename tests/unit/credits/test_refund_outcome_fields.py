"""What the DLQ handler reports for a dead letter it deletes (the job completed) or sends back (the job
was only released): which message and job, that nothing was refunded, nobody notified, and why.
And its rarer paths, each with what it reports and counts: a job that completed just before its
failure was written, a ledger answer that breaks the duplicate's contract, a notice claim lost before
publishing, a claim that cannot be put back, and what a parked dead letter leaves."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from queue_scaler.credits.domain.ledger import AttemptOutcome
from queue_scaler.credits.domain.refund import NoticeState
from queue_scaler.credits.ports import FailureWrite, ReturnWrite, WriteOutcome
from queue_scaler.shared.errors import NotificationPending, Throttled
from tests.unit.credits.test_refund_service import LEASE, NOW, World, attempt, envelope, letter, reserve


@pytest.fixture
def world() -> World:
    w = World()
    w.ledger.deposit("u-1", 100, "purchase-1", NOW)
    reserve(w)
    return w


@pytest.mark.parametrize(
    ("name", "last_attempt", "result"),
    [
        (
            "given a completed job when its dead letter arrives then it reports completed",
            AttemptOutcome.COMPLETED,
            "completed",
        ),
        (
            "given a released job when its dead letter arrives then it reports returned",
            AttemptOutcome.RELEASED,
            "returned",
        ),
    ],
)
def test_outcome_fields(world: World, name: str, last_attempt: AttemptOutcome, result: str) -> None:
    attempt(world, "j-1", 1, AttemptOutcome.RELEASED)
    attempt(world, "j-1", 2, last_attempt)
    outcome = world.service.handle(letter(envelope(), "m-7"), NOW)
    fields = outcome.as_dict()
    assert fields.pop("reason")
    assert fields == {"message_id": "m-7", "result": result, "job_id": "j-1", "refunded": 0, "notified": False}
    assert world.notifier.sent == [] and world.service.summary().accounts[0].refunded == 0


def test_given_another_delivery_used_the_last_return_when_sending_back_then_the_job_is_settled_and_counted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempt(world, "j-1", 1, AttemptOutcome.RELEASED)
    attempt(world, "j-1", 2, AttemptOutcome.RELEASED)
    # The ledger had a return left when read, but a concurrent delivery took it before this write.
    monkeypatch.setattr(world.ledger, "record_return", lambda *args: ReturnWrite.EXHAUSTED)
    outcome = world.service.handle(letter(envelope(), "m-1"), NOW)
    assert (outcome.result, outcome.refunded) == ("refunded", 12)
    assert world.queues.sent == []
    assert world.counted("ReturnsExhausted") == 1 and world.counted("DeadLettersReturned") == 0


def test_given_a_job_already_failed_when_its_dead_letter_comes_again_then_it_reports_a_duplicate(world: World) -> None:
    world.service.handle(letter(envelope(), "m-1"), NOW)
    again = world.service.handle(letter(envelope(), "m-2"), NOW)
    assert again.as_dict() == {
        "message_id": "m-2",
        "result": "duplicate",
        "job_id": "j-1",
        "refunded": 0,
        "notified": False,
        "reason": "already failed",
    }
    assert world.service.summary().accounts[0].refunded == 12 and len(world.notifier.sent) == 1


def test_given_a_reserved_job_when_refunded_then_it_reports_the_job_and_the_credits(world: World) -> None:
    outcome = world.service.handle(letter(envelope(), "m-3"), NOW)
    fields = outcome.as_dict()
    assert fields.pop("reason")
    assert fields == {"message_id": "m-3", "result": "refunded", "job_id": "j-1", "refunded": 12, "notified": True}


def test_given_the_job_completed_before_its_failure_was_written_then_the_letter_is_served_not_refunded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(world.ledger, "record_failure", lambda job: FailureWrite(WriteOutcome.COMPLETED))
    outcome = world.service.handle(letter(envelope()), NOW)
    assert outcome.as_dict() == {
        "message_id": "m-1",
        "result": "completed",
        "job_id": "j-1",
        "refunded": 0,
        "notified": False,
        "reason": "the job completed while its dead letter was handled",
    }
    assert world.counted("CompletedDeadLetters") == 1 and world.notifier.sent == []


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("given a duplicate without its stored job then it is parked as unexpected", "stored"),
        ("given a duplicate without its notice state then it is parked as unexpected", "notice"),
        ("given a duplicate without its claim time then it is parked as unexpected", "claimed_at"),
    ],
)
def test_duplicate_contract(world: World, monkeypatch: pytest.MonkeyPatch, name: str, missing: str) -> None:
    world.service.handle(letter(envelope()), NOW)
    held = world.ledger.jobs["j-1"]
    parts: dict[str, object] = {"stored": held["failed"], "notice": held["notice"], "claimed_at": held["claimed_at"]}
    parts[missing] = None
    monkeypatch.setattr(world.ledger, "record_failure", lambda job: FailureWrite(WriteOutcome.DUPLICATE, **parts))
    outcome = world.service.handle(letter(envelope(), "m-2"), NOW + timedelta(seconds=1))
    assert outcome.result == "parked", name
    assert outcome.reason.endswith("the ledger reported a duplicate without the stored job and its notice"), name


def test_given_a_live_claim_when_a_duplicate_arrives_then_the_wait_names_the_job(world: World) -> None:
    world.notifier.fail = Throttled("Publish", "Throttling")
    with pytest.raises(Throttled):
        world.service.handle(letter(envelope()), NOW)
    with pytest.raises(NotificationPending, match="job 'j-1'"):
        world.service.handle(letter(envelope(), "m-2"), NOW + timedelta(seconds=1))


def test_given_the_take_over_lost_to_another_delivery_then_the_wait_names_the_job(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.notifier.fail = Throttled("Publish", "Throttling")
    with pytest.raises(Throttled):
        world.service.handle(letter(envelope()), NOW)
    world.notifier.fail = None
    monkeypatch.setattr(world.ledger, "take_over_notice", lambda *_: False)
    with pytest.raises(NotificationPending, match="job 'j-1'"):
        world.service.handle(letter(envelope(), "m-2"), NOW + timedelta(seconds=LEASE))
    assert world.notifier.sent == []


def test_given_a_sent_notice_when_a_duplicate_arrives_then_nothing_is_counted_unconfirmed(world: World) -> None:
    world.service.handle(letter(envelope()), NOW)
    again = world.service.handle(letter(envelope(), "m-2"), NOW + timedelta(seconds=LEASE * 2))
    assert (again.result, again.notified) == ("duplicate", False)
    assert world.counted("NoticesUnconfirmed") == 0


def test_given_the_notice_claim_lost_before_publishing_then_nothing_is_sent_and_it_is_counted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(world.ledger, "start_notice", lambda pool, job_id, claim: False)
    outcome = world.service.handle(letter(envelope()), NOW)
    assert (outcome.result, outcome.refunded, outcome.notified) == ("refunded", 12, False)
    assert world.notifier.sent == [] and world.counted("NoticeClaimsLost") == 1


@pytest.mark.parametrize(
    ("name", "reopened", "unconfirmed"),
    [
        ("given SNS refused and the claim put back then a later delivery can send it", True, 0),
        ("given SNS refused and the claim not put back then it is counted unconfirmed", False, 1),
    ],
)
def test_refused_notice(
    world: World, monkeypatch: pytest.MonkeyPatch, name: str, reopened: bool, unconfirmed: int
) -> None:
    world.notifier.fail = Throttled("Publish", "Throttling")
    if not reopened:
        monkeypatch.setattr(world.ledger, "reopen_notice", lambda pool, job_id, claim: False)
    with pytest.raises(Throttled):
        world.service.handle(letter(envelope()), NOW)
    assert world.counted("NoticesUnconfirmed") == unconfirmed, name
    assert world.ledger.jobs["j-1"]["notice"] == (NoticeState.PENDING if reopened else NoticeState.PUBLISHING), name


def test_given_a_parked_dead_letter_then_the_ledger_and_the_record_name_it_and_a_long_body_is_counted(
    world: World,
) -> None:
    parked_at = datetime(2026, 11, 22, 10, 5, tzinfo=NOW.tzinfo)
    body = envelope(credits=13) | {"payload": {"blob": "x" * 300_000}}  # disagrees with its reservation
    outcome = world.service.handle(letter(body, "m-9"), parked_at)
    assert (outcome.result, outcome.job_id) == ("parked", "j-1")
    held = world.ledger.jobs["j-1"]
    assert (held["parked_message"], held["parked_at"]) == ("m-9", parked_at)
    record = world.parking.parked["m-9"]
    assert (record.job_id, record.truncated) == ("j-1", True)
    assert world.counted("ParkedRecords") == 1 and world.counted("ParkedTruncated") == 1
