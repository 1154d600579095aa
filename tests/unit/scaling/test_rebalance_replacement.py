"""One replacement per leaving instance: counting a group's instances through a rebalance recommendation.

`RebalancingGroup` is ports.Fleet with Auto Scaling's own rules for what matters here: desired capacity
is met by launching or terminating instances, and, with Capacity Rebalancing, a rebalance
recommendation launches a replacement at once (above desired for a while) and terminates the old
instance once the replacement is in service. The scaler ticks throughout; the LifecycleFunction's
record of the recommendation is in the actions table (MemoryLeaving).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from queue_scaler.scaling.adapters.memory import MemoryLeaving
from queue_scaler.scaling.domain.fleet import GroupState, InstanceState, LeavingRecord
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.services.scaling import ScaleService
from tests.fakes import FakeHistory, FakeQueues, RecordingMetrics

GROUP = "video"


@dataclass
class RebalancingGroup:
    desired: int
    capacity_rebalance: bool
    instances: list[str] = field(default_factory=list)
    launched: int = 0

    def __post_init__(self) -> None:
        self._converge()

    def _launch(self) -> None:
        self.instances.append(f"i-{self.launched}")
        self.launched += 1

    def _converge(self) -> None:
        while len(self.instances) < self.desired:
            self._launch()
        while len(self.instances) > self.desired:
            self.instances.pop()  # never the at-risk one in these timelines: it is first

    def describe(self, groups: Sequence[str]) -> Mapping[str, GroupState]:
        states = [InstanceState(instance_id=i, lifecycle_state="InService") for i in self.instances]
        return {GROUP: GroupState(desired=self.desired, instances=states, capacity_rebalance=self.capacity_rebalance)}

    def set_desired(self, group: str, desired: int) -> None:
        self.desired = desired
        self._converge()

    def recommend_rebalance(self, instance: str) -> None:
        if self.capacity_rebalance:
            self._launch()  # the replacement, launched before the at-risk instance goes

    def replaced(self, instance: str) -> None:
        """The replacement is in service: Auto Scaling terminates the at-risk instance (drained by its hook)."""
        self.instances.remove(instance)
        self._converge()


def test_given_capacity_rebalancing_when_an_instance_is_recommended_for_rebalance_then_one_replacement() -> None:
    queues, history, metrics = FakeQueues(), FakeHistory(), RecordingMetrics()
    group = RebalancingGroup(desired=5, capacity_rebalance=True)
    leaving = MemoryLeaving()
    service = ScaleService(queues, group, history, metrics, leaving)
    config = PoolConfig.model_validate(
        {"name": GROUP, "max_size": 20, "queues": [{"name": "video-jobs", "target_per_instance": 10}]}
    )
    queues.depth["video-jobs"] = 50  # five instances' worth, throughout
    counts: list[int] = []

    def tick(now: float) -> None:
        service.tick([config], now=now)
        counts.append(len(group.instances))

    tick(100.0)
    at_risk = group.instances[0]
    group.recommend_rebalance(at_risk)
    leaving.stored.append(LeavingRecord(instance_id=at_risk, kind="rebalance", expires_at=10_000.0))
    for now in (110.0, 120.0, 130.0):
        tick(now)
    group.replaced(at_risk)
    for now in (140.0, 150.0, 1200.0):  # past the scale-down window: nothing is left to shed
        tick(now)

    assert max(counts) == 6, counts  # the one replacement, while the at-risk instance drains
    assert counts[-3:] == [5, 5, 5], counts  # no second replacement kept for the scale-down window
    assert group.desired == 5 and group.launched == 6


@pytest.mark.parametrize("capacity_rebalance", [True, False])
def test_given_a_rebalance_record_when_observed_then_only_a_group_without_capacity_rebalancing_counts_it_leaving(
    capacity_rebalance: bool,
) -> None:
    group = RebalancingGroup(desired=3, capacity_rebalance=capacity_rebalance)
    [state] = group.describe([GROUP]).values()
    assert state.replaced_by_scaler() == ([] if capacity_rebalance else ["i-0", "i-1", "i-2"])
