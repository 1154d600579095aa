"""Per-direction tolerance (HPA `behavior.scaleUp.tolerance` / `scaleDown.tolerance`, Kubernetes 1.33)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from queue_scaler.scaling.domain.decision import DecisionRequest, decide
from queue_scaler.scaling.domain.models import LimitedBy


@dataclass(frozen=True)
class Case:
    name: str
    visible: int
    desired: int
    up: float | None
    down: float | None
    expected: int
    limited_by: LimitedBy
    says: str


def request(case: Case) -> DecisionRequest:
    up: dict[str, Any] = {"stabilization_window_seconds": 0, "policies": []}
    down: dict[str, Any] = {"stabilization_window_seconds": 0, "policies": []}
    if case.up is not None:
        up["tolerance"] = case.up
    if case.down is not None:
        down["tolerance"] = case.down
    pool = {
        "name": "p",
        "max_size": 100,
        "tolerance": 0.1,
        "queues": [{"name": "q", "target_per_instance": 10}],
        "behavior": {"scale_up": up, "scale_down": down},
    }
    return DecisionRequest.model_validate(
        {
            "now": 1000.0,
            "pool": pool,
            "observation": {"queues": [{"name": "q", "visible": case.visible}], "fleet": {"desired": case.desired}},
        }
    )


CASES = [
    Case(
        "given a scale-up tolerance of 0, when the need is 21 on 20, then scale up at once",
        visible=205,
        desired=20,
        up=0,
        down=None,
        expected=21,
        limited_by=LimitedBy.NONE,
        says="20.5 / 20 = 1.02 is outside scale-up tolerance 0",
    ),
    Case(
        "given a scale-up tolerance of 0, when the need is 19 on 20, then the pool's 0.1 still holds it",
        visible=185,
        desired=20,
        up=0,
        down=None,
        expected=20,
        limited_by=LimitedBy.WITHIN_TOLERANCE,
        says="18.5 / 20 = 0.93 is within tolerance 0.1: keep 20",
    ),
    Case(
        "given a scale-down tolerance of 0.5, when the need is 12 on 20, then keep 20",
        visible=115,
        desired=20,
        up=None,
        down=0.5,
        expected=20,
        limited_by=LimitedBy.WITHIN_TOLERANCE,
        says="11.5 / 20 = 0.57 is within scale-down tolerance 0.5: keep 20",
    ),
    Case(
        "given no direction tolerance (the default), when the need is 21 on 20, then the pool's 0.1 holds it",
        visible=205,
        desired=20,
        up=None,
        down=None,
        expected=20,
        limited_by=LimitedBy.WITHIN_TOLERANCE,
        says="20.5 / 20 = 1.02 is within tolerance 0.1: keep 20",
    ),
    Case(
        "given both directions' tolerances, when the need is exactly the current, then the scale-down one is named",
        visible=200,
        desired=20,
        up=0.3,
        down=0.05,
        expected=20,
        limited_by=LimitedBy.NONE,
        says="20 / 20 = 1 is within scale-down tolerance 0.05: keep 20",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_direction_tolerance(case: Case) -> None:
    decision = decide(request(case))
    assert decision.desired == case.expected
    assert decision.limited_by == case.limited_by
    assert any(case.says in line for line in decision.explanation), decision.explanation
