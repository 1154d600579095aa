"""`queue-scaler explain` asks the scale service what a tick would decide now: per pool, by name, with
the history it would use, and without changing or writing anything."""

from __future__ import annotations

import pytest

from queue_scaler.scaling.adapters.memory import MemoryLeaving
from queue_scaler.scaling.domain.fleet import LeavingRecord
from queue_scaler.scaling.domain.models import History, Recommendation
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.ports import VersionedHistory
from queue_scaler.scaling.services.scaling import ScaleService
from tests.fakes import FakeFleet, FakeHistory, FakeQueues, RecordingMetrics


def pool(name: str) -> PoolConfig:
    return PoolConfig.model_validate(
        {"name": name, "max_size": 20, "queues": [{"name": f"{name}-jobs", "target_per_instance": 10}]}
    )


def test_given_two_pools_one_without_a_group_when_explained_then_each_is_named_and_nothing_changes() -> None:
    queues, fleet, history, metrics = FakeQueues(), FakeFleet(), FakeHistory(), RecordingMetrics()
    queues.depth.update({"video-jobs": 45, "audio-jobs": 10})
    fleet.desired["video"] = 10
    # A need of 5 from 10, and a recommendation of 8 within the default scale-down window: it holds at 8.
    history.items["video"] = VersionedHistory(History(recommendations=[Recommendation(at=90.0, desired=8)]), 1)
    video, audio = ScaleService(queues, fleet, history, metrics).explain([pool("video"), pool("audio")], now=100.0)
    assert (video.pool, audio.pool) == ("video", "audio")
    assert video.decision is not None and video.decision.desired == 8 and not video.applied
    assert audio.decision is None and audio.error and "not found" in audio.error
    assert fleet.set_calls == [] and history.saves == 0


def test_given_history_ignored_when_explained_then_the_plain_need_is_shown() -> None:
    queues, fleet, history = FakeQueues(), FakeFleet(), FakeHistory()
    queues.depth["video-jobs"] = 45
    fleet.desired["video"] = 10
    history.items["video"] = VersionedHistory(History(recommendations=[Recommendation(at=90.0, desired=8)]), 1)
    service = ScaleService(queues, fleet, history, RecordingMetrics())
    [video] = service.explain([pool("video")], now=100.0, use_history=False)
    assert video.decision is not None and video.decision.desired == 5


def test_given_the_first_pool_without_a_group_when_explained_then_the_next_is_still_decided() -> None:
    queues, fleet = FakeQueues(), FakeFleet()
    queues.depth["video-jobs"] = 45
    fleet.desired["video"] = 0
    audio, video = ScaleService(queues, fleet, FakeHistory(), RecordingMetrics()).explain(
        [pool("audio"), pool("video")], now=100.0
    )
    assert audio.error == "Auto Scaling group 'audio' not found"
    assert video.decision is not None and video.decision.desired == 5


@pytest.mark.parametrize(
    ("name", "expires_at", "desired"),
    [
        ("given a Spot-warned instance of 5 when explained then its replacement is shown", 100.5, 6),
        ("given its record expired at now when explained then nothing is added", 100.0, 5),
    ],
)
def test_leaving_instances_in_the_explanation(name: str, expires_at: float, desired: int) -> None:
    queues, fleet = FakeQueues(), FakeFleet()
    queues.depth["video-jobs"] = 50
    fleet.desired["video"] = 5
    leaving = MemoryLeaving([LeavingRecord(instance_id="video-0", kind="spot", expires_at=expires_at)])
    service = ScaleService(queues, fleet, FakeHistory(), RecordingMetrics(), leaving)
    [video] = service.explain([pool("video")], now=100.0)
    assert video.decision is not None and video.decision.desired == desired
    assert fleet.set_calls == []
