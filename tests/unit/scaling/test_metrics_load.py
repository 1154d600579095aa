"""Backlog per instance and the at-zero and at-max signals, one named case each; what the metrics service
publishes and returns for them."""

from __future__ import annotations

from typing import Any

import pytest

from queue_scaler.scaling.domain.load import pool_load
from queue_scaler.scaling.domain.models import Observation
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.services.queue_metrics import QueueMetricsService
from tests.fakes import FakeFleet, FakeQueues, RecordingMetrics


def pool(**more: Any) -> PoolConfig:
    return PoolConfig.model_validate(
        {
            "name": "video",
            "max_size": 10,
            "queues": [{"name": "a", "target_per_instance": 5}, {"name": "b", "target_per_instance": 10}],
        }
        | more
    )


def observe(desired: int, in_service: int, *queues: dict[str, Any]) -> Observation:
    return Observation.model_validate({"queues": list(queues), "fleet": {"desired": desired, "in_service": in_service}})


@pytest.mark.parametrize(
    ("name", "config", "observation", "per_instance", "at_zero", "at_max", "queue_a"),
    [
        (
            "given 4 instances then backlog is divided by 4",
            pool(),
            observe(4, 4, {"name": "a", "visible": 10, "in_flight": 2}, {"name": "b", "visible": 8}),
            5.0,
            0,
            0,
            3.0,
        ),
        (
            "given desired 0 then the figure is the backlog and the at-zero signal fires",
            pool(),
            observe(0, 0, {"name": "a", "visible": 3}, {"name": "b", "visible": 4}),
            7.0,
            7,
            0,
            3.0,
        ),
        (
            "given instances still booting then in-service 0 divides by 1 but at-zero stays quiet",
            pool(),
            observe(2, 0, {"name": "a", "visible": 3}, {"name": "b", "visible": 4}),
            7.0,
            0,
            0,
            3.0,
        ),
        (
            "given desired at max_size then the at-max signal is the backlog",
            pool(),
            observe(10, 10, {"name": "a", "visible": 30}, {"name": "b", "visible": 20}),
            5.0,
            0,
            50,
            3.0,
        ),
        (
            "given desired at max_size and nothing queued then the at-max signal stays 0",
            pool(),
            observe(10, 10, {"name": "a", "visible": 0}, {"name": "b", "visible": 0}),
            0.0,
            0,
            0,
            0.0,
        ),
        (
            "given in flight not counted then only visible messages count",
            pool(count_in_flight=False),
            observe(1, 1, {"name": "a", "visible": 3, "in_flight": 9}, {"name": "b", "visible": 0}),
            3.0,
            0,
            0,
            3.0,
        ),
        (
            "given delayed counted then delayed messages count",
            pool(count_delayed=True),
            observe(2, 2, {"name": "a", "visible": 1, "delayed": 3}, {"name": "b", "visible": 0}),
            2.0,
            0,
            0,
            2.0,
        ),
    ],
)
def test_pool_load(
    *,
    name: str,
    config: PoolConfig,
    observation: Observation,
    per_instance: float,
    at_zero: int,
    at_max: int,
    queue_a: float,
) -> None:
    load = pool_load(config, observation)
    assert load.totals is not None
    totals = load.totals
    assert (totals.backlog_per_instance, totals.backlog_while_at_zero, totals.backlog_at_max) == (
        per_instance,
        at_zero,
        at_max,
    )
    assert load.queues[0].backlog_per_instance == queue_a


def test_given_an_unreadable_queue_then_pool_totals_are_withheld_not_zeroed() -> None:
    load = pool_load(pool(), observe(3, 3, {"name": "a", "visible": 6}, {"name": "b", "error": "Throttling"}))
    assert load.totals is None and load.unavailable == ["b"]
    assert [(q.queue, q.backlog_per_instance) for q in load.queues] == [("a", 2.0)]


def test_given_the_first_queue_unreadable_then_the_next_queues_are_still_measured() -> None:
    load = pool_load(pool(), observe(2, 2, {"name": "a", "error": "Throttling"}, {"name": "b", "visible": 6}))
    assert load.totals is None and load.unavailable == ["a"]
    assert [(q.queue, q.backlog, q.backlog_per_instance) for q in load.queues] == [("b", 6, 3.0)]


def measured(
    *pools: PoolConfig, desired: int = 2, tracked: frozenset[str] = frozenset(), dead: dict[str, int] | None = None
) -> tuple[list[dict[str, object]], RecordingMetrics]:
    queues, fleet, metrics = FakeQueues(), FakeFleet(), RecordingMetrics()
    queues.depth.update({"a": 6, "b": 2} | (dead or {}))
    fleet.desired["video"] = desired
    service = QueueMetricsService(queues, fleet, metrics, tracked=tracked, dead_letter_suffix="-dlq")
    outcomes = service.publish(list(pools), now=100.0)
    return [o.as_dict() for o in outcomes], metrics


VIDEO_TOTALS = {"backlog": 8, "backlog_per_instance": 4.0, "backlog_while_at_zero": 0, "backlog_at_max": 0}


def test_given_a_pool_without_a_group_first_when_publishing_then_it_is_named_and_the_next_is_published() -> None:
    outcomes, metrics = measured(pool(name="ghost"), pool())
    assert outcomes[0] == {"pool": "ghost", "error": "Auto Scaling group 'ghost' not found"}
    assert outcomes[1]["pool"] == "video"
    assert outcomes[1]["load"] == {
        "pool": "video",
        "desired": 2,
        "in_service": 2,
        "totals": VIDEO_TOTALS,
        "queues": [
            {"queue": "a", "backlog": 6, "backlog_per_instance": 3.0},
            {"queue": "b", "backlog": 2, "backlog_per_instance": 1.0},
        ],
        "unavailable": [],
    }
    # Stack-wide: the pool is named in the log line, and one metric serves any number of pools.
    assert dict(metrics.counts) == {("PoolErrors", None): 1}
    # A pool the scaler sizes needs no per-minute figure, and the alarm signals are 0: nothing is sent.
    assert dict(metrics.pools) == {}


def test_given_a_pool_under_target_tracking_then_its_backlog_per_instance_is_sent_every_minute() -> None:
    _outcomes, metrics = measured(pool(), tracked=frozenset({"video"}))
    assert dict(metrics.pools) == {"video": [{"BacklogPerInstance": 4.0}]}


@pytest.mark.parametrize(
    ("name", "dead", "counted"),
    [
        ("given empty dead-letter queues then nothing is sent", {}, {}),
        (
            "given letters in two dead-letter queues then their sum is sent once for the stack",
            {"a-dlq": 2, "b-dlq": 1},
            {("DeadLettersWaiting", None): 3},
        ),
    ],
)
def test_dead_letters_waiting(name: str, dead: dict[str, int], counted: dict[tuple[str, None], int]) -> None:
    _outcomes, metrics = measured(pool(), dead=dead)
    assert dict(metrics.counts) == counted


@pytest.mark.parametrize(
    ("name", "desired", "published"),
    [
        (
            "given desired 0 then the at-zero signal is published",
            0,
            {"BacklogWhileAtZero": 8},
        ),
        (
            "given desired at max_size then the at-max signal is published",
            10,
            {"BacklogAtMax": 8},
        ),
    ],
)
def test_alarm_signals_are_published_only_when_not_zero(name: str, desired: int, published: dict[str, float]) -> None:
    _outcomes, metrics = measured(pool(), desired=desired)
    assert dict(metrics.pools) == {"video": [published]}
