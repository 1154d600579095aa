"""The DynamoDB ledger under moto: reservations, deposits, rejected refunds, and the invariant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devkit.localcloud.server import make_dynamodb_atomic
from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.refund import RefundPolicy, assess, failed_job, reservation
from queue_scaler.credits.ports import WriteOutcome
from queue_scaler.shared.errors import DuplicateReservation, InsufficientCredits
from queue_scaler.shared.jobs import Plan
from tests.functional.moto_stack import create_ledger_table

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
POLICY = RefundPolicy(cap=1000)
POOL = "video"


@pytest.fixture
def ledger(aws: None, monkeypatch: pytest.MonkeyPatch) -> DynamoLedger:
    make_dynamodb_atomic()
    return DynamoLedger(create_ledger_table())


def reserve(ledger: DynamoLedger, job_id: str, user_id: str, credits: int, plan: Plan = "pro") -> None:
    ledger.reserve(
        reservation(
            job_id=job_id, pool=POOL, user_id=user_id, plan=plan, kind="k", credits=credits, policy=POLICY, now=NOW
        ),
        claim=f"submit-{job_id}",
    )


def fail(ledger: DynamoLedger, job_id: str, user_id: str, credits: int, plan: Plan = "pro"):  # type: ignore[no-untyped-def]
    return ledger.record_failure(
        failed_job(
            job_id=job_id,
            pool=POOL,
            user_id=user_id,
            plan=plan,
            kind="k",
            assessment=assess(plan, credits, POLICY),
            last_error="dead-lettered",
            now=NOW,
            claim=f"claim-{job_id}",
        )
    )


def test_given_a_short_balance_when_reserving_then_nothing_is_reserved(ledger: DynamoLedger) -> None:
    ledger.deposit("u", 10, "p-1", NOW)
    with pytest.raises(InsufficientCredits):
        reserve(ledger, "j-1", "u", 11)
    with pytest.raises(InsufficientCredits):
        reserve(ledger, "j-2", "nobody", 1)
    reserve(ledger, "j-3", "u", 10)
    with pytest.raises(DuplicateReservation):
        reserve(ledger, "j-3", "u", 10)
    [account] = ledger.summary().accounts
    assert (account.balance, account.reserved) == (0, 10)
    # The failed reservations left no job behind: their dead letters would be parked, not refunded.
    assert fail(ledger, "j-1", "u", 11).outcome == WriteOutcome.REJECTED


def test_given_a_retried_deposit_then_it_counts_once(ledger: DynamoLedger) -> None:
    ledger.deposit("u", 10, "p-1", NOW)
    ledger.deposit("u", 10, "p-1", NOW)
    ledger.deposit("u", 5, "p-2", NOW)
    [account] = ledger.summary().accounts
    assert (account.balance, account.deposited) == (15, 15)


@pytest.mark.parametrize(
    ("name", "job_id", "user_id", "credits", "reason"),
    [
        ("given no reservation then the refund is refused", "j-none", "u", 5, "no reservation for job j-none"),
        ("given another user then the refund is refused", "j-1", "intruder", 5, "reserved by another user"),
        ("given another amount then the refund is refused", "j-1", "u", 6, "reserved 5 credits but its envelope asks"),
        ("given a zero claim on a paid job then it is refused", "j-1", "u", 0, "reserved 5 credits"),
    ],
)
def test_rejected_refunds(
    ledger: DynamoLedger, *, name: str, job_id: str, user_id: str, credits: int, reason: str
) -> None:
    ledger.deposit("u", 10, "p-1", NOW)
    reserve(ledger, "j-1", "u", 5)
    write = fail(ledger, job_id, user_id, credits)
    assert write.outcome == WriteOutcome.REJECTED and reason in write.reason
    [account] = ledger.summary().accounts
    assert (account.balance, account.refunded) == (5, 0)


def test_given_a_refund_then_a_duplicate_reports_the_stored_job_and_its_notice(ledger: DynamoLedger) -> None:
    ledger.deposit("u", 10, "p-1", NOW)
    reserve(ledger, "j-1", "u", 5)
    assert fail(ledger, "j-1", "u", 5).outcome == WriteOutcome.WRITTEN
    again = fail(ledger, "j-1", "u", 5)
    assert again.outcome == WriteOutcome.DUPLICATE and again.stored is not None
    assert (again.stored.amount, again.stored.claim, again.notice) == (5, "claim-j-1", "pending")
    assert ledger.confirm_notice(POOL, "j-1", "not-the-holder") is False
    assert ledger.take_over_notice(POOL, "j-1", "stale", "mine", NOW) is False
    assert ledger.take_over_notice(POOL, "j-1", "claim-j-1", "mine", NOW) is True
    assert ledger.confirm_notice(POOL, "j-1", "mine") is True
    assert fail(ledger, "j-1", "u", 5).notice == "sent"


def test_given_submissions_successes_and_failures_then_reserved_minus_refunded_equals_charged(
    ledger: DynamoLedger,
) -> None:
    ledger.deposit("a", 100, "p-a", NOW)
    ledger.deposit("b", 40, "p-b", NOW)
    jobs = [("j-1", "a", 10), ("j-2", "a", 25), ("j-3", "b", 7), ("j-4", "b", 9), ("j-5", "b", 3, "free")]
    for job_id, user, credits, *plan in jobs:
        reserve(ledger, job_id, user, credits, *plan)  # type: ignore[arg-type]
    for job_id, user, credits, *plan in [jobs[1], jobs[3], jobs[4]]:  # j-1 and j-3 succeeded
        assert fail(ledger, job_id, user, credits, *plan).outcome == WriteOutcome.WRITTEN  # type: ignore[arg-type]
    summary = ledger.summary()
    assert summary.problems() == []
    assert {a.user_id: (a.reserved, a.refunded, a.charged, a.balance) for a in summary.accounts} == {
        "a": (35, 25, 10, 90),
        "b": (16, 9, 7, 33),
    }
    assert (summary.refunds, summary.recorded) == (2, 1)
    assert summary.reserved - summary.refunded == summary.charged == 17
