"""A second signal through the seam: the decision takes the larger proposal and names it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

import tests.unit.scaling.signals.toy  # noqa: F401 - registers the toy signal
from queue_scaler.scaling.domain.decision import DecisionRequest, decide
from queue_scaler.scaling.domain.models import LimitedBy

NO_WINDOWS = {
    "scale_up": {"stabilization_window_seconds": 0, "policies": []},
    "scale_down": {"stabilization_window_seconds": 0, "policies": []},
}


def request(visible: int, desired: int, toy: float | None, backlog: bool = True) -> DecisionRequest:
    chosen: dict[str, Any] = {"backlog": {}} if backlog else {}
    if toy is not None:
        chosen["toy"] = {"instances": toy}
    return DecisionRequest.model_validate(
        {
            "now": 100.0,
            "pool": {
                "name": "p",
                "max_size": 50,
                "queues": [{"name": "q", "target_per_instance": 10}],
                "behavior": NO_WINDOWS,
                "signals": chosen,
            },
            "observation": {"queues": [{"name": "q", "visible": visible}], "fleet": {"desired": desired}},
        }
    )


@dataclass
class Case:
    name: str
    req: DecisionRequest
    desired: int
    signal: str
    says: str
    limited_by: LimitedBy = LimitedBy.NONE


CASES = [
    Case(
        "given the toy proposing 7 over a backlog needing 3 when deciding then 7 wins and is named",
        request(visible=30, desired=2, toy=7),
        7,
        "toy",
        "signals: backlog 3, toy 7; largest: toy",
    ),
    Case(
        "given a backlog needing 9 over the toy's 4 when deciding then the backlog wins",
        request(visible=90, desired=2, toy=4),
        9,
        "backlog",
        "signals: backlog 9, toy 4; largest: backlog",
    ),
    Case(
        "given equal proposals when deciding then the first configured (backlog) wins",
        request(visible=50, desired=2, toy=5),
        5,
        "backlog",
        "largest: backlog",
    ),
    Case(
        "given an empty queue at zero when the toy is active then it wakes the pool",
        request(visible=0, desired=0, toy=2),
        2,
        "toy",
        "from zero: toy 2 > 0, recommend 2",
    ),
    Case(
        "given only the toy configured when deciding then the queue is not read for need",
        request(visible=500, desired=3, toy=3, backlog=False),
        3,
        "toy",
        "need ceil(3) = 3; 3 / 3 = 1 is within tolerance 0.1: keep 3",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_toy_signal(case: Case) -> None:
    decision = decide(case.req)
    assert (decision.desired, decision.signal, decision.limited_by) == (case.desired, case.signal, case.limited_by)
    assert any(case.says in line for line in decision.explanation), decision.explanation


def test_given_a_bad_toy_setting_when_validating_then_the_error_names_the_signal_and_field() -> None:
    with pytest.raises(ValidationError, match=r"signals\.toy: instances"):
        request(visible=0, desired=0, toy=-1)


def test_given_an_unknown_signal_when_validating_then_it_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"signals\.nope: unknown signal \(known: arrival_rate, backlog"):
        DecisionRequest.model_validate(
            {
                "now": 1.0,
                "pool": {
                    "name": "p",
                    "max_size": 1,
                    "queues": [{"name": "q", "target_per_instance": 1}],
                    "signals": {"nope": {}},
                },
                "observation": {"queues": [], "fleet": {"desired": 0}},
            }
        )
