"""ScalerFunction's handler end to end under moto: SSM config, SQS, Auto Scaling, DynamoDB history."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from queue_scaler.scaling.adapters.autoscaling import AutoScalingFleet
from queue_scaler.scaling.adapters.history import DynamoHistoryStore
from queue_scaler.scaling.adapters.sqs import SqsQueueMetrics
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.ports import VersionedHistory
from queue_scaler.scaling.services.scaling import ScaleService
from queue_scaler.shared.adapters import clients
from tests.fakes import RecordingMetrics
from tests.functional.clocked_scaler import PARAMETER, load_scaler
from tests.functional.handlers import FakeContext, event
from tests.functional.moto_stack import (
    create_group,
    create_history_table,
    create_queue,
    desired_of,
    pool_config,
    put_config,
)


@pytest.fixture
def scaler(aws: None, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # Compressed time: a few quick ticks inside one invocation.
    return load_scaler(monkeypatch, create_history_table(), tick_seconds="0.05", run_seconds="0.1")


@pytest.mark.parametrize(
    "sample",
    [
        "scheduled.json",
        "alarm-backlog-at-zero.json",
        "sam-generated-scheduled.json",
        "scheduler.json",  # EventBridge Scheduler: source aws.scheduler, detail the string "{}"
        "lambda-alarm-action.json",  # the alarm's direct Lambda action: alarmData, no detail-type
    ],
)
def test_given_a_burst_on_a_pool_at_zero_when_invoked_once_then_desired_is_the_full_need(
    scaler: ModuleType, sample: str
) -> None:
    create_group("video", desired=0)
    url = create_queue("video-pro", messages=95)
    put_config(PARAMETER, [pool_config("video", [("video-pro", url, 8)])])
    result = scaler.lambda_handler(event("scaler", sample), FakeContext())
    assert result["ticks"] >= 2  # several ticks ran inside the one invocation
    assert desired_of("video") == 12  # ceil(95 / 8), in one invocation, no ramp
    [outcome] = result["pools"]
    # The first tick scaled the pool; the later ones found nothing left to change. The invocation's
    # result says what the invocation did.
    assert outcome["applied"] is True
    assert outcome["decision"]["desired"] == 12


@pytest.mark.parametrize(
    "payload",
    [{}, {"source": "aws.events", "detail-type": "Not A Schedule"}, {"hello": "world"}],
    ids=["empty-scheduler-input", "unknown-detail-type", "hand-made"],
)
def test_given_an_unrecognised_trigger_when_invoked_then_it_is_logged_as_such_and_still_ticks(
    scaler: ModuleType, payload: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    create_group("video", desired=0)
    url = create_queue("video-pro", messages=16)
    put_config(PARAMETER, [pool_config("video", [("video-pro", url, 8)])])
    result = scaler.lambda_handler(payload, FakeContext())
    assert result["ticks"] >= 1 and desired_of("video") == 2
    [warning] = [r for r in caplog.records if r.getMessage() == "unrecognised trigger"]
    assert warning.levelname == "WARNING"
    assert "ticking anyway" in warning.__dict__["trigger"]


def test_given_two_pools_one_broken_when_invoked_then_the_other_is_still_scaled(scaler: ModuleType) -> None:
    create_group("ai", desired=0)
    ai = create_queue("ai-pro", messages=30)
    video = create_queue("video-pro", messages=30)  # its group "video" does not exist
    put_config(PARAMETER, [pool_config("video", [("video-pro", video, 10)]), pool_config("ai", [("ai-pro", ai, 10)])])
    result = scaler.lambda_handler(event("scaler", "scheduled.json"), FakeContext())
    broken, scaled = result["pools"]
    assert "not found" in broken["error"]
    assert scaled["decision"]["desired"] == 3 and desired_of("ai") == 3


def test_given_an_invalid_config_when_invoked_then_it_fails_naming_the_field(scaler: ModuleType) -> None:
    put_config(PARAMETER, [{"name": "video", "max_size": 5, "queues": [{"name": "q", "target_per_instance": -1}]}])
    with pytest.raises(Exception, match=r"pools\.0\.queues\.0\.target_per_instance"):
        scaler.lambda_handler(event("scaler", "scheduled.json"), FakeContext())


class _Throttled:
    status_code = 400


def throttle(queue_url: str):  # type: ignore[no-untyped-def]
    """A botocore hook answering ThrottlingException for one queue, as SQS does under load."""

    def before_call(params, **_):  # type: ignore[no-untyped-def]
        body = params["body"]  # JSON bytes (SQS's JSON protocol) or a dict (query protocol)
        sent = json.loads(body) if isinstance(body, bytes) else body
        if sent.get("QueueUrl") == queue_url:
            return _Throttled(), {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        return None

    return before_call


def test_given_a_throttled_queue_when_the_handler_runs_then_capacity_is_never_lowered(scaler: ModuleType) -> None:
    create_group("video", desired=6)
    quiet = create_queue("video-pro", messages=0)
    hot = create_queue("video-free", messages=0)
    put_config(
        PARAMETER,
        [
            pool_config(
                "video",
                [("video-pro", quiet, 8), ("video-free", hot, 15)],
                behavior={"scale_down": {"stabilization_window_seconds": 0}},
            )
        ],
    )
    clients.sqs().meta.events.register("before-call.sqs.GetQueueAttributes", throttle(hot))
    result = scaler.lambda_handler(event("scaler", "scheduled.json"), FakeContext())
    [outcome] = result["pools"]
    assert outcome["decision"]["limited_by"] == "MetricsUnavailable"
    assert outcome["decision"]["unavailable_queues"] == ["video-free"]
    assert desired_of("video") == 6


def test_given_a_throttled_queue_when_need_falls_then_capacity_is_never_lowered(aws: None) -> None:
    from tests.functional.test_adapters import ThrottlingSqs

    create_group("video", desired=6)
    quiet = create_queue("video-pro", messages=0)
    hot = create_queue("video-free", messages=0)
    pool = PoolConfig.model_validate(
        pool_config(
            "video",
            [("video-pro", quiet, 8), ("video-free", hot, 15)],
            behavior={"scale_down": {"stabilization_window_seconds": 0}},
        )
    )
    store = DynamoHistoryStore(create_history_table())
    service = ScaleService(SqsQueueMetrics(ThrottlingSqs(hot)), AutoScalingFleet(), store, RecordingMetrics())  # type: ignore[arg-type]
    for now in (0.0, 10.0, 20.0):
        [outcome] = service.tick([pool], now)
        assert outcome.decision is not None and outcome.decision.limited_by == "MetricsUnavailable"
    assert desired_of("video") == 6


class RacingHistory:
    """Lets another tick run to completion between this tick's load and save (an overlapping invocation)."""

    def __init__(self, inner: DynamoHistoryStore, rival: ScaleService, pool: PoolConfig) -> None:
        self.inner, self.rival, self.pool = inner, rival, pool

    def load(self, pool: str) -> VersionedHistory:
        stale = self.inner.load(pool)
        self.rival.tick([self.pool], now=100.0)
        return stale

    def save(self, pool: str, history, expected_version: int) -> int:  # type: ignore[no-untyped-def]
        return self.inner.save(pool, history, expected_version)


