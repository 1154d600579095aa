"""The arrival-rate signal: capacity for the rate work arrives at, with square-root staffing.

Little's law: a pool that receives `rate` messages a second of `seconds_per_message` each keeps
`load = rate x seconds_per_message` slots busy on average. Square-root staffing (Halfin and Whitt,
1981) adds `staffing x sqrt(load)` slots so that arrivals rarely find every slot busy: with Poisson
arrivals, 1 gives about 1 arrival in 4 that waits at all, and waits far shorter than a job. The
proposal is `(load + staffing x sqrt(load)) / slots_per_instance` instances.

SQS counts no arrivals, so the rate is estimated from the counts it does give, over the last
`window_seconds` of the pool's work samples (the history keeps one per decision): what the work
(visible + in flight) grew by, plus what the workers finished meanwhile, `in flight /
seconds_per_message` a second on average:
`rate = (work now - work then) / span + mean(in flight) / seconds_per_message`.
A steady flow with no queue at all still shows its rate: the slots it keeps busy.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from queue_scaler.scaling.domain import signals
from queue_scaler.scaling.domain.models import QUEUE_COUNTS, History, Observation, WorkSample
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.domain.signals import Proposal
from queue_scaler.shared.domain.text import fmt


class ArrivalRateSettings(BaseModel):
    """The arrival-rate signal's settings (`signals.arrival_rate`); it needs the pool's seconds_per_message."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    window_seconds: Annotated[float, Field(ge=10, le=3600)] = Field(
        default=120, description="How far back the rate is measured: longer is steadier, shorter reacts sooner"
    )
    staffing: Annotated[float, Field(ge=0, le=10)] = Field(
        default=1.0, description="Square-root staffing coefficient: slots = load + staffing x sqrt(load)"
    )


def sample(observation: Observation, now: float) -> WorkSample | None:
    """The pool's work at `now`, or None when a queue could not be read (a partial sum would fake a drop)."""
    if any(q.error is not None for q in observation.queues):
        return None
    in_flight = sum(q.in_flight for q in observation.queues)
    return WorkSample(at=now, work=sum(q.visible for q in observation.queues) + in_flight, in_flight=in_flight)


def arrival_rate(samples: list[WorkSample], seconds_per_message: float) -> tuple[float, float]:
    """(messages per second, span in seconds) over `samples`, oldest first, the newest being now.

    One sample alone has no span: its rate is the finishing rate of its running messages."""
    first, last = samples[0], samples[-1]
    span = last.at - first.at
    finishing = sum(s.in_flight for s in samples) / len(samples) / seconds_per_message
    growth = (last.work - first.work) / span if span > 0 else 0.0
    return max(0.0, growth + finishing), span


def instances(
    rate: float, seconds_per_message: float, staffing: float, slots_per_instance: int
) -> tuple[float, float, float]:
    """(load, slots, instances) for work arriving at `rate` a second: Little's law, then square-root staffing."""
    load = rate * seconds_per_message
    slots = load + staffing * math.sqrt(load)
    return load, slots, slots / slots_per_instance


class ArrivalRateSignal:
    """Implements `Signal`."""

    name = "arrival_rate"
    settings = ArrivalRateSettings
    inputs = frozenset({QUEUE_COUNTS})

    def check(self, pool: PoolConfig, settings: BaseModel) -> None:
        if pool.seconds_per_message is None:
            raise ValueError("signals.arrival_rate needs the pool's seconds_per_message (Little's law)")

    def history_seconds(self, settings: BaseModel) -> float:
        assert isinstance(settings, ArrivalRateSettings)
        return settings.window_seconds

    def remember(self, observation: Observation, now: float) -> WorkSample | None:
        """The pool's work now: the rate is measured over these samples."""
        return sample(observation, now)

    def need(self, pool: PoolConfig, observation: Observation, history: History, now: float) -> Proposal:
        settings = pool.signals[self.name]
        assert isinstance(settings, ArrivalRateSettings)
        seconds = pool.seconds_per_message
        assert seconds is not None  # PoolConfig refuses arrival_rate without it
        current = sample(observation, now)
        if current is None:
            unavailable = tuple(q.name for q in observation.queues if q.error is not None)
            line = f"arrival rate: {len(unavailable)} queue(s) unavailable: no rate"
            return Proposal(self.name, 0.0, (line,), False, "arrival rate unknown", unavailable=unavailable)
        horizon = now - settings.window_seconds
        samples = [s for s in history.samples if horizon < s.at < now] + [current]
        rate, span = arrival_rate(samples, seconds)
        load, slots, raw_need = instances(rate, seconds, settings.staffing, pool.slots_per_instance)
        line = (
            f"arrival rate: work {samples[0].work} -> {current.work} in {fmt(span)} s, {current.in_flight} running: "
            f"{fmt(rate)}/s x {fmt(seconds)} s = load {fmt(load)} slot(s); + {fmt(settings.staffing)} x "
            f"sqrt(load) = {fmt(slots)} slot(s) / {pool.slots_per_instance} = {fmt(raw_need)}"
        )
        active = rate > 0
        return Proposal(
            signal=self.name,
            raw_need=raw_need,
            lines=(line,),
            active=active,
            activity=f"arrival rate {fmt(rate)}/s {'>' if active else '='} 0",
            work=current.work,
            # None of it is queue-driven: the rate window already smooths it, and `stabilize_queue_part`
            # remembers only what a queue asked for.
            held=raw_need,
        )


ARRIVAL_RATE = ArrivalRateSignal()
signals.register(ARRIVAL_RATE)
