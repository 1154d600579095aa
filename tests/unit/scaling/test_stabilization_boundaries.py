"""Stabilization and rate limits at their edges: a recommendation equal to the fleet, a window of one
second, a recent recommendation above the fleet during a scale-down, a 100 % scale-down policy, and
the explanation line when the window does not hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from queue_scaler.scaling.domain.behavior import rate_limit, stabilize
from queue_scaler.scaling.domain.models import History, LimitedBy, Recommendation, ScaleEvent, Step
from queue_scaler.scaling.domain.pool import Behavior
from queue_scaler.shared.domain.text import fmt

NOW = 1000.0


def behavior(
    up_window: float = 0, down_window: float = 0, down_policies: list[dict[str, Any]] | None = None
) -> Behavior:
    return Behavior.model_validate(
        {
            "scale_up": {"stabilization_window_seconds": up_window, "policies": []},
            "scale_down": {"stabilization_window_seconds": down_window, "policies": down_policies or []},
        }
    )


def recommended(*pairs: tuple[float, int]) -> History:
    return History(recommendations=[Recommendation(at=NOW - age, desired=d) for age, d in pairs])


@dataclass
class Case:
    name: str
    recommendation: int
    current: int
    history: History
    behavior: Behavior
    step: Step


CASES = [
    Case(
        "given a recommendation equal to the fleet when stabilizing then no window is consulted",
        4,
        4,
        recommended((10, 2)),
        behavior(up_window=60, down_window=60),
        Step(4, None, None),
    ),
    Case(
        "given a one-second scale-up window when a lower recommendation is inside it then it holds",
        6,
        2,
        recommended((0.5, 3)),
        behavior(up_window=1),
        Step(
            3,
            LimitedBy.SCALE_UP_STABILIZED,
            "scale-up stabilization: lowest recommendation in the last 1 s = 3: hold at 3",
        ),
    ),
    Case(
        "given a scale-down when a recent recommendation is above the fleet then the fleet is kept, not raised",
        3,
        5,
        recommended((10, 8)),
        behavior(down_window=60),
        Step(
            5,
            LimitedBy.SCALE_DOWN_STABILIZED,
            "scale-down stabilization: highest recommendation in the last 60 s = 8: hold at 5",
        ),
    ),
    Case(
        "given a scale-down when the window holds nothing higher then the line says so and nothing more",
        3,
        5,
        recommended((120, 8)),
        behavior(down_window=60),
        Step(3, None, "scale-down stabilization: highest recommendation in the last 60 s = 3"),
    ),
    Case(
        "given a one-second scale-down window when a higher recommendation is inside it then it holds",
        2,
        6,
        recommended((0.5, 4)),
        behavior(down_window=1),
        Step(
            4,
            LimitedBy.SCALE_DOWN_STABILIZED,
            "scale-down stabilization: highest recommendation in the last 1 s = 4: hold at 4",
        ),
    ),
    Case(
        "given no scale-down window when lowering then nothing holds and no line is added",
        2,
        6,
        recommended((0.5, 4)),
        behavior(down_window=0),
        Step(2, None, None),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_stabilize(case: Case) -> None:
    assert stabilize(case.recommendation, case.current, NOW, case.history, case.behavior) == case.step


def test_given_a_100_percent_scale_down_policy_when_limiting_then_the_fleet_may_go_to_zero() -> None:
    rules = behavior(down_policies=[{"type": "Percent", "value": 100, "period_seconds": 60}])
    assert rate_limit(0, 200, NOW, History(), rules).value == 0


@pytest.mark.parametrize(
    ("name", "policy", "step"),
    [
        (
            "given an Instances policy of 1 from zero then it allows 1 by itself",
            {"type": "Instances", "value": 1, "period_seconds": 60},
            Step(1, LimitedBy.SCALE_UP_LIMIT, "scale-up limit: start 0; Instances +1 = 1; Max = 1: limited to 1"),
        ),
        (
            "given a Percent policy alone from zero then at least 1 is allowed",
            {"type": "Percent", "value": 100, "period_seconds": 60},
            Step(
                1,
                LimitedBy.SCALE_UP_LIMIT,
                "scale-up limit: start 0; Percent 100% = 0; Max = 0; at least 1 from zero: limited to 1",
            ),
        ),
    ],
)
def test_rate_limits_from_zero(name: str, policy: dict[str, Any], step: Step) -> None:
    rules = Behavior.model_validate({"scale_up": {"stabilization_window_seconds": 0, "policies": [policy]}})
    assert rate_limit(5, 0, NOW, History(), rules) == step


@pytest.mark.parametrize(
    ("name", "change", "step"),
    [
        (
            "given one instance added inside the period then the period started one lower",
            1,
            Step(
                3,
                LimitedBy.SCALE_UP_LIMIT,
                "scale-up limit: start 2 (3 - 1 added in the last 60 s); Instances +1 = 3; Max = 3: limited to 3",
            ),
        ),
        (
            "given one instance removed inside the period then the period started one higher",
            -1,
            Step(5, None, "scale-up limit: start 4 (3 + 1 removed in the last 60 s); Instances +1 = 5; Max = 5"),
        ),
    ],
)
def test_a_change_of_one_inside_the_period(name: str, change: int, step: Step) -> None:
    policy = {"type": "Instances", "value": 1, "period_seconds": 60}
    rules = Behavior.model_validate({"scale_up": {"stabilization_window_seconds": 0, "policies": [policy]}})
    assert rate_limit(5, 3, NOW, History(scale_events=[ScaleEvent(at=NOW - 10, change=change)]), rules) == step


@pytest.mark.parametrize(
    ("name", "target", "current", "direction", "policy", "step"),
    [
        (
            "given an Instances scale-down policy of 3 then 10 may go down to 7",
            2,
            10,
            "scale_down",
            {"type": "Instances", "value": 3, "period_seconds": 60},
            Step(7, LimitedBy.SCALE_DOWN_LIMIT, "scale-down limit: start 10; Instances -3 = 7; Max = 7: limited to 7"),
        ),
        (
            "given a Percent 100 scale-up policy then 100 may double to 200",
            300,
            100,
            "scale_up",
            {"type": "Percent", "value": 100, "period_seconds": 60},
            Step(
                200,
                LimitedBy.SCALE_UP_LIMIT,
                "scale-up limit: start 100; Percent 100% = 200; Max = 200: limited to 200",
            ),
        ),
    ],
)
def test_rate_limit_lines(
    *, name: str, target: int, current: int, direction: str, policy: dict[str, Any], step: Step
) -> None:
    rules = Behavior.model_validate({direction: {"stabilization_window_seconds": 0, "policies": [policy]}})
    assert rate_limit(target, current, NOW, History(), rules) == step


@pytest.mark.parametrize(("value", "text"), [(3.0, "3"), (4.666, "4.67"), (0.1, "0.1"), (2.001, "2"), (2.5, "2.5")])
def test_fmt(value: float, text: str) -> None:
    assert fmt(value) == text
