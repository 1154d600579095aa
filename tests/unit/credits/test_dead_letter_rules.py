"""Dead letters of known jobs, job outcomes, parked records and routing: the pure rules, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queue_scaler.credits.domain.ledger import Attempt, AttemptOutcome, JobOutcome, JobRecord, JobStatus, Lease
from queue_scaler.credits.domain.refund import (
    MAX_PARKED_BODY_BYTES,
    MAX_PARKED_REASON_CHARS,
    DeadLetterPolicy,
    DeadLetterStep,
    dead_letter_step,
    parked_record,
)
from queue_scaler.credits.domain.routing import Unroutable, route
from queue_scaler.scaling.config import ScalerConfig

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
POLICY = DeadLetterPolicy(required_failures=2, max_returns=2)

F, R, S, C = AttemptOutcome.FAILED, AttemptOutcome.RELEASED, AttemptOutcome.STARTED, AttemptOutcome.COMPLETED


def record(*outcomes: AttemptOutcome, status: JobStatus | None = JobStatus.RESERVED, **fields: object) -> JobRecord:
    attempts = [Attempt(attempt_id=f"a{i}", at=NOW + timedelta(seconds=i), outcome=o) for i, o in enumerate(outcomes)]
    return JobRecord.model_validate({"job_id": "j-1", "status": status, "attempts": attempts, **fields})


NEED = "real failures of 2 needed"


@pytest.mark.parametrize(
    ("name", "job", "step", "exhausted", "reason"),
    [
        (
            "given no ledger record when dead-lettered then settled as before",
            None,
            DeadLetterStep.SETTLE,
            False,
            "the ledger knows nothing of the job",
        ),
        (
            "given a completed job then its dead letter is deleted",
            record(R, C, status=JobStatus.COMPLETED),
            DeadLetterStep.COMPLETED,
            False,
            "the job completed; nothing to refund",
        ),
        (
            "given two failures then refunded",
            record(F, F),
            DeadLetterStep.SETTLE,
            False,
            f"failed for good: 2 {NEED}, 0 releases",
        ),
        (
            "given two releases then sent back",
            record(R, R),
            DeadLetterStep.RETURN,
            False,
            f"send back (1 of 2): 0 {NEED}, 2 releases",
        ),
        (
            "given one failure and one release then sent back",
            record(F, R),
            DeadLetterStep.RETURN,
            False,
            f"send back (1 of 2): 1 {NEED}, 1 releases",
        ),
        (
            "given releases after one return then sent back the second time",
            record(R, R, returns=1),
            DeadLetterStep.RETURN,
            False,
            f"send back (2 of 2): 0 {NEED}, 2 releases",
        ),
        (
            "given a worker that died holding it then it counts as a failure",
            record(S, F),
            DeadLetterStep.SETTLE,
            False,
            f"failed for good: 2 {NEED}, 0 releases",
        ),
        (
            "given no attempt recorded then settled",
            record(),
            DeadLetterStep.SETTLE,
            False,
            f"no release recorded: 0 {NEED}, 0 releases",
        ),
        (
            "given releases and the returns used up then settled, exhausted",
            record(R, R, returns=2),
            DeadLetterStep.SETTLE,
            True,
            f"sent back 2 times (the limit) without completing: 0 {NEED}, 2 releases",
        ),
        (
            "given failures across returns reaching the need then refunded",
            record(R, F, R, F, returns=1),
            DeadLetterStep.SETTLE,
            False,
            f"failed for good: 2 {NEED}, 2 releases",
        ),
        (
            "given a copy running under a live lease then neither returned nor refunded",
            record(F, F, S, lease=Lease(owner="w/a2", attempt_id="a2", expires_at=NOW.timestamp() + 1)),
            DeadLetterStep.RUNNING,
            False,
            "the job is running under a live lease",
        ),
        (
            "given releases and a live lease then not sent back either",
            record(R, R, lease=Lease(owner="w/a2", attempt_id="a2", expires_at=NOW.timestamp() + 1)),
            DeadLetterStep.RUNNING,
            False,
            "the job is running under a live lease",
        ),
        (
            "given a lease that expired (its worker died) then settled as a failure",
            record(F, S, lease=Lease(owner="w/a1", attempt_id="a1", expires_at=NOW.timestamp())),
            DeadLetterStep.SETTLE,
            False,
            f"failed for good: 2 {NEED}, 0 releases",
        ),
        (
            "given a job already failed then settled (a duplicate)",
            record(F, F, status=JobStatus.FAILED),
            DeadLetterStep.SETTLE,
            False,
            "the job is already settled as failed",
        ),
    ],
)
def test_dead_letter_step(name: str, job: JobRecord | None, step: DeadLetterStep, exhausted: bool, reason: str) -> None:
    decision = dead_letter_step(job, POLICY, NOW.timestamp())
    assert (decision.step, decision.exhausted, decision.reason) == (step, exhausted, reason), name


@pytest.mark.parametrize(
    ("name", "job", "outcome"),
    [
        ("given a reservation only then pending", record(), JobOutcome.PENDING),
        ("given a started attempt last then running", record(R, S), JobOutcome.RUNNING),
        ("given a release last then pending", record(S, R), JobOutcome.PENDING),
        ("given completion then completed", record(C, status=JobStatus.COMPLETED), JobOutcome.COMPLETED),
        ("given a refunded failure then refunded", record(F, status=JobStatus.FAILED, refunded=3), JobOutcome.REFUNDED),
        ("given an unrefunded failure then recorded", record(F, status=JobStatus.FAILED), JobOutcome.RECORDED),
        ("given a parked dead letter then parked", record(F, parked=True), JobOutcome.PARKED),
    ],
)
def test_job_outcome(name: str, job: JobRecord, outcome: JobOutcome) -> None:
    assert job.outcome == outcome, name


def test_given_a_600_kb_body_when_parked_then_it_is_truncated_with_its_length_and_hash() -> None:
    body = "é" * 300_000  # 600,000 bytes of UTF-8, two per character
    parked = parked_record(message_id="m", body=body, reason="x" * 20_000, source_queue=None, job_id=None, now=NOW)
    assert parked.truncated and parked.body_bytes == 600_000 and len(parked.body_sha256) == 64
    assert len(parked.body.encode()) <= MAX_PARKED_BODY_BYTES and parked.body == "é" * (MAX_PARKED_BODY_BYTES // 2)
    assert len(parked.reason) < 9_000 and parked.reason.endswith("(20000 characters)")


def test_given_a_small_body_when_parked_then_it_is_kept_whole() -> None:
    parked = parked_record(message_id="m", body="{}", reason="bad", source_queue="q", job_id="j", now=NOW)
    assert (parked.body, parked.truncated, parked.body_bytes) == ("{}", False, 2)
    assert (parked.message_id, parked.reason, parked.source_queue, parked.job_id, parked.parked_at) == (
        "m",
        "bad",
        "q",
        "j",
        NOW,
    )


def test_given_a_body_of_exactly_the_limit_when_parked_then_it_is_kept_whole() -> None:
    body = "x" * MAX_PARKED_BODY_BYTES
    parked = parked_record(message_id="m", body=body, reason="r", source_queue=None, job_id=None, now=NOW)
    assert (parked.body == body, parked.truncated) == (True, False)


def test_given_a_cut_inside_a_character_when_parked_then_the_body_ends_at_the_character_before() -> None:
    body = "a" + "é" * 200_000  # the byte limit falls in the middle of an "é"
    parked = parked_record(message_id="m", body=body, reason="r", source_queue=None, job_id=None, now=NOW)
    assert parked.body == "a" + "é" * ((MAX_PARKED_BODY_BYTES - 1) // 2) and parked.truncated


def test_given_a_lone_surrogate_when_parked_then_it_is_parked_with_its_bytes_hashed() -> None:
    # Not valid Unicode text, yet it can reach us from a decoded JSON escape: parking must never fail.
    parked = parked_record(message_id="m", body='{"x": "\ud800"}', reason="r", source_queue=None, job_id=None, now=NOW)
    assert parked.body_bytes == 12 and not parked.truncated


@pytest.mark.parametrize(
    ("name", "length", "kept"),
    [
        ("given a reason at the limit then it is kept whole", MAX_PARKED_REASON_CHARS, MAX_PARKED_REASON_CHARS),
        ("given one character more then it is cut and counted", MAX_PARKED_REASON_CHARS + 1, None),
    ],
)
def test_parked_reason_limit(name: str, length: int, kept: int | None) -> None:
    parked = parked_record(message_id="m", body="{}", reason="x" * length, source_queue=None, job_id=None, now=NOW)
    if kept is not None:
        assert parked.reason == "x" * kept, name
    else:
        assert parked.reason == "x" * MAX_PARKED_REASON_CHARS + f"... ({length} characters)", name


CONFIG = ScalerConfig.model_validate(
    {
        "pools": [
            {"name": "messaging", "max_size": 2, "queues": [{"name": "s-messaging-jobs", "target_per_instance": 1}]},
            {
                "name": "video",
                "max_size": 2,
                "queues": [
                    {"name": "s-video-enterprise", "target_per_instance": 1},
                    {"name": "s-video-free", "target_per_instance": 1},
                ],
            },
            {
                "name": "gpu",
                "kinds": ["ai.*", "render.3d"],
                "max_size": 2,
                "queues": [
                    {"name": "gold", "plan": "enterprise", "target_per_instance": 1},
                    {"name": "rest", "plan": "pro", "target_per_instance": 1},
                ],
            },
        ]
    }
)


@pytest.mark.parametrize(
    ("name", "kind", "plan", "queue"),
    [
        ("given a kind named after a pool then the plan's suffixed queue", "video.transcode", "free", "s-video-free"),
        ("given a pool with one queue then it serves every plan", "messaging.email", "studio", "s-messaging-jobs"),
        ("given a kind a pool lists by pattern then its plan's queue", "ai.caption", "enterprise", "gold"),
        ("given an exact kind a pool lists then that pool", "render.3d", "pro", "rest"),
        ("given a kind of three parts then its first names the pool", "video.hd.transcode", "free", "s-video-free"),
    ],
)
def test_routing(name: str, kind: str, plan: str, queue: str) -> None:
    assert route(CONFIG, kind, plan).queue == queue, name


@pytest.mark.parametrize(
    ("name", "kind", "plan", "named"),
    [
        ("given a kind no pool serves then it is named", "audio.mix", "pro", "kind 'audio.mix'"),
        ("given a plan the pool has no queue for then it is named", "video.transcode", "pro", "plan 'pro'"),
        ("given a listed kind's pool without the plan then the plan is named", "ai.caption", "free", "plan 'free'"),
    ],
)
def test_unroutable(name: str, kind: str, plan: str, named: str) -> None:
    with pytest.raises(Unroutable, match=named):
        route(CONFIG, kind, plan)


def test_given_a_kind_no_pool_serves_then_the_error_lists_every_kind_served() -> None:
    with pytest.raises(Unroutable) as raised:
        route(CONFIG, "audio.mix", "pro")
    assert str(raised.value) == (
        "kind 'audio.mix': no pool serves it (kinds served: ai.*, gpu.*, messaging.*, render.3d, video.*)"
    )
