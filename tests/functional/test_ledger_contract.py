"""One contract for the ledger, run against the in-memory fake and the DynamoDB ledger on moto.

Each test states one transition of a job's life (domain.ledger) and what each port's user sees:
the producer (credits), the workers (attempts and the run lease) and DlqRefundFunction (refunds).
The fake cannot drift from the real ledger: both must pass every test here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.ledger import Attempt, AttemptOutcome, JobStatus, Lease, SendState, StartVerdict
from queue_scaler.credits.domain.refund import FailedJob, RefundPolicy, reservation
from queue_scaler.credits.ports import Ledger, ReturnWrite, WriteOutcome
from queue_scaler.shared.errors import BalanceCapExceeded, DuplicateReservation, InsufficientCredits, ReferenceTaken
from tests.fakes import FakeLedger
from tests.functional.moto_stack import create_ledger_table

NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
T = NOW.timestamp()
POOL = "video"
LEASE = 60.0


CAP = 100  # the balance cap of the `capped` ledgers


@pytest.fixture(params=["fake", "dynamodb"])
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    if request.param == "fake":
        yield FakeLedger()
        return
    request.getfixturevalue("aws")
    yield DynamoLedger(create_ledger_table())


@pytest.fixture(params=["fake", "dynamodb"])
def capped(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    if request.param == "fake":
        yield FakeLedger(balance_cap=CAP)
        return
    request.getfixturevalue("aws")
    yield DynamoLedger(create_ledger_table(), balance_cap=CAP)


def reserve(ledger: Ledger, job_id: str = "j-1", credits: int = 5, user_id: str = "u", pool: str = POOL) -> None:
    ledger.reserve(
        reservation(
            job_id=job_id,
            pool=pool,
            user_id=user_id,
            plan="pro",
            kind="video.transcode",
            credits=credits,
            policy=RefundPolicy(cap=1000),
            now=NOW,
        ),
        claim=f"claim-{job_id}",
    )


def lease(owner: str, at: float = T) -> Lease:
    return Lease(owner=owner, attempt_id=owner, expires_at=at + LEASE)


def start(ledger: Ledger, owner: str, at: float = T, job_id: str = "j-1", pool: str = POOL) -> StartVerdict:
    attempt = Attempt(attempt_id=owner, at=datetime.fromtimestamp(at, UTC), outcome=AttemptOutcome.STARTED)
    return ledger.start_attempt(pool, job_id, attempt, lease(owner, at), at).verdict


def end(
    ledger: Ledger, owner: str, outcome: AttemptOutcome, job_id: str = "j-1", hold_until: float | None = None
) -> bool:
    return ledger.end_attempt(POOL, job_id, Attempt(attempt_id=owner, at=NOW, outcome=outcome), owner, hold_until)


def refund(ledger: Ledger, at: float = T, credits: int = 5, user_id: str = "u", job_id: str = "j-1") -> WriteOutcome:
    failed = FailedJob(
        job_id=job_id,
        pool=POOL,
        user_id=user_id,
        plan="pro",
        kind="video.transcode",
        amount=credits,
        last_error="dead-lettered",
        failed_at=datetime.fromtimestamp(at, UTC),
        claim="notice-claim",
    )
    return ledger.record_failure(failed).outcome


@pytest.fixture
def funded(ledger: Ledger) -> Ledger:
    ledger.deposit("u", 100, "purchase-1", NOW)
    return ledger


# Credits: the producer --------------------------------------------------------------------------


def test_given_a_reference_when_another_user_deposits_it_then_it_is_refused_naming_its_owner(ledger: Ledger) -> None:
    ledger.deposit("u", 10, "p-1", NOW)
    ledger.deposit("u", 10, "p-1", NOW)  # the same purchase retried: once
    with pytest.raises(ReferenceTaken, match="'u'"):
        ledger.deposit("v", 10, "p-1", NOW)
    account = ledger.account("u")
    assert account is not None and (account.balance, account.deposited) == (10, 10)
    assert ledger.account("v") is None


def test_given_a_balance_cap_then_a_deposit_past_it_is_refused_whole_and_one_up_to_it_is_taken(capped: Ledger) -> None:
    with pytest.raises(BalanceCapExceeded, match=f"balance cap of {CAP}"):
        capped.deposit("u", CAP + 1, "p-0", NOW)  # alone above the cap
    assert capped.account("u") is None
    capped.deposit("u", 60, "p-1", NOW)
    with pytest.raises(
        BalanceCapExceeded, match=r"balance of user 'u' \(60\) above the balance cap of 100 .*deposit at most 40"
    ):
        capped.deposit("u", 41, "p-2", NOW)
    capped.deposit("u", 60, "p-1", NOW)  # a retried deposit is still done once, not refused by the cap
    capped.deposit("u", 40, "p-2", NOW)  # exactly up to the cap; the refused reference was not consumed
    account = capped.account("u")
    assert account is not None and (account.balance, account.deposited) == (CAP, CAP)
    reserve(capped, "j-1", 30)
    capped.deposit("u", 30, "p-3", NOW)  # room again once credits are reserved
    with pytest.raises(BalanceCapExceeded):
        capped.deposit("u", 1, "p-4", NOW)
    account = capped.account("u")
    assert account is not None and (account.balance, account.deposited, account.reserved) == (CAP, 130, 30)
    assert account.problems() == []


def test_given_a_reservation_then_a_second_one_and_an_overdraft_are_refused(funded: Ledger) -> None:
    reserve(funded, "j-1", 60)
    with pytest.raises(DuplicateReservation):
        reserve(funded, "j-1", 60)
    with pytest.raises(DuplicateReservation):  # a job id is unique across pools
        reserve(funded, "j-1", 60, pool="audio")
    with pytest.raises(InsufficientCredits):
        reserve(funded, "j-2", 41)
    record = funded.job("j-1")
    assert record is not None and (record.pool, record.status, record.credits) == (POOL, JobStatus.RESERVED, 60)
    assert funded.job("j-2") is None


def test_given_an_unsent_job_then_release_forgets_it_but_not_once_a_worker_started_it(funded: Ledger) -> None:
    reserve(funded, "j-1")
    reserve(funded, "j-2")
    held = reservation(
        job_id="j-1", pool=POOL, user_id="u", plan="pro", kind="video.transcode", credits=5,
        policy=RefundPolicy(), now=NOW,
    )  # fmt: skip
    assert funded.release(held, "not-the-claim") is False
    assert funded.release(held, "claim-j-1") is True
    assert funded.job("j-1") is None
    assert start(funded, "w/a", job_id="j-2") == StartVerdict.START
    assert funded.release(held.model_copy(update={"job_id": "j-2"}), "claim-j-2") is False
    account = funded.account("u")
    assert account is not None and (account.balance, account.reserved) == (95, 5)


def test_given_a_send_whose_outcome_is_unknown_then_its_reservation_is_kept_until_it_is_marked_sent(
    funded: Ledger,
) -> None:
    reserve(funded, "j-1")
    held = reservation(
        job_id="j-1", pool=POOL, user_id="u", plan="pro", kind="video.transcode", credits=5,
        policy=RefundPolicy(), now=NOW,
    )  # fmt: skip
    assert funded.mark_send_unknown(POOL, "j-1", "not-the-claim") is False
    assert funded.mark_send_unknown(POOL, "j-none", "claim-j-1") is False
    assert funded.job("j-none") is None, "nothing is created for a job that has no reservation"
    assert funded.mark_send_unknown(POOL, "j-1", "claim-j-1") is True
    record = funded.job("j-1")
    assert record is not None and record.send_state == SendState.UNKNOWN and record.status == JobStatus.RESERVED
    assert funded.release(held, "claim-j-1") is False, "its message may be queued: never released"
    assert start(funded, "w/a", job_id="j-1") == StartVerdict.START, "a worker runs it: it is reserved"
    assert funded.take_over_send(POOL, "j-1", "claim-j-1", "retry", NOW) is True, "a retry may resend"
    assert funded.mark_send_unknown(POOL, "j-1", "claim-j-1") is False, "the claim moved to the retry"
    assert funded.mark_sent(POOL, "j-1", "retry", "q", "m-2") is True
    record = funded.job("j-1")
    assert record is not None and record.send_state == SendState.SENT
    assert funded.mark_send_unknown(POOL, "j-1", "retry") is False, "sent is final"
    account = funded.account("u")
    assert account is not None and (account.balance, account.reserved) == (95, 5)


# Attempts: the workers --------------------------------------------------------------------------


def test_given_no_reservation_or_another_pool_then_no_attempt_starts(funded: Ledger) -> None:
    assert start(funded, "w/a") == StartVerdict.UNRESERVED
    reserve(funded, "j-1")
    assert start(funded, "w/a", pool="audio") == StartVerdict.UNRESERVED
    record = funded.job("j-1")
    assert record is not None and record.attempts == [] and record.lease is None


def test_given_a_live_lease_then_another_receive_is_refused_until_it_expires(funded: Ledger) -> None:
    reserve(funded)
    assert start(funded, "w/a") == StartVerdict.START
    assert start(funded, "w/a", T + 1) == StartVerdict.START, "a retried start of the same receive"
    assert start(funded, "w/b", T + 2) == StartVerdict.LEASED
    result = funded.start_attempt(
        POOL, "j-1", Attempt(attempt_id="c", at=NOW, outcome=AttemptOutcome.STARTED), lease("w/c"), T + 3
    )
    assert result.lease is not None and result.lease.owner == "w/a", "the holder's lease, to come back after it"
    assert funded.renew_lease(POOL, "j-1", lease("w/a", T + 30))
    assert not funded.renew_lease(POOL, "j-1", lease("w/b", T + 30))
    assert start(funded, "w/b", T + 30 + LEASE - 1) == StartVerdict.LEASED
    assert start(funded, "w/b", T + 30 + LEASE) == StartVerdict.START, "its worker died: the lease expired"
    record = funded.job("j-1")
    assert record is not None and record.lease is not None and record.lease.owner == "w/b"
    assert sorted(a.attempt_id for a in record.attempts) == ["w/a", "w/b"]


def test_given_a_failed_attempt_then_the_lease_is_freed_by_its_owner_only(funded: Ledger) -> None:
    reserve(funded)
    assert start(funded, "w/a") == StartVerdict.START
    assert end(funded, "w/b", AttemptOutcome.FAILED) is False
    assert start(funded, "w/c", T + 1) == StartVerdict.LEASED
    assert end(funded, "w/a", AttemptOutcome.FAILED) is True
    assert start(funded, "w/c", T + 1) == StartVerdict.START, "the next receive runs at once"


def test_given_a_released_attempt_then_its_late_failure_changes_nothing(funded: Ledger) -> None:
    reserve(funded)
    assert start(funded, "w/a") == StartVerdict.START
    assert end(funded, "w/a", AttemptOutcome.RELEASED) is True
    assert start(funded, "w/c", T + 1) == StartVerdict.LEASED, "a released run may still be finishing"
    # Its handler raised after the release: a release never counts toward a refund, and the lease
    # stays until the releasing process is gone.
    assert end(funded, "w/a", AttemptOutcome.FAILED) is False
    assert start(funded, "w/c", T + 1) == StartVerdict.LEASED
    record = funded.job("j-1")
    assert record is not None and record.tally() == {AttemptOutcome.RELEASED: 1}


def test_given_a_release_with_its_process_gone_by_then_the_lease_is_cut_to_then_by_its_owner_only(
    funded: Ledger,
) -> None:
    reserve(funded)
    assert start(funded, "w/a") == StartVerdict.START
    assert end(funded, "w/b", AttemptOutcome.RELEASED, hold_until=T + 5) is True
    assert start(funded, "w/c", T + 6) == StartVerdict.LEASED, "another receive's release cuts nothing"
    assert end(funded, "w/a", AttemptOutcome.RELEASED, hold_until=T + LEASE + 30) is True
    assert start(funded, "w/c", T + LEASE - 1) == StartVerdict.LEASED, "a release never lengthens the lease"
    assert end(funded, "w/a", AttemptOutcome.RELEASED, hold_until=T + 15) is True
    assert start(funded, "w/c", T + 14) == StartVerdict.LEASED, "the released run may still be finishing"
    assert start(funded, "w/c", T + 15) == StartVerdict.START, "its process is gone: the job runs again now"
    record = funded.job("j-1")
    assert record is not None and record.lease is not None and record.lease.owner == "w/c"


def test_given_a_completed_attempt_then_a_late_release_of_its_receive_leaves_it_completed(funded: Ledger) -> None:
    reserve(funded)
    assert start(funded, "w/a") == StartVerdict.START
    assert end(funded, "w/a", AttemptOutcome.COMPLETED) is True
    assert end(funded, "w/a", AttemptOutcome.RELEASED) is False, "an attempt ends once"
    assert end(funded, "w/a", AttemptOutcome.COMPLETED) is False, "the job had already completed"
    record = funded.job("j-1")
    assert record is not None and record.status == JobStatus.COMPLETED
    assert record.tally() == {AttemptOutcome.COMPLETED: 1}


def test_given_a_completion_then_no_copy_starts_and_no_refund_happens(funded: Ledger) -> None:
    reserve(funded)
    assert start(funded, "w/a") == StartVerdict.START
    assert end(funded, "w/a", AttemptOutcome.COMPLETED) is True
    record = funded.job("j-1")
    assert record is not None and record.status == JobStatus.COMPLETED and record.lease is None
    assert record.completed_attempt == "w/a"
    assert start(funded, "w/b", T + LEASE * 2) == StartVerdict.COMPLETED
    assert end(funded, "w/b", AttemptOutcome.COMPLETED) is False, "the first completion is the one"
    assert not funded.renew_lease(POOL, "j-1", lease("w/a"))
    assert refund(funded, T + LEASE * 2) == WriteOutcome.COMPLETED
    summary = funded.summary()
    assert summary.problems() == [] and summary.charged == 5 and summary.refunded == 0


# Refunds: DlqRefundFunction ---------------------------------------------------------------------


def test_given_a_live_lease_then_no_refund_until_it_expires_and_then_no_copy_starts(funded: Ledger) -> None:
    reserve(funded)
    assert start(funded, "w/a") == StartVerdict.START
    assert refund(funded, T + 1) == WriteOutcome.RUNNING
    assert refund(funded, T + LEASE) == WriteOutcome.WRITTEN
    assert refund(funded, T + LEASE) == WriteOutcome.DUPLICATE
    assert start(funded, "w/b", T + LEASE) == StartVerdict.REFUNDED
    assert end(funded, "w/a", AttemptOutcome.COMPLETED) is False, "refunded first: the refund stands"
    record = funded.job("j-1")
    assert record is not None and record.status == JobStatus.FAILED and record.completed_at is None
    account = funded.account("u")
    assert account is not None and (account.balance, account.refunded) == (100, 5)


def test_given_a_refund_that_does_not_match_the_reservation_then_it_is_rejected(funded: Ledger) -> None:
    assert refund(funded, job_id="j-none") == WriteOutcome.REJECTED
    reserve(funded)
    assert refund(funded, credits=6) == WriteOutcome.REJECTED
    assert refund(funded, user_id="intruder") == WriteOutcome.REJECTED
    assert funded.summary().refunded == 0


def test_given_a_dead_letter_then_it_is_returned_once_and_never_while_the_job_runs(funded: Ledger) -> None:
    reserve(funded)
    now = NOW + timedelta(seconds=1)
    assert funded.record_return(POOL, "j-1", "m-1", 2, now) == ReturnWrite.COUNTED
    assert funded.record_return(POOL, "j-1", "m-1", 2, now) == ReturnWrite.UNCONFIRMED
    funded.confirm_return(POOL, "j-1", "m-1")
    assert funded.record_return(POOL, "j-1", "m-1", 2, now) == ReturnWrite.ALREADY
    assert start(funded, "w/a", now.timestamp()) == StartVerdict.START
    assert funded.record_return(POOL, "j-1", "m-2", 2, now) == ReturnWrite.RUNNING
    later = now + timedelta(seconds=LEASE)
    assert funded.record_return(POOL, "j-1", "m-2", 2, later) == ReturnWrite.COUNTED
    assert funded.record_return(POOL, "j-1", "m-3", 2, later) == ReturnWrite.EXHAUSTED
    record = funded.job("j-1")
    assert record is not None and (record.returns, record.returned) == (2, frozenset({"m-1", "m-2"}))


def test_given_a_refund_then_its_notice_moves_only_under_its_claim(funded: Ledger) -> None:
    reserve(funded)
    assert refund(funded) == WriteOutcome.WRITTEN
    assert not funded.start_notice(POOL, "j-1", "someone-else")
    assert not funded.take_over_notice(POOL, "j-1", "stale", "mine", NOW)
    assert funded.take_over_notice(POOL, "j-1", "notice-claim", "mine", NOW)
    assert funded.start_notice(POOL, "j-1", "mine")
    assert not funded.take_over_notice(POOL, "j-1", "mine", "other", NOW), "a publishing notice is never taken"
    assert funded.reopen_notice(POOL, "j-1", "mine")
    assert funded.confirm_notice(POOL, "j-1", "mine")
    assert not funded.confirm_notice(POOL, "j-1", "other")


def test_given_jobs_each_way_then_the_summary_adds_up(funded: Ledger) -> None:
    for job_id in ("j-done", "j-failed", "j-pending"):
        reserve(funded, job_id, 10)
    assert start(funded, "w/a", job_id="j-done") == StartVerdict.START
    assert end(funded, "w/a", AttemptOutcome.COMPLETED, job_id="j-done")
    assert refund(funded, credits=10, job_id="j-failed") == WriteOutcome.WRITTEN
    summary = funded.summary()
    assert summary.problems() == []
    assert (summary.reserved, summary.refunded, summary.charged) == (30, 10, 20)
    assert {str(k): v for k, v in summary.outcomes.items() if v} == {"completed": 1, "refunded": 1, "pending": 1}


# Records: what each port's user reads back ---------------------------------------------------------


def test_given_a_deposit_of_exactly_the_cap_to_a_new_account_then_it_is_taken(capped: Ledger) -> None:
    capped.deposit("u", CAP, "p-1", NOW)
    account = capped.account("u")
    assert account is not None and (account.user_id, account.balance, account.deposited) == ("u", CAP, CAP)


def test_given_a_send_then_only_its_claim_marks_it_sent_and_a_stale_one_is_taken_over_once(funded: Ledger) -> None:
    reserve(funded)
    record = funded.job("j-1")
    assert record is not None
    assert (record.user_id, record.plan, record.kind, record.credits) == ("u", "pro", "video.transcode", 5)
    assert (record.sent, record.queue, record.send_claim, record.claimed_at) == (False, None, "claim-j-1", NOW)
    later = NOW + timedelta(seconds=LEASE)
    assert not funded.take_over_send(POOL, "j-1", "stale", "claim-2", later)
    assert funded.take_over_send(POOL, "j-1", "claim-j-1", "claim-2", later)
    record = funded.job("j-1")
    assert record is not None and (record.send_claim, record.claimed_at) == ("claim-2", later)
    assert not funded.mark_sent(POOL, "j-1", "claim-j-1", "q-video", "m-1"), "its claim was taken over"
    assert funded.mark_sent(POOL, "j-1", "claim-2", "q-video", "m-1")
    record = funded.job("j-1")
    assert record is not None and (record.sent, record.queue) == (True, "q-video")
    assert not funded.take_over_send(POOL, "j-1", "claim-2", "claim-3", later), "a sent job is never sent again"


def test_given_attempts_then_each_reads_back_with_its_start_outcome_and_reason(funded: Ledger) -> None:
    reserve(funded)
    assert start(funded, "w/a") == StartVerdict.START
    failed = Attempt(attempt_id="w/a", at=NOW + timedelta(seconds=30), outcome=AttemptOutcome.FAILED, reason="exit 3")
    assert funded.end_attempt(POOL, "j-1", failed, "w/a") is True
    assert start(funded, "w/b", T + 40) == StartVerdict.START
    record = funded.job("j-1")
    assert record is not None and record.lease == lease("w/b", T + 40)
    assert record.attempts == [
        Attempt(attempt_id="w/a", at=NOW, outcome=AttemptOutcome.FAILED, reason="exit 3"),  # when it started
        Attempt(attempt_id="w/b", at=NOW + timedelta(seconds=40), outcome=AttemptOutcome.STARTED),
    ]
    assert end(funded, "w/b", AttemptOutcome.COMPLETED) is True
    record = funded.job("j-1")
    assert record is not None and (record.completed_at, record.completed_attempt) == (NOW, "w/b")


def test_given_no_such_job_then_reads_find_nothing_and_dead_letter_writes_create_nothing(funded: Ledger) -> None:
    reserve(funded)
    assert funded.job_in("audio", "j-1") is None, "a job is found in its own pool only"
    assert funded.record_return(POOL, "j-none", "m-1", 2, NOW) == ReturnWrite.EXHAUSTED
    funded.confirm_return(POOL, "j-none", "m-1")
    funded.mark_parked(POOL, "j-none", "m-1", NOW)
    assert funded.job_in(POOL, "j-none") is None


def test_given_a_dead_letter_parked_then_only_a_job_still_reserved_is_marked(funded: Ledger) -> None:
    reserve(funded, "j-1")
    reserve(funded, "j-2")
    assert start(funded, "w/a", job_id="j-2") == StartVerdict.START
    assert end(funded, "w/a", AttemptOutcome.COMPLETED, job_id="j-2")
    funded.mark_parked(POOL, "j-1", "m-1", NOW)
    funded.mark_parked(POOL, "j-2", "m-2", NOW)
    parked = {job_id: record.parked for job_id in ("j-1", "j-2") if (record := funded.job(job_id)) is not None}
    assert parked == {"j-1": True, "j-2": False}
