"""What the lifecycle function reports for an event it does not act on: the instance, no action, and
why, so that an operator reading the invocation's result can tell a foreign instance from a bug."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.unit.lifecycle.test_lifecycle_service import T0, World, world  # noqa: F401 - the fixture


@dataclass
class Case:
    name: str
    sample: str
    detail: dict[str, Any]
    instance_id: str
    reason: str


CASES = [
    Case(
        "given a spot warning for an instance outside our groups then it reports why it is ignored",
        "spot-interruption.json",
        {"instance-id": "i-not-ours"},
        "i-not-ours",
        "not an instance of this stack's groups",
    ),
    Case(
        "given a rebalance recommendation for an instance outside our groups then it reports why it is ignored",
        "rebalance-recommendation.json",
        {"instance-id": "i-not-ours"},
        "i-not-ours",
        "not an instance of this stack's groups",
    ),
    Case(
        "given a hook of another group then it reports the group",
        "terminate.json",
        {"AutoScalingGroupName": "someone-elses", "EC2InstanceId": "i-theirs"},
        "i-theirs",
        "group 'someone-elses' is not one of this stack's",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_ignored_report(world: World, case: Case) -> None:  # noqa: F811 - the fixture
    assert world.handle(case.sample, T0, **case.detail) == [
        {"instance_id": case.instance_id, "action": "-", "step": "ignored", "reason": case.reason}
    ]
    assert world.metrics.counts[("LifecycleEventsIgnored", None)] == 1
    assert world.store.items == {} and world.commands.sent == []
