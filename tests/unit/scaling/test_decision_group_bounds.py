"""The clamps to the group's own MinSize and MaxSize as observed, after the pool's own bounds.

AWS refuses a desired capacity outside the group's [MinSize, MaxSize]; the decision keeps within
both ranges and says which one bound it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from queue_scaler.scaling.domain.decision import DecisionRequest, decide
from queue_scaler.scaling.domain.models import LimitedBy

NO_LIMITS = {
    "scale_up": {"stabilization_window_seconds": 0, "policies": []},
    "scale_down": {"stabilization_window_seconds": 0, "policies": []},
}


@dataclass(frozen=True)
class Case:
    name: str
    visible: int
    pool_min: int
    pool_max: int
    group_min: int | None
    group_max: int | None
    desired: int
    limited_by: LimitedBy
    says: str | None

    def __str__(self) -> str:
        return self.name


CASES = [
    Case("given a need above a group max below the pool's then the group's MaxSize", 200, 0, 20, 0, 4, 4,
         LimitedBy.MAX_SIZE, "clamped to the group's MaxSize 4 (the pool's max_size is 20)"),
    Case("given a need above both maxima then the lower, the group's", 900, 0, 20, 0, 8, 8,
         LimitedBy.MAX_SIZE, "clamped to the group's MaxSize 8 (the pool's max_size is 20)"),
    Case("given a group max above the pool's then the pool's max_size", 900, 0, 20, 0, 50, 20,
         LimitedBy.MAX_SIZE, "clamped to max_size 20"),
    Case("given a need within both ranges then no clamp", 50, 0, 20, 0, 8, 5, LimitedBy.NONE, None),
    Case("given a need exactly at the group's max then no clamp", 40, 0, 20, 0, 4, 4, LimitedBy.NONE, None),
    Case("given a group min above the pool's and no need then the group's MinSize", 0, 0, 20, 2, 20, 2,
         LimitedBy.MIN_SIZE, "clamped to the group's MinSize 2 (the pool's min_size is 0)"),
    Case("given a pool min above the group's then the pool's min_size", 0, 3, 20, 1, 20, 3,
         LimitedBy.MIN_SIZE, "clamped to min_size 3"),
    Case("given a pool min above the group's max then the group's MaxSize wins", 0, 5, 20, 0, 3, 3,
         LimitedBy.MAX_SIZE, "clamped to the group's MaxSize 3 (the pool's max_size is 20)"),
    Case("given no observed bounds then the pool's alone", 900, 0, 20, None, None, 20,
         LimitedBy.MAX_SIZE, "clamped to max_size 20"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_group_bounds(case: Case) -> None:
    fleet: dict[str, int] = {"desired": 1}
    if case.group_min is not None and case.group_max is not None:
        fleet |= {"min_size": case.group_min, "max_size": case.group_max}
    request = DecisionRequest.model_validate(
        {
            "now": 1000.0,
            "pool": {
                "name": "p",
                "min_size": case.pool_min,
                "max_size": case.pool_max,
                "queues": [{"name": "q", "target_per_instance": 10}],
                "behavior": NO_LIMITS,
            },
            "observation": {"queues": [{"name": "q", "visible": case.visible}], "fleet": fleet},
        }
    )
    decision = decide(request)
    assert (decision.desired, decision.limited_by) == (case.desired, case.limited_by)
    if case.says is None:
        assert not any("clamped" in line for line in decision.explanation)
    else:
        assert case.says in decision.explanation
