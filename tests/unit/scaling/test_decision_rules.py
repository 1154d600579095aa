"""Every rule of CONTRACTS.md section 1, one named Given/When/Then case each."""

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


def request(
    *,
    queues: list[dict[str, Any]] | None = None,
    observed: list[dict[str, Any]] | None = None,
    desired: int = 0,
    behavior: dict[str, Any] | None = None,
    history: dict[str, Any] | None = None,
    **pool: Any,
) -> DecisionRequest:
    """A request for pool `p` with one queue `q` (target 10) unless told otherwise."""
    queues = queues or [{"name": "q", "target_per_instance": 10}]
    return DecisionRequest.model_validate(
        {
            "now": NOW,
            "pool": {"name": "p", "max_size": 100, "queues": queues, "behavior": behavior or NO_LIMITS} | pool,
            "observation": {"queues": observed or [], "fleet": {"desired": desired}},
            "history": history or {},
        }
    )


def visible(n: int, name: str = "q", **more: int) -> dict[str, Any]:
    return {"name": name, "visible": n} | more


def up_rules(*policies: dict[str, Any], select: str = "Max", window: float = 0) -> dict[str, Any]:
    return {
        "scale_up": {
            "stabilization_window_seconds": window,
            "select_policy": select,
            "policies": list(policies),
        },
        "scale_down": NO_LIMITS["scale_down"],
    }


def down_rules(*policies: dict[str, Any], select: str = "Max", window: float = 0) -> dict[str, Any]:
    return {
        "scale_up": NO_LIMITS["scale_up"],
        "scale_down": {
            "stabilization_window_seconds": window,
            "select_policy": select,
            "policies": list(policies),
        },
    }


def instances(value: int, period: float = 60) -> dict[str, Any]:
    return {"type": "Instances", "value": value, "period_seconds": period}


def percent(value: int, period: float = 60) -> dict[str, Any]:
    return {"type": "Percent", "value": value, "period_seconds": period}


@dataclass
class Case:
    name: str
    req: DecisionRequest
    desired: int
    limited_by: LimitedBy
    recommendation: int | None = None
    says: list[str] = field(default_factory=list)


