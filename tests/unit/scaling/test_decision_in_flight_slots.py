"""The opt-in `count_in_flight_as_slots` rule: a running message counts as the worker slot it holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from queue_scaler.scaling.domain.decision import DecisionRequest, decide
from queue_scaler.scaling.domain.models import LimitedBy
from queue_scaler.scaling.domain.pool import PoolConfig

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
    says: str
    limited_by: LimitedBy = LimitedBy.NONE
    pool: dict[str, Any] = field(default_factory=dict)


def request(case: Case) -> DecisionRequest:
    pool = {
        "name": "p",
        "max_size": 100,
        "tolerance": 0,
        "queues": [{"name": "q", "target_per_instance": 20}],
        "behavior": NO_LIMITS,
        "count_in_flight_as_slots": True,
    } | case.pool
    return DecisionRequest.model_validate(
        {"now": NOW, "pool": pool, "observation": {"queues": case.observed, "fleet": {"desired": case.desired}}}
    )


CASES = [
    Case(
        "given 14 in flight and none waiting on 20 instances of 1 slot, when deciding, then keep the 14 busy",
        [{"name": "q", "in_flight": 14}],
        desired=20,
        expected=14,
        says="q: backlog 14 (0 visible + 14 in flight): 0 waiting / target 20 = 0 + 14 in flight / 1 slot(s) = 14: 14",
    ),
    Case(
        "given all 14 instances busy and 5 waiting, when deciding, then add one for the waiting ones",
        [{"name": "q", "visible": 5, "in_flight": 14}],
        desired=14,
        expected=15,
        says="need ceil(14.25) = 15",
    ),
    Case(
        "given 4 slots per instance and 10 in flight, when deciding, then they hold ceil(10 / 4) = 3 instances",
        [{"name": "q", "in_flight": 10}],
        desired=1,
        expected=3,
        says="10 in flight / 4 slot(s) = 2.5",
        pool={"slots_per_instance": 4},
    ),
    Case(
        "given a target below the slots, when deciding, then in flight counts against the target as without the rule",
        [{"name": "q", "visible": 2, "in_flight": 6}],
        desired=1,
        expected=4,
        says="q: backlog 8 (2 visible + 6 in flight) / target 2 = 4",
        pool={"slots_per_instance": 4, "queues": [{"name": "q", "target_per_instance": 2}]},
    ),
    Case(
        "given the rule is off (the default), when 14 are in flight, then they count against the target",
        [{"name": "q", "in_flight": 14}],
        desired=20,
        expected=1,
        says="q: backlog 14 (0 visible + 14 in flight) / target 20 = 0.7",
        pool={"count_in_flight_as_slots": False},
    ),
    Case(
        "given delayed messages counted, when deciding, then they wait with the visible ones",
        [{"name": "q", "visible": 10, "delayed": 10, "in_flight": 3}],
        desired=3,
        expected=4,
        says="20 waiting / target 20 = 1 + 3 in flight / 1 slot(s) = 3: 4",
        pool={"count_delayed": True},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_count_in_flight_as_slots(case: Case) -> None:
    decision = decide(request(case))
    assert decision.desired == case.expected
    assert decision.limited_by == case.limited_by
    assert any(case.says in line for line in decision.explanation), decision.explanation


def test_given_count_in_flight_off_when_the_rule_is_on_then_the_pool_is_rejected() -> None:
    with pytest.raises(ValidationError, match="count_in_flight_as_slots needs count_in_flight"):
        PoolConfig.model_validate(
            {
                "name": "p",
                "max_size": 1,
                "queues": [{"name": "q", "target_per_instance": 1}],
                "count_in_flight": False,
                "count_in_flight_as_slots": True,
            }
        )
