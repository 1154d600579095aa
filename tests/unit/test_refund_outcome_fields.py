"""What the DLQ handler reports for a dead letter it deletes (the job completed) or sends back (the job
was only released): which message and job, that nothing was refunded, nobody notified, and why."""

from __future__ import annotations

import pytest

from queue_scaler.domain.ledger import AttemptOutcome
from queue_scaler.ports import ReturnWrite
from tests.unit.test_refund_service import NOW, World, attempt, envelope, letter, reserve


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
