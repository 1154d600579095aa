"""The refund rules, the notice claim and the ledger's invariant: one named Given/When/Then case each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from queue_scaler.credits.domain.ledger import Account, Summary
from queue_scaler.credits.domain.refund import (
    InvalidAmount,
    NoticeState,
    NoticeStep,
    RefundPolicy,
    Verdict,
    assess,
    chargeable,
    failed_job,
    last_error,
    notice_step,
    user_notice,
)
from queue_scaler.shared.jobs import Plan

POLICY = RefundPolicy(cap=100, uncharged_plans=frozenset({"free"}))
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@dataclass
class AssessCase:
    name: str
    plan: Plan
    credits: int
    verdict: Verdict
    amount: int
    reason: str


NOTHING, UNREFUNDABLE = "nothing to refund: ", "unrefundable: credits "
ASSESS_CASES = [
    AssessCase(
        "given a pro job with 12 credits then 12 are refunded", "pro", 12, Verdict.REFUND, 12, "refund 12 credits"
    ),
    AssessCase(
        "given exactly the cap then it is refunded", "enterprise", 100, Verdict.REFUND, 100, "refund 100 credits"
    ),
    AssessCase("given one credit then it is refunded", "starter", 1, Verdict.REFUND, 1, "refund 1 credits"),
    AssessCase(
        "given 0 credits then it is recorded", "studio", 0, Verdict.RECORD, 0, f"{NOTHING}the job reserved 0 credits"
    ),
    AssessCase(
        "given a free job with credits then it is recorded",
        "free",
        30,
        Verdict.RECORD,
        0,
        f"{NOTHING}plan free is not charged",
    ),
    AssessCase(
        "given a free job above the cap then it is recorded",
        "free",
        500,
        Verdict.RECORD,
        0,
        f"{NOTHING}plan free is not charged",
    ),
    AssessCase(
        "given one above the cap then it is parked",
        "pro",
        101,
        Verdict.PARK,
        0,
        f"{UNREFUNDABLE}101 exceed the cap of 100",
    ),
    AssessCase("given negative credits then it is parked", "pro", -1, Verdict.PARK, 0, f"{UNREFUNDABLE}-1 is negative"),
    AssessCase(
        "given negative credits on free then it is parked", "free", -3, Verdict.PARK, 0, f"{UNREFUNDABLE}-3 is negative"
    ),
]


@pytest.mark.parametrize("case", ASSESS_CASES, ids=lambda c: c.name)
def test_assess(case: AssessCase) -> None:
    result = assess(case.plan, case.credits, POLICY)
    assert (result.verdict, result.amount, result.reason) == (case.verdict, case.amount, case.reason)


@pytest.mark.parametrize(
    ("name", "plan", "credits", "expected"),
    [
        ("given a charged plan then the credits are reserved", "pro", 7, 7),
        ("given an uncharged plan then nothing is reserved", "free", 7, 0),
        ("given a policy charging free then free reserves", "free", 7, 7),
    ],
)
def test_chargeable(name: str, plan: Plan, credits: int, expected: int) -> None:
    policy = RefundPolicy(cap=100, uncharged_plans=frozenset()) if "charging free" in name else POLICY
    assert chargeable(plan, credits, policy) == expected


@pytest.mark.parametrize("credits", [-1, 101])
def test_given_an_amount_out_of_bounds_when_reserving_then_it_is_refused(credits: int) -> None:
    with pytest.raises(InvalidAmount):
        chargeable("pro", credits, POLICY)


@dataclass
class NoticeCase:
    name: str
    state: NoticeState
    age_seconds: float
    step: NoticeStep


NOTICE_CASES = [
    NoticeCase("given a sent notice then nothing is left to do", NoticeState.SENT, 0, NoticeStep.DONE),
    NoticeCase("given an old sent notice then nothing is left to do", NoticeState.SENT, 9999, NoticeStep.DONE),
    NoticeCase("given a fresh claim then the duplicate waits", NoticeState.PENDING, 0, NoticeStep.WAIT),
    NoticeCase("given a claim just inside its lease then it waits", NoticeState.PENDING, 59.9, NoticeStep.WAIT),
    NoticeCase("given a claim at its lease then it is taken over", NoticeState.PENDING, 60, NoticeStep.TAKE_OVER),
    NoticeCase("given a dead holder then the claim is taken over", NoticeState.PENDING, 3600, NoticeStep.TAKE_OVER),
    NoticeCase("given a live publish then the duplicate waits", NoticeState.PUBLISHING, 10, NoticeStep.WAIT),
    NoticeCase(
        "given a publish past its lease (maybe sent, unconfirmed) then never sent again",
        NoticeState.PUBLISHING,
        3600,
        NoticeStep.DONE,
    ),
]


@pytest.mark.parametrize("case", NOTICE_CASES, ids=lambda c: c.name)
def test_notice_step(case: NoticeCase) -> None:
    claimed_at = NOW - timedelta(seconds=case.age_seconds)
    assert notice_step(case.state, claimed_at, NOW, lease_seconds=60) == case.step


@pytest.mark.parametrize(
    ("name", "account", "problems"),
    [
        ("given a fresh account then it adds up", Account(user_id="u"), []),
        (
            "given reserve then refund then it adds up",
            Account(user_id="u", balance=90, deposited=100, reserved=30, refunded=20),
            [],
        ),
        (
            "given a refund above what was reserved then it is flagged",
            Account(user_id="u", balance=110, deposited=100, reserved=10, refunded=20),
            ["refunded 20 exceeds reserved 10"],
        ),
        (
            "given a balance that lost credits then it is flagged",
            Account(user_id="u", balance=50, deposited=100, reserved=30, refunded=20),
            ["balance 50 != deposited 100 - charged 10"],
        ),
    ],
)
def test_account_invariant(name: str, account: Account, problems: list[str]) -> None:
    assert [p.removeprefix("u: ") for p in account.problems()] == problems


def test_given_accounts_when_summarised_then_charged_is_reserved_minus_refunded() -> None:
    summary = Summary(
        accounts=[
            Account(user_id="a", balance=70, deposited=100, reserved=40, refunded=10),
            Account(user_id="b", balance=5, deposited=5, reserved=0, refunded=0),
        ],
        refunds=1,
        recorded=0,
    )
    assert (summary.reserved, summary.refunded, summary.charged) == (40, 10, 30)
    assert summary.problems() == []


@pytest.mark.parametrize(
    ("name", "queue", "count", "expected"),
    [
        (
            "given the source and count then both are named",
            "video-pro",
            5,
            "dead-lettered from video-pro after 5 receives",
        ),
        ("given no source then it says so", None, 5, "dead-lettered from an unknown queue after 5 receives"),
        ("given no count then it is left out", "video-pro", None, "dead-lettered from video-pro"),
    ],
)
def test_last_error(name: str, queue: str | None, count: int | None, expected: str) -> None:
    assert last_error(queue, count) == expected


@pytest.mark.parametrize(
    ("name", "plan", "credits", "says"),
    [
        (
            "given a refund then the notice names the credits returned",
            "pro",
            12,
            "12 credits were returned to your balance.",
        ),
        (
            "given nothing reserved then the notice says the balance is unchanged",
            "free",
            12,
            "It had not reserved any credits, so your balance is unchanged.",
        ),
    ],
)
def test_user_notice(name: str, plan: Plan, credits: int, says: str) -> None:
    job = failed_job(
        job_id="j-1",
        pool="video",
        user_id="u-1",
        plan=plan,
        kind="video.transcode",
        assessment=assess(plan, credits, POLICY),
        last_error="dead-lettered",
        now=NOW,
        claim="c",
    )
    notice = user_notice(job)
    assert notice.message == f"Your video.transcode job j-1 could not be completed after several attempts. {says}", name
    assert (notice.user_id, notice.subject) == ("u-1", "Job j-1 failed")


def test_given_a_parked_verdict_when_building_the_transaction_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="parked"):
        failed_job(
            job_id="j",
            pool="video",
            user_id="u",
            plan="pro",
            kind="k",
            assessment=assess("pro", 1000, POLICY),
            last_error="e",
            now=NOW,
            claim="c",
        )
