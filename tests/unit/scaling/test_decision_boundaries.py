"""The decision's exact boundaries: a value equal to a limit is not limited by it, and the figures
the decision reports (raw need) are the ones it computed. Each case names the boundary it pins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from queue_scaler.scaling.domain.decision import MAX_NEED, DecisionRequest, decide
from queue_scaler.scaling.domain.models import LimitedBy

NOW = 1000.0
NO_LIMITS: dict[str, Any] = {
    "scale_up": {"stabilization_window_seconds": 0, "policies": []},
    "scale_down": {"stabilization_window_seconds": 0, "policies": []},
}
TWO_QUEUES = [{"name": "a", "target_per_instance": 10}, {"name": "b", "target_per_instance": 10}]


def request(observed: list[dict[str, Any]], desired: int, **pool: Any) -> DecisionRequest:
    return DecisionRequest.model_validate(
        {
            "now": NOW,
            "pool": {"name": "p", "max_size": 100, "behavior": NO_LIMITS}
            | {"queues": [{"name": "q", "target_per_instance": 10}]}
            | pool,
            "observation": {"queues": observed, "fleet": {"desired": desired}},
            "history": {},
        }
    )


def visible(n: int, name: str = "q") -> dict[str, Any]:
    return {"name": name, "visible": n}


@dataclass
class Case:
    name: str
    req: DecisionRequest
    desired: int
    limited_by: LimitedBy
    absent: str  # a line that must not be in the explanation: the limit did not act


CASES = [
    Case(
        "given a queue unavailable when the readable need equals current then nothing is blocked",
        request([visible(30, "a"), {"name": "b", "error": "ThrottlingException"}], 3, queues=TWO_QUEUES),
        3,
        LimitedBy.NONE,
        "scale-down to",
    ),
    Case(
        "given a queue unavailable when the readable need is one below current then the scale-down is blocked",
        request([visible(20, "a"), {"name": "b", "error": "ThrottlingException"}], 3, queues=TWO_QUEUES),
        3,
        LimitedBy.METRICS_UNAVAILABLE,
        "clamped",
    ),
    Case(
        "given a need exactly at max_size when deciding then it is not reported as clamped",
        request([visible(200)], 2, max_size=20),
        20,
        LimitedBy.NONE,
        "clamped to max_size",
    ),
    Case(
        "given a need one above max_size when deciding then it is clamped",
        request([visible(210)], 2, max_size=20),
        20,
        LimitedBy.MAX_SIZE,
        "blocked",
    ),
    Case(
        "given a need exactly at min_size when deciding then it is not reported as clamped",
        request([visible(20)], 6, min_size=2),
        2,
        LimitedBy.NONE,
        "clamped to min_size",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_boundary(case: Case) -> None:
    decision = decide(case.req)
    assert (decision.desired, decision.limited_by) == (case.desired, case.limited_by), decision.explanation
    assert not [line for line in decision.explanation if case.absent in line], decision.explanation


@dataclass
class NeedCase:
    name: str
    req: DecisionRequest
    raw_need: float


NEED_CASES = [
    NeedCase("given 45 visible over target 10 when deciding then raw need is 4.5", request([visible(45)], 2), 4.5),
    NeedCase(
        "given a need of a third when deciding then raw need keeps six decimals",
        request([visible(10)], 0, queues=[{"name": "q", "target_per_instance": 30}]),
        0.333333,
    ),
    NeedCase("given an idle queue when deciding then raw need is 0", request([visible(0)], 3), 0.0),
    NeedCase(
        "given a backlog far past any fleet when deciding then raw need is bounded",
        request([visible(10**15)], 3, queues=[{"name": "q", "target_per_instance": 1}]),
        float(MAX_NEED),
    ),
]


@pytest.mark.parametrize("case", NEED_CASES, ids=[c.name for c in NEED_CASES])
def test_raw_need_is_reported(case: NeedCase) -> None:
    assert decide(case.req).raw_need == case.raw_need
