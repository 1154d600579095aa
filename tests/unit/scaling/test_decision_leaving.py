"""Instances that are leaving (Spot interruption, rebalance recommendation) and the scaler's answer."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from queue_scaler.scaling.domain.decision import DecisionRequest, decide
from queue_scaler.scaling.domain.models import LimitedBy

NO_WINDOWS = {
    "scale_up": {"stabilization_window_seconds": 0, "policies": []},
    "scale_down": {"stabilization_window_seconds": 0, "policies": []},
}


def request(visible: int, desired: int, leaving: int, max_size: int = 20) -> DecisionRequest:
    return DecisionRequest.model_validate(
        {
            "now": 100.0,
            "pool": {
                "name": "p",
                "max_size": max_size,
                "queues": [{"name": "q", "target_per_instance": 10}],
                "behavior": NO_WINDOWS,
            },
            "observation": {
                "queues": [{"name": "q", "visible": visible}],
                "fleet": {"desired": desired, "in_service": max(0, desired - leaving), "leaving": leaving},
            },
        }
    )


@dataclass
class Case:
    name: str
    req: DecisionRequest
    desired: int
    limited_by: LimitedBy = LimitedBy.NONE
    says: str = ""


CASES = [
    Case(
        "given 5 needed on 5 with 1 leaving when deciding then a replacement is asked for now",
        request(visible=50, desired=5, leaving=1),
        6,
        says="need ceil(5) = 5; 5 / 5 = 1 is within tolerance 0.1: keep 5; 1 instance(s) leaving "
        "(Spot interruption or rebalance): 5 + 1 = 6",
    ),
    Case(
        "given 3 needed on 5 with 1 leaving when deciding then the staying 4 suffice and it scales in",
        request(visible=30, desired=5, leaving=1),
        3,
    ),
    Case(
        "given 4 needed on 5 with 1 leaving when deciding then the staying 4 are exactly enough",
        request(visible=40, desired=5, leaving=1),
        4,
    ),
    Case(
        "given no backlog with 2 leaving when deciding then nothing replaces them",
        request(visible=0, desired=2, leaving=2),
        0,
    ),
    Case(
        "given more leaving than the group holds when deciding then only the group's count is added",
        request(visible=30, desired=2, leaving=5),
        5,
    ),
    Case(
        "given replacements above max_size when deciding then max_size still bounds it",
        request(visible=200, desired=20, leaving=2),
        20,
        LimitedBy.MAX_SIZE,
    ),
    Case(
        "given nothing leaving when deciding then the contract's rule is unchanged",
        request(visible=50, desired=5, leaving=0),
        5,
        LimitedBy.NONE,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_leaving(case: Case) -> None:
    decision = decide(case.req)
    assert (decision.desired, decision.limited_by) == (case.desired, case.limited_by), decision.explanation
    assert case.says in "\n".join(decision.explanation)
