"""The figures each tick publishes per pool: what dashboards and the scaling alarms read."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from queue_scaler.config import PoolConfig
from queue_scaler.services.scaling import ScaleService
from tests.fakes import FakeFleet, FakeHistory, FakeQueues, RecordingMetrics


def pool() -> PoolConfig:
    return PoolConfig.model_validate(
        {"name": "video", "max_size": 20, "queues": [{"name": "video-jobs", "target_per_instance": 10}]}
    )


@dataclass
class Case:
    name: str
    visible: int
    desired: int
    published: dict[str, float]


CASES = [
    Case(
        "given a change applied when ticking then one scale action and the raw need are published",
        45,
        2,
        {"DesiredCapacity": 5, "Need": 4.5, "Backlog": 45, "InService": 2, "ScaleActions": 1},
    ),
    Case(
        "given the fleet already at need when ticking then no scale action is published",
        33,
        4,
        {"DesiredCapacity": 4, "Need": 3.3, "Backlog": 33, "InService": 4, "ScaleActions": 0},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pool_metrics(case: Case) -> None:
    queues, fleet, metrics = FakeQueues(), FakeFleet(), RecordingMetrics()
    queues.depth["video-jobs"] = case.visible
    fleet.desired["video"] = case.desired
    ScaleService(queues, fleet, FakeHistory(), metrics).tick([pool()], now=100.0)
    assert metrics.pools["video"] == [case.published]
