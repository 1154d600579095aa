"""The instance-refresh hold: while a refresh runs (or its state is unknown) desired never goes down.

The refresh launches each replacement before its old instance leaves; a lower desired capacity would
terminate instances the refresh counts on (AWS warns it can fail the refresh). A scale-up proceeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from queue_scaler.scaling.domain.decision import DecisionRequest, decide
from queue_scaler.scaling.domain.fleet import refresh_needed
from queue_scaler.scaling.domain.models import FleetObservation, LimitedBy, RefreshState

NO_LIMITS = {
    "scale_up": {"stabilization_window_seconds": 0, "policies": []},
    "scale_down": {"stabilization_window_seconds": 0, "policies": []},
}


@dataclass(frozen=True)
class Case:
    name: str
    visible: int
    current: int
    refresh: RefreshState
    desired: int
    limited_by: LimitedBy
    says: str | None

    def __str__(self) -> str:
        return self.name


CASES = [
    Case("given a refresh running and less need then desired is held", 20, 4, "running", 4,
         LimitedBy.INSTANCE_REFRESH, "scale-down to 2 held: instance refresh running; keep 4"),
    Case("given a refresh running and no need then desired is held", 0, 3, "running", 3,
         LimitedBy.INSTANCE_REFRESH, "scale-down to 0 held: instance refresh running; keep 3"),
    Case("given an unreadable refresh state and less need then desired is held", 20, 4, "unknown", 4,
         LimitedBy.INSTANCE_REFRESH, "scale-down to 2 held: instance refresh state unreadable; keep 4"),
    Case("given a refresh running and more need then the scale-up proceeds", 90, 4, "running", 9,
         LimitedBy.NONE, None),
    Case("given a refresh running and the same need then nothing moves", 40, 4, "running", 4,
         LimitedBy.NONE, None),
    Case("given no refresh and less need then the scale-down proceeds", 20, 4, "none", 2, LimitedBy.NONE, None),
    # A group above the pool's max_size (the pool's configuration lowered) still comes down to it:
    # AWS refuses nothing there, and the clamp is the last rule.
    Case("given a refresh running above the pool's max then the clamp still applies", 90, 12, "running", 10,
         LimitedBy.MAX_SIZE, "scale-down to 9 held: instance refresh running; keep 12"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_instance_refresh_hold(case: Case) -> None:
    request = DecisionRequest.model_validate(
        {
            "now": 1000.0,
            "pool": {
                "name": "p",
                "min_size": 0,
                "max_size": 10,
                "tolerance": 0,
                "queues": [{"name": "q", "target_per_instance": 10}],
                "behavior": NO_LIMITS,
            },
            "observation": {
                "queues": [{"name": "q", "visible": case.visible}],
                "fleet": {"desired": case.current, "refresh": case.refresh},
            },
        }
    )
    decision = decide(request)
    assert (decision.desired, decision.limited_by) == (case.desired, case.limited_by)
    held = [line for line in decision.explanation if "instance refresh" in line]
    assert held == ([] if case.says is None else [case.says])


@pytest.mark.parametrize(
    ("outdated", "refresh", "needed"),
    [(2, "none", True), (0, "none", False), (2, "running", False), (2, "unknown", False)],
)
def test_a_refresh_is_started_only_for_outdated_instances_and_none_running(
    outdated: int, refresh: RefreshState, needed: bool
) -> None:
    assert refresh_needed(FleetObservation(desired=3, outdated=outdated, refresh=refresh)) is needed