CASES = [
    # --- need and tolerance ---
    Case(
        "given 45 visible over target 10 at 2 when deciding then need is ceil(4.5) = 5",
        request(observed=[visible(45)], desired=2),
        5,
        LimitedBy.NONE,
        says=["q: backlog 45 (45 visible + 0 in flight) / target 10 = 4.5", "need ceil(4.5) = 5"],
    ),
    Case(
        "given a ratio of 1.1 exactly at tolerance 0.1 when deciding then current is kept",
        request(observed=[visible(22)], desired=2),
        2,
        LimitedBy.WITHIN_TOLERANCE,
        recommendation=2,
        says=["2.2 / 2 = 1.1 is within tolerance 0.1: keep 2"],
    ),
    Case(
        "given a ratio of 0.9 at tolerance 0.1 when deciding then current is kept",
        request(observed=[visible(90)], desired=10),
        10,
        LimitedBy.WITHIN_TOLERANCE,
    ),
    Case(
        "given a ratio of 1.15 outside tolerance 0.1 when deciding then the need is taken",
        request(observed=[visible(23)], desired=2),
        3,
        LimitedBy.NONE,
        says=["2.3 / 2 = 1.15 is outside tolerance 0.1"],
    ),
    Case(
        "given a zero tolerance when the need is fractional above current then it scales",
        request(observed=[visible(21)], desired=2, tolerance=0),
        3,
        LimitedBy.NONE,
    ),
    Case(
        "given two queues when deciding then their loads add up",
        request(
            queues=[{"name": "a", "target_per_instance": 3}, {"name": "b", "target_per_instance": 15}],
            observed=[visible(6, "a"), visible(15, "b")],
            desired=0,
        ),
        3,
        LimitedBy.NONE,
    ),
    Case(
        "given count_in_flight false when messages are in flight then they are not backlog",
        request(observed=[visible(10, in_flight=30)], desired=1, count_in_flight=False),
        1,
        LimitedBy.NONE,
        says=["q: backlog 10 (10 visible) / target 10 = 1"],
    ),
    Case(
        "given count_delayed true when messages are delayed then they are backlog",
        request(observed=[visible(10, delayed=20)], desired=1, count_delayed=True),
        3,
        LimitedBy.NONE,
        says=["q: backlog 30 (10 visible + 0 in flight + 20 delayed) / target 10 = 3"],
    ),
    Case(
        "given max_wait mode when deciding then target is slots * max_wait / seconds_per_message",
        request(
            queues=[{"name": "q", "max_wait_seconds": 60}],
            observed=[visible(20)],
            seconds_per_message=30,
            slots_per_instance=2,
        ),
        5,
        LimitedBy.NONE,
        says=["q: backlog 20 (20 visible + 0 in flight) / target 4 = 5"],
    ),
    # --- activation from zero ---
    Case(
        "given a pool at zero when one message arrives then it wakes to at least 1",
        request(observed=[visible(1)], desired=0),
        1,
        LimitedBy.NONE,
        says=["need ceil(0.1) = 1; from zero: backlog 1 > activation 0, recommend 1"],
    ),
    Case(
        "given a pool at zero when the backlog is at the activation threshold then it stays at 0",
        request(observed=[visible(5)], desired=0, activation_backlog=5),
        0,
        LimitedBy.ACTIVATION,
        says=["from zero: backlog 5 <= activation 5, stay at 0"],
    ),
    Case(
        "given a pool at zero when nothing is queued then it stays at 0 unlimited",
        request(observed=[visible(0)], desired=0),
        0,
        LimitedBy.NONE,
    ),
    Case(
        "given a pool at zero when backlog passes activation then the full need is asked",
        request(observed=[visible(60)], desired=0, activation_backlog=5),
        6,
        LimitedBy.NONE,
    ),
    # --- stabilization ---
    Case(
        "given a scale-up window with a lower recent recommendation when need rises then it rises to it",
        request(
            observed=[visible(80)],
            desired=1,
            behavior=up_rules(window=60),
            history={"recommendations": [{"at": NOW - 30, "desired": 3}]},
        ),
        3,
        LimitedBy.SCALE_UP_STABILIZED,
        recommendation=8,
        says=["scale-up stabilization: lowest recommendation in the last 60 s = 3: hold at 3"],
    ),
    Case(
        "given a scale-up window when the low recommendation is exactly window-old then it is ignored",
        request(
            observed=[visible(80)],
            desired=1,
            behavior=up_rules(window=60),
            history={"recommendations": [{"at": NOW - 60, "desired": 3}]},
        ),
        8,
        LimitedBy.NONE,
    ),
    Case(
        "given a scale-down window with a higher recent recommendation when need falls then it holds",
        request(
            observed=[visible(0)],
            desired=10,
            behavior=down_rules(window=300),
            history={"recommendations": [{"at": NOW - 100, "desired": 10}]},
        ),
        10,
        LimitedBy.SCALE_DOWN_STABILIZED,
        recommendation=0,
        says=["scale-down stabilization: highest recommendation in the last 300 s = 10: hold at 10"],
    ),
    Case(
        "given a scale-down window when the highest recent one is below current then it lowers to it",
        request(
            observed=[visible(0)],
            desired=10,
            behavior=down_rules(window=300),
            history={"recommendations": [{"at": NOW - 100, "desired": 6}, {"at": NOW - 400, "desired": 12}]},
        ),
        6,
        LimitedBy.SCALE_DOWN_STABILIZED,
    ),
    # --- rate policies ---
    Case(
        "given Instances +4 per 60 s and 3 added 10 s ago when need is 20 then the limit is 1 + 4",
        request(
            observed=[visible(200)],
            desired=4,
            behavior=up_rules(instances(4)),
            history={"scale_events": [{"at": NOW - 10, "change": 3}]},
        ),
        5,
        LimitedBy.SCALE_UP_LIMIT,
        says=["scale-up limit: start 1 (4 - 3 added in the last 60 s); Instances +4 = 5; Max = 5: limited to 5"],
    ),
    Case(
        "given an Instances policy when the only change is exactly period-old then it is not counted",
        request(
            observed=[visible(200)],
            desired=4,
            behavior=up_rules(instances(4)),
            history={"scale_events": [{"at": NOW - 60, "change": 3}]},
        ),
        8,
        LimitedBy.SCALE_UP_LIMIT,
    ),
    Case(
        "given Percent 10% of 3 when scaling up then the limit rounds up to 4",
        request(observed=[visible(200)], desired=3, behavior=up_rules(percent(10))),
        4,
        LimitedBy.SCALE_UP_LIMIT,
        says=["Percent 10% = 4"],
    ),
    Case(
        "given Percent 100% per 60 s and 2 added 30 s ago when need rises then it doubles from the period start",
        request(
            observed=[visible(1000)],
            desired=6,
            behavior=up_rules(percent(100)),
            history={"scale_events": [{"at": NOW - 30, "change": 2}, {"at": NOW - 90, "change": 4}]},
        ),
        8,
        LimitedBy.SCALE_UP_LIMIT,
        says=["start 4 (6 - 2 added in the last 60 s); Percent 100% = 8"],
    ),
    Case(
        "given Percent 50% per 60 s and 4 removed 20 s ago when need falls then it halves from the period start",
        request(
            observed=[visible(0)],
            desired=4,
            behavior=down_rules(percent(50)),
            history={"scale_events": [{"at": NOW - 20, "change": -4}]},
        ),
        4,
        LimitedBy.SCALE_DOWN_LIMIT,
        says=["start 8 (4 + 4 removed in the last 60 s); Percent 50% = 4"],
    ),
    Case(
        "given Percent 10% of 10 when scaling up then the limit is exactly 11",
        request(observed=[visible(200)], desired=10, behavior=up_rules(percent(10))),
        11,
        LimitedBy.SCALE_UP_LIMIT,
    ),
    Case(
        "given select Max of Instances +4 and Percent 100% from 10 when scaling up then 20",
        request(observed=[visible(1000)], desired=10, behavior=up_rules(instances(4), percent(100))),
        20,
        LimitedBy.SCALE_UP_LIMIT,
    ),
    Case(
        "given select Min of Instances +4 and Percent 100% from 10 when scaling up then 14",
        request(observed=[visible(1000)], desired=10, behavior=up_rules(instances(4), percent(100), select="Min")),
        14,
        LimitedBy.SCALE_UP_LIMIT,
    ),
    Case(
        "given scale-up Disabled when need rises then current stays",
        request(observed=[visible(1000)], desired=10, behavior=up_rules(instances(4), select="Disabled")),
        10,
        LimitedBy.SCALE_UP_LIMIT,
        says=["scale-up limit: Disabled: stay at 10: limited to 10"],
    ),
    Case(
        "given a scale-up limit below current after recent additions when need rises then it is current",
        request(
            observed=[visible(1000)],
            desired=10,
            behavior=up_rules(instances(2)),
            history={"scale_events": [{"at": NOW - 5, "change": 9}]},
        ),
        10,
        LimitedBy.SCALE_UP_LIMIT,
    ),
    Case(
        "given a Percent-only scale-up policy at zero when work arrives then the limit is at least 1",
        request(observed=[visible(100)], desired=0, behavior=up_rules(percent(100))),
        1,
        LimitedBy.SCALE_UP_LIMIT,
        says=["Percent 100% = 0; Max = 0; at least 1 from zero: limited to 1"],
    ),
    Case(
        "given the HPA name Pods when it is used then it means Instances",
        request(
            observed=[visible(1000)],
            desired=2,
            behavior=up_rules({"type": "Pods", "value": 3, "period_seconds": 15}),
        ),
        5,
        LimitedBy.SCALE_UP_LIMIT,
    ),
    Case(
        "given Instances -2 per 60 s when need falls to 0 then it removes 2",
        request(observed=[visible(0)], desired=10, behavior=down_rules(instances(2))),
        8,
        LimitedBy.SCALE_DOWN_LIMIT,
    ),
    Case(
        "given Instances -2 per 60 s and 2 removed 30 s ago when need falls then it stays",
        request(
            observed=[visible(0)],
            desired=10,
            behavior=down_rules(instances(2)),
            history={"scale_events": [{"at": NOW - 30, "change": -2}]},
        ),
        10,
        LimitedBy.SCALE_DOWN_LIMIT,
        says=["start 12 (10 + 2 removed in the last 60 s)"],
    ),
    Case(
        "given Percent 50% of 11 when scaling down then the limit rounds down to 5",
        request(observed=[visible(0)], desired=11, behavior=down_rules(percent(50))),
        5,
        LimitedBy.SCALE_DOWN_LIMIT,
    ),
    Case(
        "given select Min of Instances -1 and Percent 50% from 10 when scaling down then 9",
        request(observed=[visible(0)], desired=10, behavior=down_rules(instances(1), percent(50), select="Min")),
        9,
        LimitedBy.SCALE_DOWN_LIMIT,
    ),
    Case(
        "given select Max of Instances -1 and Percent 50% from 10 when scaling down then 5",
        request(observed=[visible(0)], desired=10, behavior=down_rules(instances(1), percent(50))),
        5,
        LimitedBy.SCALE_DOWN_LIMIT,
    ),
    Case(
        "given scale-down Disabled when need falls then current stays",
        request(observed=[visible(0)], desired=10, behavior=down_rules(percent(100), select="Disabled")),
        10,
        LimitedBy.SCALE_DOWN_LIMIT,
    ),
    Case(
        "given no policies in either direction when need jumps then it is reached in one decision",
        request(observed=[visible(990)], desired=1),
        99,
        LimitedBy.NONE,
    ),
    Case(
        "given policies with different periods when scaling up then each starts from its own period",
        request(
            observed=[visible(1000)],
            desired=6,
            behavior=up_rules(instances(4, 15), instances(1, 120)),
            history={"scale_events": [{"at": NOW - 60, "change": 4}]},
        ),
        10,
        LimitedBy.SCALE_UP_LIMIT,
        says=["Instances +4 = 10 from start 6, Instances +1 = 3 from start 2 (6 - 4 added in the last 120 s)"],
    ),
    # --- clamps ---
    Case(
        "given a need above max_size when deciding then it is clamped to max_size",
        request(observed=[visible(1000)], desired=2, max_size=20),
        20,
        LimitedBy.MAX_SIZE,
        says=["clamped to max_size 20", "desired 20 (limited by MaxSize)"],
    ),
    Case(
        "given a need below min_size when deciding then it is clamped to min_size",
        request(observed=[visible(0)], desired=3, min_size=1),
        1,
        LimitedBy.MIN_SIZE,
        says=["clamped to min_size 1", "desired 1 (limited by MinSize)"],
    ),
    Case(
        "given a fleet at zero below min_size 1 when idle then it is raised to min_size",
        request(observed=[visible(0)], desired=0, min_size=1),
        1,
        LimitedBy.MIN_SIZE,
    ),
    # --- the error rule ---
    Case(
        "given one queue throttled when the readable one needs less then scale-down is blocked",
        request(
            queues=[{"name": "a", "target_per_instance": 10}, {"name": "b", "target_per_instance": 10}],
            observed=[visible(10, "a"), {"name": "b", "error": "ThrottlingException"}],
            desired=5,
        ),
        5,
        LimitedBy.METRICS_UNAVAILABLE,
        says=["b: unavailable (ThrottlingException): scale-down blocked"],
    ),
    Case(
        "given one queue throttled when the readable one needs more then scale-up proceeds",
        request(
            queues=[{"name": "a", "target_per_instance": 10}, {"name": "b", "target_per_instance": 10}],
            observed=[visible(80, "a"), {"name": "b", "error": "ThrottlingException"}],
            desired=5,
        ),
        8,
        LimitedBy.NONE,
    ),
    Case(
        "given every queue unreadable when deciding then the fleet is kept",
        request(observed=[{"name": "q", "error": "AccessDenied"}], desired=4),
        4,
        LimitedBy.METRICS_UNAVAILABLE,
    ),
    Case(
        "given a configured queue missing from the observation when deciding then it counts as unavailable",
        request(
            queues=[{"name": "a", "target_per_instance": 10}, {"name": "b", "target_per_instance": 10}],
            observed=[visible(0, "a")],
            desired=3,
        ),
        3,
        LimitedBy.METRICS_UNAVAILABLE,
        says=["b: not observed: scale-down blocked", "scale-down to 0 blocked: 1 queue(s) unavailable; keep 3"],
    ),
    Case(
        "given the first queue unreadable when the second needs more then the pool still scales up on it",
        request(
            queues=[{"name": "a", "target_per_instance": 10}, {"name": "b", "target_per_instance": 10}],
            observed=[{"name": "a", "error": "Throttling"}, visible(50, "b")],
            desired=3,
        ),
        5,
        LimitedBy.NONE,
        says=[
            "a: unavailable (Throttling): scale-down blocked",
            "b: backlog 50 (50 visible + 0 in flight) / target 10 = 5",
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case) -> None:
    decision = decide(case.req)
    assert (decision.desired, decision.limited_by) == (case.desired, case.limited_by), decision.explanation
    if case.recommendation is not None:
        assert decision.recommendation == case.recommendation
    text = "\n".join(decision.explanation)
    for fragment in case.says:
        assert fragment in text
    assert decision.explanation[-1].startswith(f"desired {case.desired}")


def test_same_request_gives_the_same_decision() -> None:
    req = CASES[0].req
    assert decide(req) == decide(DecisionRequest.model_validate(req.model_dump()))