class CountingFleet(AutoScalingFleet):
    def __init__(self) -> None:
        super().__init__()
        self.sets: list[tuple[str, int]] = []

    def set_desired(self, group: str, desired: int) -> None:
        self.sets.append((group, desired))
        super().set_desired(group, desired)


def test_given_two_overlapping_ticks_when_both_decide_then_only_one_applies_and_records(aws: None) -> None:
    create_group("video", desired=0)
    url = create_queue("video-pro", messages=40)
    pool = PoolConfig.model_validate(pool_config("video", [("video-pro", url, 10)]))
    store = DynamoHistoryStore(create_history_table())
    rival_fleet, late_fleet = CountingFleet(), CountingFleet()
    metrics = RecordingMetrics()
    rival = ScaleService(SqsQueueMetrics(), rival_fleet, store, RecordingMetrics())
    late = ScaleService(SqsQueueMetrics(), late_fleet, RacingHistory(store, rival, pool), metrics)  # type: ignore[arg-type]

    [outcome] = late.tick([pool], now=100.5)

    assert rival_fleet.sets == [("video", 4)] and late_fleet.sets == []
    assert outcome.error is not None and "changed under this tick" in outcome.error
    assert metrics.counts[("ConcurrentTicks", None)] == 1
    stored = store.load("video")
    assert [(e.at, e.change) for e in stored.history.scale_events] == [(100.0, 4)]
    assert desired_of("video") == 4


def test_given_a_pool_above_its_groups_max_size_when_a_burst_lands_then_it_scales_to_the_groups_max(
    scaler: ModuleType,
) -> None:
    create_group("video", desired=1, max_size=4)
    url = create_queue("video-pro", messages=80)
    put_config(PARAMETER, [pool_config("video", [("video-pro", url, 8)], max_size=20)])

    result = scaler.lambda_handler(event("scaler", "scheduled.json"), FakeContext())

    [outcome] = result["pools"]
    assert "error" not in outcome
    assert outcome["applied"] is True
    decision = outcome["decision"]
    assert (decision["recommendation"], decision["desired"], decision["limited_by"]) == (10, 4, "MaxSize")
    assert "clamped to the group's MaxSize 4 (the pool's max_size is 20)" in decision["explanation"]
    assert desired_of("video") == 4
