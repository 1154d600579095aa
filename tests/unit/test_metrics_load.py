"""Backlog per instance and the at-zero signal, one named case each."""

from __future__ import annotations

from typing import Any

import pytest

from queue_scaler.config import PoolConfig
from queue_scaler.domain.load import pool_load
from queue_scaler.domain.models import Observation


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
    ("name", "config", "observation", "per_instance", "at_zero", "queue_a"),
    [
        (
            "given 4 instances then backlog is divided by 4",
            pool(),
            observe(4, 4, {"name": "a", "visible": 10, "in_flight": 2}, {"name": "b", "visible": 8}),
            5.0,
            0,
            3.0,
        ),
        (
            "given desired 0 then the figure is the backlog and the at-zero signal fires",
            pool(),
            observe(0, 0, {"name": "a", "visible": 3}, {"name": "b", "visible": 4}),
            7.0,
            7,
            3.0,
        ),
        (
            "given instances still booting then in-service 0 divides by 1 but at-zero stays quiet",
            pool(),
            observe(2, 0, {"name": "a", "visible": 3}, {"name": "b", "visible": 4}),
            7.0,
            0,
            3.0,
        ),
        (
            "given in flight not counted then only visible messages count",
            pool(count_in_flight=False),
            observe(1, 1, {"name": "a", "visible": 3, "in_flight": 9}, {"name": "b", "visible": 0}),
            3.0,
            0,
            3.0,
        ),
        (
            "given delayed counted then delayed messages count",
            pool(count_delayed=True),
            observe(2, 2, {"name": "a", "visible": 1, "delayed": 3}, {"name": "b", "visible": 0}),
            2.0,
            0,
            2.0,
        ),
    ],
)
def test_pool_load(
    *, name: str, config: PoolConfig, observation: Observation, per_instance: float, at_zero: int, queue_a: float
) -> None:
    load = pool_load(config, observation, {"a": 42.0})
    assert load.totals is not None
    assert (load.totals.backlog_per_instance, load.totals.backlog_while_at_zero) == (per_instance, at_zero)
    assert load.queues[0].backlog_per_instance == queue_a
    assert load.queues[0].oldest_message_seconds == 42.0 and load.queues[1].oldest_message_seconds is None


def test_given_an_unreadable_queue_then_pool_totals_are_withheld_not_zeroed() -> None:
    load = pool_load(pool(), observe(3, 3, {"name": "a", "visible": 6}, {"name": "b", "error": "Throttling"}), {})
    assert load.totals is None and load.unavailable == ["b"]
    assert [(q.queue, q.backlog_per_instance) for q in load.queues] == [("a", 2.0)]
