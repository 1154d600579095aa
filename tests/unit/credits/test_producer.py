"""The producer over in-memory ports: route, reserve, send; release on a failed send; one message per job id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from pydantic import ValidationError

from queue_scaler.credits.domain.ledger import SendState
from queue_scaler.credits.domain.refund import CreditLimits, InvalidAmount, RefundPolicy
from queue_scaler.credits.domain.routing import Unroutable
from queue_scaler.producer import (
    JobIdConflict,
    Producer,
    SendUnknown,
    SubmissionInProgress,
    SubmitFailed,
    deposit_credits,
)
from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.shared.errors import (
    AwsCallError,
    BalanceCapExceeded,
    Forbidden,
    InsufficientCredits,
    OutcomeUnknown,
    Unavailable,
)
from queue_scaler.shared.jobs import JobEnvelope
from tests.fakes import FakeJobQueues, FakeLedger, RecordingMetrics

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LEASE = 60.0
CONFIG = ScalerConfig.model_validate(
    {
        "pools": [
            {
                "name": "video",
                "max_size": 2,
                "queues": [
                    {"name": "s-video-pro", "target_per_instance": 1},
                    {"name": "s-video-free", "url": "http://q/s-video-free", "target_per_instance": 1},
                ],
            }
        ]
    }
)


class World:
    def __init__(self) -> None:
        self.ledger, self.queues, self.metrics = FakeLedger(), FakeJobQueues(), RecordingMetrics()
        claims = count(1)
        self.producer = Producer(
            self.ledger,
            self.queues,
            CONFIG,
            self.metrics,
            policy=RefundPolicy(cap=100),
            lease_seconds=LEASE,
            new_claim=lambda: f"claim-{next(claims)}",
        )
        self.producer.deposit("u-1", 50, "purchase-1", NOW)

    def submit(self, job_id: str = "j-1", credits: int = 12, plan: str = "pro", now: datetime = NOW) -> object:
        return self.producer.submit(
            user_id="u-1",
            plan=plan,
            kind="video.transcode",
            credits=credits,
            job_id=job_id,
            now=now,  # type: ignore[arg-type]
        )

    def balance(self) -> int:
        account = self.ledger.account("u-1")
        assert account is not None
        return account.balance


@pytest.fixture
def world() -> World:
    return World()


def test_given_credits_when_submitted_then_routed_reserved_and_sent(world: World) -> None:
    submission = world.submit()
    assert submission.as_dict() == {"job_id": "j-1", "queue": "s-video-pro", "reserved": 12, "duplicate": False}  # type: ignore[attr-defined]
    [(queue, body)] = world.queues.sent
    assert queue == "s-video-pro" and '"job_id":"j-1"' in body and world.balance() == 38
    assert world.ledger.job("j-1").sent  # type: ignore[union-attr]


def test_given_a_queue_url_in_the_config_then_it_is_sent_there(world: World) -> None:
    world.submit(plan="free")
    assert world.queues.sent[0][0] == "http://q/s-video-free"


def test_given_a_retried_submit_then_one_message_is_sent(world: World) -> None:
    world.submit()
    again = world.submit(now=NOW + timedelta(seconds=5))
    assert again.duplicate and len(world.queues.sent) == 1 and world.balance() == 38  # type: ignore[attr-defined]
    assert world.metrics.counts[("DuplicateSubmits", None)] == 1


def test_given_a_failing_send_then_the_reservation_is_released(world: World) -> None:
    world.queues.fail = Unavailable("SendMessage", "ConnectTimeoutError")
    with pytest.raises(SubmitFailed):
        world.submit()
    assert world.ledger.job("j-1") is None and world.balance() == 50
    assert world.ledger.account("u-1").reserved == 0  # type: ignore[union-attr]
    world.queues.fail = None
    assert not world.submit().duplicate and len(world.queues.sent) == 1  # type: ignore[attr-defined]


def test_given_a_send_whose_answer_is_lost_then_the_reservation_is_kept_and_a_retry_resends_at_once(
    world: World,
) -> None:
    world.queues.lose_answer = OutcomeUnknown("SendMessage", "ReadTimeoutError")
    with pytest.raises(SendUnknown, match=r"may have been sent.*job id j-1 is safe"):
        world.submit()
    assert len(world.queues.sent) == 1 and world.balance() == 38
    assert world.ledger.job("j-1").send_state == SendState.UNKNOWN  # type: ignore[union-attr]
    assert world.metrics.counts[("SubmitSendUnknown", None)] == 1
    world.queues.lose_answer = None
    again = world.submit(now=NOW + timedelta(seconds=1))  # no lease to wait for: the first submit gave up
    assert not again.duplicate and len(world.queues.sent) == 2 and world.balance() == 38  # type: ignore[attr-defined]
    assert world.ledger.job("j-1").send_state == SendState.SENT  # type: ignore[union-attr]
    assert world.submit(now=NOW + timedelta(seconds=2)).duplicate and len(world.queues.sent) == 2  # type: ignore[attr-defined]


def test_given_an_unknown_send_then_a_rejected_resend_never_releases_the_reservation(world: World) -> None:
    world.queues.lose_answer = OutcomeUnknown("SendMessage", "InternalError")
    with pytest.raises(SendUnknown):
        world.submit()
    world.queues.lose_answer, world.queues.fail = None, Forbidden("SendMessage", "AccessDenied")
    with pytest.raises(SendUnknown, match="AccessDenied"):  # the first copy may be queued
        world.submit(now=NOW + timedelta(seconds=1))
    assert world.ledger.job("j-1").send_state == SendState.UNKNOWN and world.balance() == 38  # type: ignore[union-attr]
    assert world.ledger.account("u-1").reserved == 12  # type: ignore[union-attr]
    world.queues.fail = None
    assert not world.submit(now=NOW + timedelta(seconds=2)).duplicate  # type: ignore[attr-defined]
    assert world.balance() == 38, "reserved once, however many sends"


def test_given_an_unknown_send_when_two_retries_race_then_the_loser_sends_nothing_and_may_retry(
    world: World,
) -> None:
    world.queues.lose_answer = OutcomeUnknown("SendMessage", "ReadTimeoutError")
    with pytest.raises(SendUnknown):
        world.submit()
    world.queues.lose_answer = None
    stale = world.ledger.job("j-1")
    world.ledger.take_over_send("video", "j-1", "claim-1", "claim-other", NOW)  # the other retry took it first
    world.ledger.job = lambda job_id: stale  # type: ignore[method-assign, assignment]  # read before that
    with pytest.raises(SubmissionInProgress):
        world.submit(now=NOW + timedelta(seconds=1))
    assert len(world.queues.sent) == 1 and world.balance() == 38


def test_given_too_few_credits_then_nothing_is_reserved_or_sent(world: World) -> None:
    with pytest.raises(InsufficientCredits):
        world.submit(credits=51)
    assert world.queues.sent == [] and world.ledger.job("j-1") is None and world.balance() == 50


def test_given_an_unsent_reservation_with_a_live_claim_then_a_retry_waits(world: World) -> None:
    world.queues.fail = Unavailable("SendMessage", "ConnectTimeoutError")
    world.ledger.release = lambda reservation, claim: False  # type: ignore[method-assign, assignment]
    with pytest.raises(SubmitFailed):
        world.submit()
    world.queues.fail = None
    with pytest.raises(SubmissionInProgress):
        world.submit(now=NOW + timedelta(seconds=LEASE - 1))
    taken = world.submit(now=NOW + timedelta(seconds=LEASE))  # the first submit died: take over, send once
    assert not taken.duplicate and len(world.queues.sent) == 1 and world.balance() == 38  # type: ignore[attr-defined]
    assert world.submit(now=NOW + timedelta(seconds=LEASE + 1)).duplicate  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "kwargs", "error"),
    [
        ("given another user's job id then a conflict", {"credits": 13}, JobIdConflict),
        ("given a kind no pool serves then unroutable", {"kind": "audio.mix"}, Unroutable),
        ("given credits above the cap then an invalid amount", {"credits": 101, "job_id": "j-2"}, InvalidAmount),
    ],
)
def test_bad_submissions(world: World, name: str, kwargs: dict[str, object], error: type[Exception]) -> None:
    world.submit()
    fields: dict[str, object] = {"user_id": "u-1", "plan": "pro", "kind": "video.transcode", "credits": 12}
    fields |= {"job_id": "j-1"} | kwargs
    with pytest.raises(error):
        world.producer.submit(**fields, now=NOW)  # type: ignore[arg-type]
    assert len(world.queues.sent) == 1, name


def test_deposits_are_positive_and_once_per_reference(world: World) -> None:
    assert world.producer.deposit("u-1", 10, "purchase-2", NOW).balance == 60
    assert world.producer.deposit("u-1", 10, "purchase-2", NOW).balance == 60
    with pytest.raises(ValueError, match="positive"):
        world.producer.deposit("u-1", 0, "zero", NOW)


@pytest.mark.parametrize(
    ("name", "plans", "plan", "credits", "refusal"),
    [
        ("given no plan cap then free is bounded by the refund cap", {}, "free", 100, None),
        ("given no plan cap then free above the refund cap is refused", {}, "free", 101, "plan free's cap of 100"),
        ("given free's own cap then up to it is sent", {"free": {"max_credits": 10}}, "free", 10, None),
        ("given free's own cap then above it is refused", {"free": {"max_credits": 10}}, "free", 11, "cap of 10"),
        ("given free's cap then pro keeps the refund cap", {"free": {"max_credits": 10}}, "pro", 11, None),
        ("given a plan cap above the refund cap then the refund cap", {"pro": {"max_credits": 500}}, "pro", 101, "100"),
    ],
)
def test_submitted_credits_are_bounded_by_the_plans_cap(
    name: str, plans: dict[str, object], plan: str, credits: int, refusal: str | None
) -> None:
    config = ScalerConfig.model_validate(CONFIG.model_dump(exclude_unset=True) | {"plans": plans})
    ledger, queues = FakeLedger(), FakeJobQueues()
    producer = Producer(ledger, queues, config, RecordingMetrics(), policy=RefundPolicy(cap=100))
    producer.deposit("u-1", 1000, "purchase-1", NOW)
    fields = {"user_id": "u-1", "plan": plan, "kind": "video.transcode", "credits": credits, "job_id": "j-1"}
    if refusal is None:
        producer.submit(**fields, now=NOW)  # type: ignore[arg-type]
        assert len(queues.sent) == 1, name
        return
    with pytest.raises(InvalidAmount, match=f"credits: {credits} is above .*{refusal}"):
        producer.submit(**fields, now=NOW)  # type: ignore[arg-type]
    assert (queues.sent, ledger.job("j-1")) == ([], None), name


def test_deposits_are_bounded_by_the_deposit_cap_and_the_ledgers_balance_cap() -> None:
    ledger = FakeLedger(balance_cap=150)
    limits = CreditLimits(deposit_cap=100, balance_cap=150)
    producer = Producer(ledger, FakeJobQueues(), CONFIG, RecordingMetrics(), policy=RefundPolicy(), limits=limits)
    with pytest.raises(InvalidAmount, match="credits: 101 is above the deposit cap of 100"):
        producer.deposit("u-1", 101, "p-1", NOW)
    with pytest.raises(ValidationError, match="user_id"):
        producer.deposit("u\x1b", 100, "p-1", NOW)
    with pytest.raises(ValidationError, match="reference"):
        producer.deposit("u-1", 100, "p 1", NOW)
    assert ledger.accounts == {} and ledger.deposits == {}
    assert producer.deposit("u-1", 100, "p-1", NOW).balance == 100
    with pytest.raises(BalanceCapExceeded, match=r"\(100\) above the balance cap of 150"):
        producer.deposit("u-1", 51, "p-2", NOW)
    assert producer.deposit("u-1", 50, "p-2", NOW).balance == 150


# What operators and callers read: metrics, messages, and the failures between the steps -----------


def counts(world: World) -> dict[str, float]:
    return {name: value for (name, _), value in world.metrics.counts.items() if value}


def test_given_a_submit_then_it_is_counted_and_a_rejected_one_counts_its_error_and_release(world: World) -> None:
    world.submit()
    assert counts(world) == {"JobsSubmitted": 1}
    world.queues.fail = Forbidden("SendMessage", "AccessDenied")
    with pytest.raises(SubmitFailed, match="its reservation was released"):
        world.submit(job_id="j-2")
    assert counts(world) == {"JobsSubmitted": 1, "SubmitErrors": 1, "ReservationsReleased": 1}


def test_given_a_release_that_fails_then_the_reservation_is_left_to_a_retry_after_the_lease(world: World) -> None:
    world.queues.fail = Forbidden("SendMessage", "AccessDenied")

    def unreachable(reservation: object, claim: str) -> bool:
        raise Unavailable("TransactWriteItems(release)", "ConnectTimeoutError")

    release, world.ledger.release = world.ledger.release, unreachable  # type: ignore[method-assign, assignment]
    with pytest.raises(SubmitFailed) as failed:
        world.submit()
    assert "released" not in str(failed.value) and "nothing was sent" in str(failed.value)
    assert counts(world) == {"SubmitErrors": 1, "ReleaseErrors": 1}
    assert world.ledger.job("j-1") is not None and world.balance() == 38
    world.ledger.release, world.queues.fail = release, None  # type: ignore[method-assign]
    with pytest.raises(SubmissionInProgress):
        world.submit(now=NOW + timedelta(seconds=LEASE - 1))
    assert not world.submit(now=NOW + timedelta(seconds=LEASE)).duplicate  # type: ignore[attr-defined]
    assert len(world.queues.sent) == 1 and world.balance() == 38


def test_given_a_send_whose_marking_fails_then_the_job_is_submitted_and_the_failure_counted(world: World) -> None:
    def unreachable(*args: object) -> bool:
        raise Unavailable("UpdateItem(mark sent)", "ConnectTimeoutError")

    world.ledger.mark_sent = unreachable  # type: ignore[method-assign, assignment]
    submission = world.submit()
    assert submission.as_dict() == {"job_id": "j-1", "queue": "s-video-pro", "reserved": 12, "duplicate": False}  # type: ignore[attr-defined]
    assert counts(world) == {"JobsSubmitted": 1, "SubmitMarkErrors": 1} and len(world.queues.sent) == 1


def test_given_a_payload_and_no_job_id_then_the_envelope_carries_it_under_a_new_id(world: World) -> None:
    first = world.producer.submit(
        user_id="u-1", plan="pro", kind="video.transcode", credits=1, now=NOW, payload={"a": 1}
    )
    second = world.producer.submit(user_id="u-1", plan="pro", kind="video.transcode", credits=1, now=NOW)
    bodies = [JobEnvelope.from_body(body) for _, body in world.queues.sent]
    assert [(b.job_id, b.payload) for b in bodies] == [(first.job_id, {"a": 1}), (second.job_id, {})]
    assert first.job_id.startswith("j-") and first.job_id != second.job_id


def test_given_a_job_released_while_a_retry_finds_its_reservation_then_the_retry_is_told_to_retry(
    world: World,
) -> None:
    world.submit()
    world.ledger.job = lambda job_id: None  # type: ignore[method-assign, assignment]  # released meanwhile
    with pytest.raises(SubmissionInProgress, match="being submitted or released"):
        world.submit(now=NOW + timedelta(seconds=1))


@pytest.mark.parametrize(
    ("differs", "submit"),
    [
        ("pool, kind", {"kind": "audio.mix"}),
        ("user", {"user_id": "u-2"}),
        ("plan", {"plan": "starter"}),
        ("kind", {"kind": "video.cut"}),
        ("credits", {"credits": 13}),
        ("user, credits", {"user_id": "u-2", "credits": 13}),
    ],
)
def test_given_a_job_id_reused_then_the_conflict_names_the_fields_that_differ(
    differs: str, submit: dict[str, object]
) -> None:
    pools = [
        {"name": "video", "kinds": ["video.*"], "max_size": 2, "queues": [
            {"name": "s-video-pro", "target_per_instance": 1}, {"name": "s-video-starter", "target_per_instance": 1},
        ]},
        {"name": "audio", "kinds": ["audio.*"], "max_size": 2, "queues": [
            {"name": "s-audio-pro", "target_per_instance": 1},
        ]},
    ]  # fmt: skip
    ledger, queues = FakeLedger(), FakeJobQueues()
    producer = Producer(
        ledger, queues, ScalerConfig.model_validate({"pools": pools}), RecordingMetrics(), policy=RefundPolicy(cap=100)
    )
    producer.deposit("u-1", 100, "p-1", NOW)
    producer.deposit("u-2", 100, "p-2", NOW)
    fields: dict[str, object] = {"user_id": "u-1", "plan": "pro", "kind": "video.transcode", "credits": 12}
    producer.submit(**fields, job_id="j-1", now=NOW)  # type: ignore[arg-type]
    with pytest.raises(JobIdConflict, match=rf"^job id j-1 was already submitted with another {differs}$"):
        producer.submit(**(fields | submit), job_id="j-1", now=NOW)  # type: ignore[arg-type]
    assert len(queues.sent) == 1


def test_given_a_deposit_whose_account_cannot_be_read_back_then_an_aws_error_names_the_read() -> None:
    ledger = FakeLedger()
    ledger.account = lambda user_id: None  # type: ignore[method-assign, assignment]
    with pytest.raises(AwsCallError) as raised:
        deposit_credits(ledger, CreditLimits(), user_id="u-1", credits=10, reference="p-1", now=NOW)
    assert (raised.value.operation, raised.value.code) == ("GetItem(account)", "Missing")
    assert ledger.deposits == {"p-1": "u-1"}


def test_given_a_send_whose_answer_is_lost_then_the_error_names_the_job_and_each_send_is_counted(
    world: World,
) -> None:
    world.queues.lose_answer = OutcomeUnknown("SendMessage", "ReadTimeoutError")
    with pytest.raises(SendUnknown) as raised:
        world.submit()
    assert raised.value.job_id == "j-1" and "SendMessage: ReadTimeoutError" in str(raised.value)
    world.queues.lose_answer, world.queues.fail = None, Forbidden("SendMessage", "AccessDenied")
    with pytest.raises(SendUnknown):
        world.submit(now=NOW + timedelta(seconds=1))
    assert counts(world) == {"SubmitSendUnknown": 2, "SubmitErrors": 1}


def test_given_a_lost_answer_that_cannot_be_recorded_then_the_reservation_is_kept_and_counted(world: World) -> None:
    def unreachable(*args: object) -> bool:
        raise Unavailable("UpdateItem(mark send unknown)", "ConnectTimeoutError")

    world.ledger.mark_send_unknown = unreachable  # type: ignore[method-assign, assignment]
    world.queues.lose_answer = OutcomeUnknown("SendMessage", "ReadTimeoutError")
    with pytest.raises(SendUnknown):
        world.submit()
    assert counts(world) == {"SubmitSendUnknown": 1, "SubmitMarkErrors": 1}
    assert world.ledger.job("j-1").send_state == SendState.UNSENT and world.balance() == 38  # type: ignore[union-attr]


def test_given_a_send_in_progress_then_a_retry_is_told_so_whether_it_waits_or_loses_the_takeover(
    world: World,
) -> None:
    world.queues.fail = Forbidden("SendMessage", "AccessDenied")
    world.ledger.release = lambda reservation, claim: False  # type: ignore[method-assign, assignment]
    with pytest.raises(SubmitFailed):
        world.submit()
    world.queues.fail = None
    in_progress = "job j-1 is being sent by another submit; retry later"
    with pytest.raises(SubmissionInProgress, match=in_progress):
        world.submit(now=NOW + timedelta(seconds=1))
    world.ledger.take_over_send = lambda *args: False  # type: ignore[method-assign, assignment]  # another won
    with pytest.raises(SubmissionInProgress, match=in_progress):
        world.submit(now=NOW + timedelta(seconds=LEASE))
    assert world.queues.sent == []
