"""A change that Auto Scaling refused leaves no trace: the next tick decides as if it never happened,
and when the undo itself loses a race, the next tick reads the history afresh instead of acting on a
stale copy."""

from __future__ import annotations

from dataclasses import dataclass

from queue_scaler.scaling.adapters.memory import MemoryHistory
from queue_scaler.scaling.domain.models import History
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.ports import VersionedHistory
from queue_scaler.scaling.services.scaling import ScaleService
from queue_scaler.shared.errors import Throttled
from tests.fakes import FakeFleet, FakeQueues, RecordingMetrics


def pool() -> PoolConfig:
    # Four instances a minute at most: a scale event that stayed in history would hold the next tick.
    return PoolConfig.model_validate(
        {
            "name": "video",
            "max_size": 20,
            "queues": [{"name": "video-jobs", "target_per_instance": 10}],
            "behavior": {
                "scale_up": {
                    "stabilization_window_seconds": 0,
                    "policies": [{"type": "Instances", "value": 4, "period_seconds": 60}],
                }
            },
        }
    )


@dataclass
class RivalHistory(MemoryHistory):
    """Another tick writes the pool's history just before this service's undo, so the undo is stale."""

    rival_before_save: int = 0

    def save(self, pool: str, history: History, expected_version: int) -> int:
        if self.saves + 1 == self.rival_before_save:
            super().save(pool, History(), self.load(pool).version)
        return super().save(pool, history, expected_version)


def scaled_twice(history: MemoryHistory) -> list[tuple[str, int]]:
    queues, fleet = FakeQueues(), FakeFleet()
    queues.depth["video-jobs"] = 120
    fleet.desired["video"] = 0
    service = ScaleService(queues, fleet, history, RecordingMetrics())
    fleet.fail_set = Throttled("SetDesiredCapacity", "Throttling")
    [failed] = service.tick([pool()], now=7.0)
    assert failed.error and not failed.applied
    fleet.fail_set = None
    [retried] = service.tick([pool()], now=8.0)
    assert retried.applied, retried
    return fleet.set_calls


def test_given_a_refused_change_when_the_next_tick_runs_then_its_scale_event_does_not_count() -> None:
    assert scaled_twice(MemoryHistory()) == [("video", 4)]


def test_given_the_undo_lost_a_race_when_the_next_tick_runs_then_it_reads_the_rivals_history() -> None:
    # Save 1 claims the change, save 2 is the undo (the rival writes just before it): it fails.
    history = RivalHistory(rival_before_save=2)
    assert scaled_twice(history) == [("video", 4)]
    assert history.load("video").history.scale_events[-1].at == 8.0


def test_given_a_rival_tick_saved_first_when_the_next_tick_runs_then_it_acts_on_the_rivals_history() -> None:
    queues, fleet, metrics = FakeQueues(), FakeFleet(), RecordingMetrics()
    queues.depth["video-jobs"] = 120
    fleet.desired["video"] = 0
    history = RivalHistory(rival_before_save=1)  # the rival writes just before this tick's claim
    service = ScaleService(queues, fleet, history, metrics)
    [stood_down] = service.tick([pool()], now=7.0)
    assert stood_down.as_dict() == {
        "pool": "video",
        "applied": False,
        "error": "history of pool 'video' changed under this tick",
    }
    assert fleet.set_calls == []
    assert metrics.counts[("ConcurrentTicks", None)] == 1
    [acted] = service.tick([pool()], now=8.0)
    assert acted.applied and fleet.set_calls == [("video", 4)]


class BrokenFleet(FakeFleet):
    broken = True

    def set_desired(self, group: str, desired: int) -> None:
        if group == "video" and self.broken:
            raise RuntimeError("a bug")
        super().set_desired(group, desired)


def test_given_a_bug_in_one_pool_when_ticking_then_it_is_counted_for_that_pool_and_the_others_scale() -> None:
    queues, fleet, metrics = FakeQueues(), BrokenFleet(), RecordingMetrics()
    queues.depth.update({"video-jobs": 120, "audio-jobs": 120})
    fleet.desired.update({"video": 0, "audio": 0})
    audio = PoolConfig.model_validate(
        pool().model_dump() | {"name": "audio", "queues": [{"name": "audio-jobs", "target_per_instance": 10}]}
    )
    broken, scaled = ScaleService(queues, fleet, MemoryHistory(), metrics).tick([pool(), audio], now=7.0)
    assert broken.error and "a bug" in broken.error
    assert scaled.applied and fleet.set_calls == [("audio", 4)]
    assert dict(metrics.counts) == {("PoolErrors", None): 1}


def test_given_unsaved_recommendations_when_a_rival_claims_first_then_the_flush_leaves_the_rivals_history() -> None:
    queues, fleet, metrics = FakeQueues(), FakeFleet(), RecordingMetrics()
    fleet.desired["video"] = 0
    history = MemoryHistory()
    service = ScaleService(queues, fleet, history, metrics)
    [held] = service.tick([pool()], now=7.0)  # nothing to change: its recommendation waits for the flush
    assert held.decision is not None and not held.applied
    history.save("video", History(), 0)  # another invocation writes the pool's history
    queues.depth["video-jobs"] = 120
    [stood_down] = service.tick([pool()], now=8.0)
    assert stood_down.error and fleet.set_calls == []
    service.flush()
    # What this invocation held is older than the rival's history: it is dropped, not written over it.
    assert history.load("video") == VersionedHistory(History(), 1)
    assert dict(metrics.counts) == {("ConcurrentTicks", None): 1}


class UnreadableHistory(MemoryHistory):
    def load(self, pool: str) -> VersionedHistory:
        if pool == "video":
            raise KeyError("version")  # an item edited by hand, as DynamoHistoryStore.load meets it
        return super().load(pool)


def test_given_one_pools_history_is_unreadable_when_ticking_then_that_pool_fails_and_the_others_scale() -> None:
    queues, fleet, metrics = FakeQueues(), FakeFleet(), RecordingMetrics()
    queues.depth.update({"video-jobs": 120, "audio-jobs": 120})
    fleet.desired.update({"video": 0, "audio": 0})
    audio = PoolConfig.model_validate(
        pool().model_dump() | {"name": "audio", "queues": [{"name": "audio-jobs", "target_per_instance": 10}]}
    )
    broken, scaled = ScaleService(queues, fleet, UnreadableHistory(), metrics).tick([pool(), audio], now=7.0)
    assert broken.error == "KeyError: 'version'" and not broken.applied
    assert scaled.applied and fleet.set_calls == [("audio", 4)]
    assert dict(metrics.counts) == {("PoolErrors", None): 1}


def test_given_a_bug_in_one_tick_when_a_rival_writes_before_the_next_then_the_next_acts_on_the_rivals_history() -> None:
    queues, fleet, history = FakeQueues(), BrokenFleet(), MemoryHistory()
    queues.depth["video-jobs"] = 120
    fleet.desired["video"] = 0
    service = ScaleService(queues, fleet, history, RecordingMetrics())
    [broken] = service.tick([pool()], now=7.0)
    assert broken.as_dict() == {"pool": "video", "applied": False, "error": "RuntimeError: a bug"}
    # What this invocation held is not trusted after a bug: the next tick reads the table again.
    history.save("video", History(), history.load("video").version)
    fleet.broken = False
    [acted] = service.tick([pool()], now=8.0)
    assert acted.applied and fleet.set_calls == [("video", 4)]
