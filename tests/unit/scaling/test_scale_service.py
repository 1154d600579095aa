"""The scale tick's orchestration, over in-memory ports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

from queue_scaler.scaling.adapters.memory import MemoryLeaving
from queue_scaler.scaling.domain.fleet import GroupState, InstanceState, LeavingRecord, fleet_observation
from queue_scaler.scaling.domain.models import FleetObservation, History, Recommendation, ScaleEvent
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.ports import VersionedHistory
from queue_scaler.scaling.services.scaling import PoolOutcome, ScaleService, carry_applied, run_ticks
from queue_scaler.scaling.services.scaling import idle as scaling_idle
from queue_scaler.shared.errors import Throttled
from tests.fakes import FakeFleet, FakeHistory, FakeQueues, RecordingMetrics


def pool(name: str, **more: object) -> PoolConfig:
    return PoolConfig.model_validate(
        {"name": name, "max_size": 20, "queues": [{"name": f"{name}-jobs", "target_per_instance": 10}]} | more
    )


@pytest.fixture
def world() -> tuple[FakeQueues, FakeFleet, FakeHistory, RecordingMetrics, ScaleService]:
    queues, fleet, history, metrics = FakeQueues(), FakeFleet(), FakeHistory(), RecordingMetrics()
    return queues, fleet, history, metrics, ScaleService(queues, fleet, history, metrics)


def test_given_a_burst_on_a_pool_at_zero_when_ticking_then_desired_is_the_full_need(world) -> None:
    queues, fleet, history, metrics, service = world
    queues.depth["video-jobs"] = 120
    fleet.desired["video"] = 0
    [outcome] = service.tick([pool("video")], now=100.0)
    assert (outcome.pool, outcome.applied) == ("video", True) and fleet.set_calls == [("video", 12)]
    stored = history.load("video").history
    assert [(e.at, e.change) for e in stored.scale_events] == [(100.0, 12)]
    assert [(r.at, r.desired) for r in stored.recommendations] == [(100.0, 12)]
    assert metrics.pools["video"] == [{"ScaleActions": 1}]


def test_given_no_change_when_ticking_then_set_desired_is_not_called(world) -> None:
    queues, fleet, _history, _metrics, service = world
    queues.depth["video-jobs"] = 50
    fleet.desired["video"] = 5
    [outcome] = service.tick([pool("video")], now=100.0)
    assert (outcome.pool, outcome.applied) == ("video", False) and fleet.set_calls == []


def test_given_two_pools_one_without_a_group_when_ticking_then_the_other_is_scaled(world) -> None:
    queues, fleet, _history, metrics, service = world
    queues.depth.update({"good-jobs": 30, "broken-jobs": 30})
    fleet.desired["good"] = 0
    broken, good = service.tick([pool("broken"), pool("good")], now=1.0)
    assert broken.error and "not found" in broken.error
    assert good.applied and fleet.set_calls == [("good", 3)]
    assert metrics.counts[("PoolErrors", None)] == 1


def test_given_a_throttled_queue_when_need_falls_then_capacity_is_not_lowered_nor_recorded(world) -> None:
    queues, fleet, history, metrics, service = world
    p = pool(
        "video",
        queues=[{"name": "a", "target_per_instance": 10}, {"name": "b", "target_per_instance": 10}],
        behavior={"scale_down": {"stabilization_window_seconds": 0}},
    )
    queues.errors["b"] = "ThrottlingException"
    fleet.desired["video"] = 6
    [outcome] = service.tick([p], now=1.0)
    assert outcome.decision is not None and outcome.decision.desired == 6
    assert fleet.set_calls == []
    # A partial observation understates need: it must not be remembered for stabilization.
    assert history.load("video").history.recommendations == []
    assert metrics.counts[("QueueReadErrors", None)] == 1


def test_given_set_desired_fails_when_ticking_then_the_scale_event_is_undone_and_counted(world) -> None:
    queues, fleet, history, metrics, service = world
    queues.depth["video-jobs"] = 50
    fleet.desired["video"] = 0
    fleet.fail_set = Throttled("SetDesiredCapacity", "Throttling")
    [outcome] = service.tick([pool("video")], now=7.0)
    assert outcome.error and "Throttling" in outcome.error and not outcome.applied
    assert history.load("video").history.scale_events == []
    assert metrics.counts[("PoolErrors", None)] == 1


def test_given_history_when_ticking_then_it_is_pruned_to_the_longest_window(world) -> None:
    _queues, fleet, history, _metrics, service = world
    fleet.desired["video"] = 0
    for now in (0.0, 200.0, 400.0):
        service.tick([pool("video")], now=now)
    service.flush()
    # The default scale-down window is 300 s: the entry at 0 is older than that at 400.
    assert [r.at for r in history.load("video").history.recommendations] == [200.0, 400.0]


class CountingHistory(FakeHistory):
    loads: int = 0

    def load(self, pool: str) -> VersionedHistory:
        self.loads += 1
        return super().load(pool)

    def save(self, pool: str, history: History, expected_version: int) -> int:
        # MemoryHistory.save checks the version through load: only the service's own reads count.
        loads = self.loads
        try:
            return super().save(pool, history, expected_version)
        finally:
            self.loads = loads


def test_given_steady_ticks_when_nothing_changes_then_history_is_neither_read_again_nor_written() -> None:
    queues, fleet, history, metrics = FakeQueues(), FakeFleet(), CountingHistory(), RecordingMetrics()
    service = ScaleService(queues, fleet, history, metrics)
    queues.depth["video-jobs"] = 50
    fleet.desired["video"] = 5
    for now in (0.0, 10.0, 20.0, 30.0):
        [outcome] = service.tick([pool("video")], now=now)
        assert not outcome.applied
    assert (history.loads, history.saves) == (1, 0)
    # The invocation's end writes what the windows must remember, once.
    service.flush()
    assert history.saves == 1
    assert [r.at for r in history.load("video").history.recommendations] == [0.0, 10.0, 20.0, 30.0]


def test_given_unsaved_recommendations_when_a_change_is_claimed_then_the_flush_writes_nothing_more() -> None:
    queues, fleet, history, metrics = FakeQueues(), FakeFleet(), FakeHistory(), RecordingMetrics()
    service = ScaleService(queues, fleet, history, metrics)
    fleet.desired["video"] = 0
    service.tick([pool("video")], now=0.0)  # nothing to change: held for the flush
    queues.depth["video-jobs"] = 50
    [claimed] = service.tick([pool("video")], now=10.0)
    assert claimed.applied and history.saves == 1
    # The claim wrote everything held: the table is already up to date.
    service.flush()
    assert history.saves == 1
    assert [r.at for r in history.load("video").history.recommendations] == [0.0, 10.0]


def test_given_a_change_claimed_when_the_next_ticks_change_nothing_then_the_history_is_not_read_again() -> None:
    queues, fleet, history, metrics = FakeQueues(), FakeFleet(), CountingHistory(), RecordingMetrics()
    service = ScaleService(queues, fleet, history, metrics)
    queues.depth["video-jobs"] = 50
    fleet.desired["video"] = 0
    outcomes = [service.tick([pool("video")], now=now)[0] for now in (0.0, 10.0, 20.0)]
    assert [o.applied for o in outcomes] == [True, False, False]
    # The claim's write is what the table holds: the invocation goes on from it without reading.
    assert (history.loads, history.saves) == (1, 1)


def test_given_held_recommendations_when_the_need_falls_then_stabilization_still_sees_them() -> None:
    queues, fleet, history, metrics = FakeQueues(), FakeFleet(), FakeHistory(), RecordingMetrics()
    service = ScaleService(queues, fleet, history, metrics)
    queues.depth["video-jobs"] = 50
    fleet.desired["video"] = 5
    service.tick([pool("video")], now=0.0)
    queues.depth["video-jobs"] = 0
    [held] = service.tick([pool("video")], now=100.0)
    assert held.decision is not None and (held.decision.desired, held.decision.limited_by) == (5, "ScaleDownStabilized")
    [released] = service.tick([pool("video")], now=301.0)
    assert released.applied and fleet.set_calls == [("video", 0)]
    # The change was claimed with one write holding every recommendation since the load.
    assert [r.at for r in history.load("video").history.recommendations] == [100.0, 301.0]


def test_given_a_rival_write_when_flushing_then_it_stands_down_and_counts() -> None:
    queues, fleet, history, metrics = FakeQueues(), FakeFleet(), FakeHistory(), RecordingMetrics()
    service = ScaleService(queues, fleet, history, metrics)
    fleet.desired["video"] = 0
    service.tick([pool("video")], now=0.0)
    history.save("video", History(), 0)  # another invocation wrote first
    service.flush()
    assert metrics.counts[("ConcurrentTicks", None)] == 1
    assert history.load("video").history == History()


def test_given_a_history_entry_from_a_clock_ahead_when_ticking_then_it_is_ignored_counted_and_dropped() -> None:
    queues, fleet, history, metrics = FakeQueues(), FakeFleet(), FakeHistory(), RecordingMetrics()
    history.save("video", History(recommendations=[Recommendation(at=3_600.0, desired=10)]), 0)
    service = ScaleService(queues, fleet, history, metrics)
    fleet.desired["video"] = 10
    [outcome] = service.tick([pool("video", behavior={"scale_down": {"stabilization_window_seconds": 60}})], now=0.0)
    # An hour ahead would otherwise hold the fleet of 10 at zero backlog for the hour.
    assert outcome.applied and fleet.set_calls == [("video", 0)]
    assert metrics.counts[("FutureHistoryEntries", None)] == 1
    assert [r.at for r in history.load("video").history.recommendations] == [0.0]


def test_given_two_history_entries_from_a_clock_ahead_when_ticking_then_both_are_counted() -> None:
    queues, fleet, history, metrics = FakeQueues(), FakeFleet(), FakeHistory(), RecordingMetrics()
    ahead = History(
        recommendations=[Recommendation(at=3_600.0, desired=10)], scale_events=[ScaleEvent(at=3_700.0, change=10)]
    )
    history.save("video", ahead, 0)
    fleet.desired["video"] = 10
    ScaleService(queues, fleet, history, metrics).tick([pool("video")], now=0.0)
    assert metrics.counts[("FutureHistoryEntries", None)] == 2


class FakeTime:
    def __init__(self, remaining: float, tick_cost: float = 0.5) -> None:
        self.now = 0.0
        self.deadline = remaining
        self.tick_cost = tick_cost
        self.ticks: list[float] = []

    def tick(self, at: float) -> None:
        self.ticks.append(at)
        self.now += self.tick_cost

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("name", "remaining", "run", "expected"),
    [
        ("given 70 s and a 55 s run when looping then ticks at 0..50", 70.0, 55.0, [0, 10, 20, 30, 40, 50]),
        ("given only 25 s left when looping then the margin stops it early", 25.0, 55.0, [0, 10]),
        ("given a run of 0 when looping then exactly one tick", 70.0, 0.0, [0]),
        (
            "given a run of exactly 50 s when looping then the tick at 50 is the last",
            70.0,
            50.0,
            [0, 10, 20, 30, 40, 50],
        ),
        ("given exactly the margin left after the wait when looping then it ticks again", 18.0, 55.0, [0, 10]),
        ("given 0.5 s less than that when looping then it stops", 17.5, 55.0, [0]),
        ("given ticks longer than the interval when looping then the next starts at once", 70.0, 30.0, [0, 12, 24]),
    ],
)
def test_run_ticks(name: str, remaining: float, run: float, expected: list[float]) -> None:
    clock = FakeTime(remaining, tick_cost=12.0 if "longer" in name else 0.5)
    count = run_ticks(
        tick=clock.tick,
        clock=lambda: clock.now,
        sleep=clock.sleep,
        remaining_seconds=lambda: clock.deadline - clock.now,
        tick_seconds=10,
        run_seconds=run,
        margin_seconds=8,
    )
    assert clock.ticks == expected and count == len(expected)


@pytest.mark.parametrize(
    ("name", "idle_after", "expected"),
    [
        ("given every pool idle at the first tick when looping then it ends after that tick", 1, [0]),
        ("given work that ends at the third tick when looping then it ends there", 3, [0, 10, 20]),
        ("given work throughout when looping then it ticks for the whole run", 99, [0, 10, 20, 30, 40, 50]),
    ],
)
def test_run_ticks_stops_when_idle(name: str, idle_after: int, expected: list[float]) -> None:
    clock = FakeTime(70.0, tick_cost=0.5)
    count = run_ticks(
        tick=clock.tick,
        clock=lambda: clock.now,
        sleep=clock.sleep,
        remaining_seconds=lambda: clock.deadline - clock.now,
        tick_seconds=10,
        run_seconds=55,
        margin_seconds=8,
        stop=lambda: len(clock.ticks) >= idle_after,
    )
    assert clock.ticks == expected and count == len(expected)


@pytest.mark.parametrize(
    ("name", "visible", "in_flight", "desired", "idle"),
    [
        ("given an empty queue and a pool at its need then the tick is idle", 0, 0, 0, True),
        ("given an empty queue and a pool at its minimum of 1 then the tick is idle", 0, 0, 1, True),
        ("given a queued job then the tick is not idle", 3, 0, 1, False),
        ("given a job running then the tick is not idle", 0, 2, 1, False),
        ("given a change applied then the tick is not idle", 40, 0, 0, False),
    ],
)
def test_idle(name: str, visible: int, in_flight: int, desired: int, idle: bool) -> None:
    queues, fleet = FakeQueues(), FakeFleet()
    queues.depth["video-jobs"] = visible
    queues.in_flight["video-jobs"] = in_flight
    fleet.desired["video"] = desired
    config = pool("video", min_size=0 if visible else desired)
    outcomes = ScaleService(queues, fleet, FakeHistory(), RecordingMetrics()).tick([config], now=100.0)
    assert scaling_idle(outcomes) is idle


def test_given_a_pool_that_failed_then_the_tick_is_not_idle() -> None:
    assert scaling_idle([PoolOutcome("video", error="groups unavailable")]) is False


class BrokenLeaving:
    def records(self, instance_ids: Sequence[str]) -> list[LeavingRecord]:
        raise Throttled("BatchGetItem", "ProvisionedThroughputExceededException")


@pytest.mark.parametrize(
    ("name", "leaving", "expected"),
    [
        ("given a Spot-warned instance of 5 when 5 are needed then its replacement is asked for", "spot", 6),
        ("given an expired record when 5 are needed then nothing is added", "expired", 5),
        ("given the records unreadable when 5 are needed then the fleet is still scaled on its backlog", "broken", 5),
    ],
)
def test_leaving_instances_in_the_tick(name: str, leaving: str, expected: int) -> None:
    queues, fleet, history, metrics = FakeQueues(), FakeFleet(), FakeHistory(), RecordingMetrics()
    records = MemoryLeaving(
        [LeavingRecord(instance_id="video-0", kind="spot", expires_at=50.0 if leaving == "expired" else 500.0)]
    )
    service = ScaleService(queues, fleet, history, metrics, BrokenLeaving() if leaving == "broken" else records)
    queues.depth["video-jobs"] = 50
    fleet.desired["video"] = 5
    [outcome] = service.tick([pool("video", behavior={"scale_down": {"stabilization_window_seconds": 0}})], now=100.0)
    assert outcome.decision is not None and outcome.decision.desired == expected
    assert metrics.counts.get(("LeavingReadErrors", None), 0) == (1 if leaving == "broken" else 0)


class UnreachableFleet(FakeFleet):
    def describe(self, groups: Sequence[str]) -> Mapping[str, GroupState]:
        raise Throttled("DescribeAutoScalingGroups", "Throttling")


def test_given_the_groups_cannot_be_described_when_ticking_then_every_pool_fails_and_nothing_moves() -> None:
    queues, fleet, history, metrics = FakeQueues(), UnreachableFleet(), FakeHistory(), RecordingMetrics()
    queues.depth.update({"video-jobs": 120, "audio-jobs": 120})
    outcomes = ScaleService(queues, fleet, history, metrics).tick([pool("video"), pool("audio")], now=1.0)
    reason = "groups unavailable: DescribeAutoScalingGroups: Throttling"
    assert [o.as_dict() for o in outcomes] == [
        {"pool": "video", "applied": False, "error": reason},
        {"pool": "audio", "applied": False, "error": reason},
    ]
    assert fleet.set_calls == [] and history.saves == 0
    # One describe failed: counted once for the stack, and once per pool that was not scaled (in one
    # stack-wide metric: the pools are named in the log lines).
    assert dict(metrics.counts) == {("DescribeGroupsErrors", None): 1, ("PoolErrors", None): 2}


@dataclass
class FailingHistory(FakeHistory):
    """Writes of `failing` fail as DynamoDB throttling does."""

    failing: str = ""

    def save(self, pool: str, history: History, expected_version: int) -> int:
        if pool == self.failing:
            raise Throttled("PutItem", "ProvisionedThroughputExceededException")
        return super().save(pool, history, expected_version)


def test_given_a_history_write_fails_when_flushing_then_it_is_counted_and_the_other_pools_are_written() -> None:
    queues, fleet, history, metrics = FakeQueues(), FakeFleet(), FailingHistory(failing="audio"), RecordingMetrics()
    fleet.desired.update({"audio": 0, "video": 0})
    service = ScaleService(queues, fleet, history, metrics)
    service.tick([pool("audio"), pool("video")], now=5.0)
    service.flush()
    assert history.load("audio") == VersionedHistory(History(), 0)
    assert [r.at for r in history.load("video").history.recommendations] == [5.0]
    # Stack-wide, without a pool dimension: what the ScalerErrorsAlarm watches.
    assert dict(metrics.counts) == {("HistoryWriteErrors", None): 1}
    # What failed is not held over: the next invocation starts from the table, and writes nothing more.
    service.flush()
    assert history.saves == 1


@pytest.mark.parametrize(
    ("name", "earlier", "latest", "applied"),
    [
        ("given a pool changed by an earlier tick then its latest outcome is applied", [True], [False], [True]),
        ("given no earlier change then the latest outcome stands", [False], [False], [False]),
        ("given the latest tick changed it then it is applied", [False], [True], [True]),
        ("given no earlier tick then the latest outcomes stand", [], [False, True], [False, True]),
    ],
)
def test_carry_applied(name: str, earlier: list[bool], latest: list[bool], applied: list[bool]) -> None:
    names = ["video", "audio"]
    before = [PoolOutcome(names[i], applied=a) for i, a in enumerate(earlier)]
    after = carry_applied(before, [PoolOutcome(names[i], applied=a) for i, a in enumerate(latest)])
    assert [(o.pool, o.applied) for o in after] == list(zip(names[: len(applied)], applied, strict=True))


@pytest.mark.parametrize(
    ("name", "states", "leaving", "expected"),
    [
        (
            "given instances serving and booting then each is counted as such",
            ["InService", "InService", "Pending", "Pending:Wait", "Pending:Proceed"],
            frozenset(),
            FleetObservation(desired=5, in_service=2, pending=3),
        ),
        (
            "given a leaving instance in service then it is neither serving nor booting",
            ["InService", "InService", "Pending:Wait"],
            frozenset({"i-0"}),
            FleetObservation(desired=5, in_service=1, pending=1, leaving=1),
        ),
        (
            "given a leaving instance already terminating then it is not counted as leaving",
            ["Terminating:Wait", "InService"],
            frozenset({"i-0"}),
            FleetObservation(desired=5, in_service=1),
        ),
        (
            "given an instance in service marked unhealthy then it is not counted as serving",
            ["InService", "InService:Unhealthy"],
            frozenset(),
            FleetObservation(desired=5, in_service=1),
        ),
    ],
)
def test_the_fleet_observation(
    name: str, states: list[str], leaving: frozenset[str], expected: FleetObservation
) -> None:
    group = GroupState(
        desired=5,
        instances=[
            InstanceState(
                instance_id=f"i-{n}", lifecycle_state=state.split(":Unhealthy")[0], healthy=":Unhealthy" not in state
            )
            for n, state in enumerate(states)
        ],
    )
    assert fleet_observation(group, leaving) == expected
