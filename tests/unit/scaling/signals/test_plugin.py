"""A signal as a plug-in, end to end: a signal over an input kind the product does not read, registered in
this test only, drives a scale tick through the real ScaleService and observation service, its input
read by a fake reader handed over as the composition root would (kind -> reader).

Nothing in the product names this signal or its input: if a service or builder had to change for a new
signal, this test could not be written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field

from queue_scaler.scaling.domain import signals
from queue_scaler.scaling.domain.models import History, Observation, QueueReading, WorkSample
from queue_scaler.scaling.domain.pool import PoolConfig, QueueConfig
from queue_scaler.scaling.domain.signals import Proposal
from queue_scaler.scaling.services.scaling import ScaleService
from queue_scaler.shared.domain.text import fmt
from tests.fakes import FakeFleet, FakeHistory, FakeQueues, RecordingMetrics

AGE = "toy_oldest_age"


class AgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seconds_per_instance: Annotated[float, Field(gt=0)] = 60


class OldestAgeSignal:
    """One instance per `seconds_per_instance` of the oldest message's age, over the pool's queues."""

    name = "toy_oldest_age"
    settings = AgeSettings
    inputs = frozenset({AGE})

    def check(self, pool: PoolConfig, settings: BaseModel) -> None:
        """Any pool can use it."""

    def history_seconds(self, settings: BaseModel) -> float:
        return 0.0

    def remember(self, observation: Observation, now: float) -> WorkSample | None:
        return None

    def need(self, pool: PoolConfig, observation: Observation, history: History, now: float) -> Proposal:
        settings = pool.signals[self.name]
        assert isinstance(settings, AgeSettings)
        ages = observation.readings(AGE)
        unreadable = tuple(q.name for q in pool.queues if q.name not in ages or ages[q.name].error is not None)
        oldest = max((r.value for r in ages.values() if r.value is not None), default=0.0)
        raw_need = oldest / settings.seconds_per_instance
        return Proposal(
            signal=self.name,
            raw_need=raw_need,
            lines=(f"oldest message {fmt(oldest)} s / {fmt(settings.seconds_per_instance)} s = {fmt(raw_need)}",),
            active=oldest > 0,
            activity=f"oldest message {fmt(oldest)} s",
            unavailable=unreadable,
        )


class FakeAges:
    """The reader of AGE: each queue's oldest message age, or an error for the queues named in `broken`."""

    def __init__(self, ages: dict[str, float], broken: frozenset[str] = frozenset()) -> None:
        self.ages = ages
        self.broken = broken
        self.calls: list[list[str]] = []

    def read(self, queues: Sequence[QueueConfig]) -> list[QueueReading]:
        self.calls.append([q.name for q in queues])
        return [
            QueueReading(name=q.name, error="Throttling")
            if q.name in self.broken
            else QueueReading(name=q.name, value=self.ages.get(q.name, 0.0))
            for q in queues
        ]


@pytest.fixture(autouse=True)
def plugged() -> Iterator[None]:
    signals.register(OldestAgeSignal())
    yield
    signals._REGISTRY.pop(OldestAgeSignal.name)


def pool(name: str, signal_names: dict[str, dict[str, float]]) -> PoolConfig:
    return PoolConfig.model_validate(
        {
            "name": name,
            "max_size": 20,
            "queues": [{"name": f"{name}-jobs", "target_per_instance": 10}],
            "behavior": {"scale_down": {"stabilization_window_seconds": 0}},
            "signals": signal_names,
        }
    )


def world(reader: FakeAges | None) -> tuple[FakeQueues, FakeFleet, RecordingMetrics, ScaleService]:
    queues, fleet, metrics = FakeQueues(), FakeFleet(), RecordingMetrics()
    inputs = {AGE: reader} if reader is not None else {}
    return queues, fleet, metrics, ScaleService(queues, fleet, FakeHistory(), metrics, inputs=inputs)


def test_given_the_plugged_signal_when_ticking_then_its_input_is_read_and_its_proposal_wins() -> None:
    ages = FakeAges({"video-jobs": 300.0})
    queues, fleet, _metrics, service = world(ages)
    queues.depth["video-jobs"] = 20  # the backlog alone needs 2
    fleet.desired["video"] = 1
    [outcome] = service.tick([pool("video", {"backlog": {}, "toy_oldest_age": {"seconds_per_instance": 60}})], 100.0)
    assert outcome.decision is not None, outcome.error
    assert (outcome.decision.signal, outcome.decision.desired, outcome.applied) == ("toy_oldest_age", 5, True)
    assert "oldest message 300 s / 60 s = 5" in outcome.decision.explanation
    assert fleet.set_calls == [("video", 5)]
    assert ages.calls == [["video-jobs"]]


def test_given_pools_without_the_signal_when_ticking_then_its_input_is_read_only_for_the_pools_using_it() -> None:
    ages = FakeAges({"video-jobs": 120.0, "audio-jobs": 600.0})
    _queues, fleet, _metrics, service = world(ages)
    fleet.desired.update({"video": 0, "audio": 0})
    video, audio = service.tick([pool("video", {"toy_oldest_age": {}}), pool("audio", {"backlog": {}})], 100.0)
    assert ages.calls == [["video-jobs"]]
    assert video.decision is not None and video.decision.desired == 2
    assert audio.decision is not None and audio.decision.desired == 0


def test_given_its_input_unreadable_when_ticking_then_the_pool_does_not_scale_down_and_the_error_is_counted() -> None:
    _queues, fleet, metrics, service = world(FakeAges({}, broken=frozenset({"video-jobs"})))
    fleet.desired["video"] = 4
    [outcome] = service.tick([pool("video", {"toy_oldest_age": {}})], 100.0)
    assert outcome.decision is not None and outcome.decision.desired == 4
    assert outcome.decision.unavailable_queues == ["video-jobs"]
    assert metrics.counts[("QueueReadErrors", None)] == 1
    assert fleet.set_calls == []


def test_given_no_reader_for_its_input_when_ticking_then_the_pool_is_not_scaled_and_says_why() -> None:
    _queues, fleet, metrics, service = world(None)
    fleet.desired["video"] = 4
    [outcome] = service.tick([pool("video", {"toy_oldest_age": {}})], 100.0)
    assert outcome.error == f"no reader for input(s) {[AGE]} its signals need"
    assert metrics.counts[("PoolErrors", None)] == 1
    assert fleet.set_calls == []
