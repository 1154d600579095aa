"""The scale tick and instance refreshes, over in-memory ports: a group with instances of an older
launch template version gets one refresh, started once; while it runs desired is not lowered; a
failure to read or start one is counted (InstanceRefreshErrors, and PoolErrors, which ScalerErrorsAlarm
watches) and never stops the pool from being scaled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from queue_scaler.scaling.domain.fleet import GroupState, InstanceState
from queue_scaler.scaling.domain.models import RefreshState
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.services.scaling import ScaleService
from queue_scaler.shared.errors import AwsCallError, Throttled
from tests.fakes import FakeFleet, FakeHistory, FakeQueues, RecordingMetrics

NEW, OLD = "lt-1:2", "lt-1:1"


@dataclass
class VersionedFleet(FakeFleet):
    """Groups whose instances carry launch template versions, and their instance refreshes."""

    versions: dict[str, list[str]] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    started: list[str] = field(default_factory=list)
    describe_error: AwsCallError | None = None
    start_error: AwsCallError | None = None
    describes: int = 0

    def describe(self, groups: Sequence[str]) -> Mapping[str, GroupState]:
        return {
            g: GroupState(
                desired=self.desired[g],
                launch_template=NEW,
                instances=[
                    InstanceState(instance_id=f"{g}-{i}", lifecycle_state="InService", launch_template=v)
                    for i, v in enumerate(self.versions[g])
                ],
            )
            for g in groups
            if g in self.desired
        }

    def refresh_state(self, group: str, now: float) -> RefreshState:
        self.describes += 1
        if self.describe_error is not None:
            raise self.describe_error
        if group in self.running:
            return "running"
        return "failed" if group in self.failed else "none"

    def start_refresh(self, group: str) -> bool:
        if self.start_error is not None:
            raise self.start_error
        if group in self.running:
            return False
        self.running.add(group)
        self.started.append(group)
        return True


def pool() -> PoolConfig:
    return PoolConfig.model_validate(
        {
            "name": "video",
            "max_size": 20,
            "tolerance": 0,
            "queues": [{"name": "video-jobs", "target_per_instance": 10}],
            "behavior": {"scale_down": {"stabilization_window_seconds": 0, "policies": []}},
        }
    )


def world(versions: list[str], depth: int) -> tuple[VersionedFleet, RecordingMetrics, ScaleService]:
    queues, fleet, metrics = FakeQueues(), VersionedFleet(), RecordingMetrics()
    queues.depth["video-jobs"] = depth
    fleet.desired["video"] = len(versions)
    fleet.versions["video"] = versions
    return fleet, metrics, ScaleService(queues, fleet, FakeHistory(), metrics, refreshes=fleet)


def test_given_outdated_instances_when_ticking_twice_then_one_refresh_is_started_and_counted() -> None:
    fleet, metrics, service = world([OLD, OLD, NEW], depth=30)
    service.tick([pool()], now=10.0)
    service.tick([pool()], now=20.0)
    assert fleet.started == ["video"]
    assert dict(metrics.counts) == {("InstanceRefreshesStarted", None): 1}


def test_given_every_instance_current_when_ticking_then_no_refresh_is_asked_about_or_started() -> None:
    fleet, metrics, service = world([NEW, NEW], depth=20)
    service.tick([pool()], now=10.0)
    assert (fleet.describes, fleet.started) == (0, [])
    assert dict(metrics.counts) == {}


def test_given_a_refresh_running_when_the_need_falls_then_desired_is_held() -> None:
    fleet, _metrics, service = world([OLD, OLD, OLD, NEW], depth=10)
    fleet.running.add("video")
    [outcome] = service.tick([pool()], now=10.0)
    assert outcome.decision is not None and outcome.decision.desired == 4
    assert fleet.set_calls == [] and fleet.started == []
    assert "scale-down to 1 held: instance refresh running; keep 4" in outcome.decision.explanation


def test_given_a_refresh_that_failed_lately_when_ticking_then_none_is_started_and_nothing_is_held() -> None:
    fleet, metrics, service = world([OLD, OLD, OLD, NEW], depth=10)
    fleet.failed.add("video")
    [outcome] = service.tick([pool()], now=10.0)
    # A bad image is not launched and abandoned in a loop; the scale-down the need asks for goes ahead.
    assert fleet.started == [] and dict(metrics.counts) == {}
    assert outcome.applied and fleet.set_calls == [("video", 1)]
    assert outcome.decision is not None
    assert any("the last instance refresh failed" in line for line in outcome.decision.explanation)


def test_given_a_refresh_running_when_the_need_rises_then_the_scale_up_is_applied() -> None:
    fleet, _metrics, service = world([OLD, NEW], depth=50)
    fleet.running.add("video")
    [outcome] = service.tick([pool()], now=10.0)
    assert outcome.applied and fleet.set_calls == [("video", 5)]


def test_given_another_tick_started_the_refresh_when_this_one_starts_it_then_it_is_not_an_error() -> None:
    fleet, metrics, service = world([OLD, NEW], depth=20)

    # Another tick's refresh starts between this tick's describe and its start: AWS answers
    # InstanceRefreshInProgress, which the adapter turns into False.
    def raced(group: str, now: float) -> RefreshState:
        return "none"

    fleet.refresh_state = raced  # type: ignore[method-assign]
    fleet.running.add("video")
    [outcome] = service.tick([pool()], now=10.0)
    assert outcome.error is None and fleet.started == []
    assert dict(metrics.counts) == {}


@pytest.mark.parametrize("where", ["describe", "start"])
def test_given_a_refresh_call_fails_when_ticking_then_it_is_counted_and_the_pool_is_scaled(where: str) -> None:
    fleet, metrics, service = world([OLD, OLD], depth=80)
    error = Throttled("DescribeInstanceRefreshes" if where == "describe" else "StartInstanceRefresh", "Throttling")
    if where == "describe":
        fleet.describe_error = error
    else:
        fleet.start_error = error
    [outcome] = service.tick([pool()], now=10.0)
    assert outcome.error is None and outcome.applied and fleet.set_calls == [("video", 8)]
    assert fleet.started == []
    assert dict(metrics.counts) == {("InstanceRefreshErrors", None): 1, ("PoolErrors", None): 1}


def test_given_the_refresh_state_unreadable_when_the_need_falls_then_desired_is_held() -> None:
    fleet, metrics, service = world([OLD, OLD, OLD], depth=0)
    fleet.describe_error = Throttled("DescribeInstanceRefreshes", "Throttling")
    [outcome] = service.tick([pool()], now=10.0)
    assert outcome.decision is not None and outcome.decision.desired == 3 and fleet.set_calls == []
    assert "scale-down to 0 held: instance refresh state unreadable; keep 3" in outcome.decision.explanation
    assert dict(metrics.counts) == {("InstanceRefreshErrors", None): 1, ("PoolErrors", None): 1}
