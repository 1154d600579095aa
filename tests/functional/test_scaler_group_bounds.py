"""The scaler within the group's own bounds, and past a history item it cannot read (moto).

AWS refuses a SetDesiredCapacity above the group's MaxSize or below its MinSize, so a pool configured
beyond its group's bounds must be clamped to them, not fail every change. A history item with an
entry missing a field (written by hand, or by another version) must not freeze its pool.
"""

from __future__ import annotations

import boto3
import pytest

from queue_scaler.scaling.adapters.autoscaling import AutoScalingFleet
from queue_scaler.scaling.adapters.history import DynamoHistoryStore
from queue_scaler.scaling.adapters.sqs import SqsQueueMetrics
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.services.scaling import ScaleService
from tests.fakes import RecordingMetrics
from tests.functional.moto_stack import create_group, create_history_table, create_queue, desired_of, pool_config

HISTORY = "scaler-history"


def group_bounds(name: str, min_size: int, max_size: int) -> None:
    boto3.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=name, MinSize=min_size, MaxSize=max_size)


def test_given_a_group_min_size_above_the_pools_when_idle_then_desired_stays_at_the_groups_min(aws: None) -> None:
    create_group("video", desired=3)
    group_bounds("video", min_size=2, max_size=20)
    url = create_queue("video-pro", messages=0)
    pool = PoolConfig.model_validate(
        pool_config("video", [("video-pro", url, 8)], behavior={"scale_down": {"stabilization_window_seconds": 0}})
    )
    service = ScaleService(
        SqsQueueMetrics(), AutoScalingFleet(), DynamoHistoryStore(create_history_table()), RecordingMetrics()
    )

    [outcome] = service.tick([pool], now=100.0)

    assert outcome.error is None and outcome.decision is not None
    assert (outcome.decision.desired, outcome.decision.limited_by) == (2, "MinSize")
    assert "clamped to the group's MinSize 2 (the pool's min_size is 0)" in outcome.decision.explanation
    assert desired_of("video") == 2


def put_history(item: dict[str, object]) -> None:
    boto3.client("dynamodb").put_item(TableName=HISTORY, Item=item)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "entries"),
    [
        ("a recommendation without desired", {"recommendations": {"L": [{"M": {"at": {"N": "50"}}}]}}),
        (
            "a scale event with a text change",
            {"scale_events": {"L": [{"M": {"at": {"N": "50"}, "change": {"S": "x"}}}]}},
        ),
        (
            "a sample with negative work",
            {"samples": {"L": [{"M": {"at": {"N": "50"}, "work": {"N": "-1"}, "in_flight": {"N": "0"}}}]}},
        ),
        ("an entry that is not a map", {"recommendations": {"L": [{"S": "garbage"}]}}),
    ],
)
def test_given_a_malformed_history_entry_when_ticking_then_the_pool_scales_counts_it_and_the_next_write_drops_it(
    aws: None, name: str, entries: dict[str, object]
) -> None:
    create_group("video", desired=0)
    url = create_queue("video-pro", messages=16)
    create_history_table(HISTORY)
    good = {"M": {"at": {"N": "40"}, "desired": {"N": "1"}, "held": {"N": "0"}}}
    item: dict[str, object] = {"pool": {"S": "video"}, "version": {"N": "3"}, "recommendations": {"L": [good]}}
    for key, value in entries.items():
        existing = item.get(key, {"L": []})
        item[key] = {"L": [*existing["L"], *value["L"]]}  # type: ignore[index]
    put_history(item)
    pool = PoolConfig.model_validate(pool_config("video", [("video-pro", url, 8)]))
    metrics = RecordingMetrics()
    store = DynamoHistoryStore(HISTORY)
    service = ScaleService(SqsQueueMetrics(), AutoScalingFleet(), store, metrics)

    [outcome] = service.tick([pool], now=100.0)
    service.flush()

    assert outcome.error is None, name
    assert desired_of("video") == 2
    assert metrics.counts[("HistoryItemsSkipped", "video")] == 1
    reloaded = store.load("video")
    assert reloaded.skipped == 0
    assert (40.0, 1) in [(r.at, r.desired) for r in reloaded.history.recommendations]
