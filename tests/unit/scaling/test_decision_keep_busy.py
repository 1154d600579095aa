"""The opt-in `keep_busy_instances` rule: scale-down stops at the instances the present work occupies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from queue_scaler.scaling.domain.decision import DecisionRequest, decide
from queue_scaler.scaling.domain.models import LimitedBy

NOW = 1000.0
NO_LIMITS: dict[str, Any] = {
    "scale_up": {"stabilization_window_seconds": 0, "policies": []},
    "scale_down": {"stabilization_window_seconds": 0, "policies": []},
}


@dataclass(frozen=True)
class Case:
    name: str
    observed: list[dict[str, Any]]
    desired: int
    expected: int
    limited_by: LimitedBy
    pool: dict[str, Any] = field(default_factory=dict)


def request(case: Case) -> DecisionRequest:
    pool = {
        "name": "p",
        "max_size": 100,
        "queues": [{"name": "q", "target_per_instance": 10}, {"name": "r", "target_per_instance": 10}],
        "behavior": NO_LIMITS,
        "keep_busy_instances": True,
    } | case.pool
    return DecisionRequest.model_validate(
        {"now": NOW, "pool": pool, "observation": {"queues": case.observed, "fleet": {"desired": case.desired}}}
    )


CASES = [
    Case(
        "given 30 visible and 10 in flight on 40 instances, when the need is 4, then keep the 40 busy",
        [{"name": "q", "visible": 30, "in_flight": 10}, {"name": "r"}],
        desired=40,
        expected=40,
        limited_by=LimitedBy.SCALE_DOWN_LIMIT,
    ),
    Case(
        "given 25 messages over two queues on 40 instances, when the need is 3, then stop at the 25 occupied",
        [{"name": "q", "visible": 20}, {"name": "r", "in_flight": 5}],
        desired=40,
        expected=25,
        limited_by=LimitedBy.SCALE_DOWN_LIMIT,
    ),
    Case(
        "given 4 slots per instance and 10 messages, when scaling down from 20, then keep ceil(10 / 4) = 3",
        [{"name": "q", "visible": 10}, {"name": "r"}],
        desired=20,
        expected=3,
        limited_by=LimitedBy.SCALE_DOWN_LIMIT,
        pool={"slots_per_instance": 4},
    ),
    Case(
        "given no work, when scaling down from 5, then the floor is 0 and the need wins",
        [{"name": "q"}, {"name": "r"}],
        desired=5,
        expected=0,
        limited_by=LimitedBy.NONE,
    ),
    Case(
        "given the need is above the floor, when scaling down, then the floor does not apply",
        [{"name": "q", "visible": 50}, {"name": "r"}],
        desired=10,
        expected=5,
        limited_by=LimitedBy.NONE,
        pool={"slots_per_instance": 20},
    ),
    Case(
        "given a scale-up, when work is large, then the floor plays no part",
        [{"name": "q", "visible": 30}, {"name": "r"}],
        desired=1,
        expected=3,
        limited_by=LimitedBy.NONE,
    ),
    Case(
        "given delayed messages not counted, when scaling down, then they occupy no instance",
        [{"name": "q", "delayed": 50}, {"name": "r", "visible": 2}],
        desired=10,
        expected=2,
        limited_by=LimitedBy.SCALE_DOWN_LIMIT,
    ),
    Case(
        "given delayed messages counted, when scaling down, then they occupy instances too",
        [{"name": "q", "delayed": 50}, {"name": "r", "visible": 2}],
        desired=60,
        expected=52,
        limited_by=LimitedBy.SCALE_DOWN_LIMIT,
        pool={"count_delayed": True},
    ),
    Case(
        "given the rule is off (the default), when 40 instances hold 40 messages, then scale to the need",
        [{"name": "q", "visible": 30, "in_flight": 10}, {"name": "r"}],
        desired=40,
        expected=4,
        limited_by=LimitedBy.NONE,
        pool={"keep_busy_instances": False},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_keep_busy_instances(case: Case) -> None:
    decision = decide(request(case))
    assert decision.desired == case.expected
    assert decision.limited_by == case.limited_by
    floor_lines = [line for line in decision.explanation if line.startswith("scale-down floor")]
    assert bool(floor_lines) == (case.limited_by == LimitedBy.SCALE_DOWN_LIMIT)


def test_the_floor_keeps_the_recommendation_history_at_the_need() -> None:
    """History must remember the need, not the floor, or stabilization would hold the floor later."""
    decision = decide(request(CASES[0]))
    assert decision.recommendation == 4
