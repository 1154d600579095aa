"""The figures each tick publishes per pool: one scale action per applied change, nothing else. A
decision is a log line (the dashboard's table); a per-tick figure per pool would be billed as a custom
metric every hour (docs/cost.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.services.scaling import ScaleService
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
    published: list[dict[str, float]]


CASES = [
    Case(
        "given a change applied when ticking then one scale action is published",
        45,
        2,
        [{"ScaleActions": 1}],
    ),
    Case(
        "given the fleet already at need when ticking then nothing is published",
        33,
        4,
        [],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pool_metrics(case: Case) -> None:
    queues, fleet, metrics = FakeQueues(), FakeFleet(), RecordingMetrics()
    queues.depth["video-jobs"] = case.visible
    fleet.desired["video"] = case.desired
    ScaleService(queues, fleet, FakeHistory(), metrics).tick([pool()], now=100.0)
    assert metrics.pools["video"] == case.published


@pytest.mark.parametrize(
    ("name", "visible", "desired", "fields"),
    [
        (
            "given a change applied then its decision record says applied",
            45,
            2,
            {"pool": "video", "current": 2, "desired": 5, "recommendation": 5, "limited_by": "None", "applied": True},
        ),
        (
            "given the fleet already at need then its decision record says not applied",
            33,
            4,
            {"pool": "video", "current": 4, "desired": 4, "recommendation": 4, "limited_by": "None", "applied": False},
        ),
    ],
)
def test_each_decision_is_logged_with_its_fields(
    name: str, visible: int, desired: int, fields: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    queues, fleet = FakeQueues(), FakeFleet()
    queues.depth["video-jobs"] = visible
    fleet.desired["video"] = desired
    with caplog.at_level(logging.INFO, logger="queue_scaler.scaling.services.scaling"):
        [outcome] = ScaleService(queues, fleet, FakeHistory(), RecordingMetrics()).tick([pool()], now=100.0)
    [record] = [r for r in caplog.records if r.getMessage() == "decision"]
    # A JSON log line per decision: what a Logs Insights query filters on (`applied` true or false, never null).
    assert {key: getattr(record, key) for key in fields} == fields
    assert outcome.decision is not None and record.explanation == outcome.decision.explanation
