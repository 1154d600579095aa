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

A long window is steady but sees a burst late: 4,000 jobs in two minutes move a 600 s average by a
fifth of their rate. With `burst_window_seconds`, the same estimate over that shorter window counts
too, less BURST_SIGMAS standard deviations of its arrival count (Poisson: sqrt(count)), so that the
counting noise of a steady flow never raises the need and a real burst asks for its full rate at
once (the boot time is paid once, not once per tick of a growing backlog). The larger rate wins.

Square-root staffing assumes Poisson arrivals, whose count varies as much as its mean. Traffic that
comes in clumps varies more: with `dispersion`, the staffing term is scaled by the window's index of
dispersion (the chi-square of the arrivals between samples against the mean rate, per degree of
freedom; the expected count's variance includes the finishing jobs', which are Poisson too), so a
Poisson flow keeps its headroom and a bursty one gets more: `load + staffing x sqrt(dispersion x load)`.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from queue_scaler.scaling.domain import signals
from queue_scaler.scaling.domain.models import QUEUE_COUNTS, History, Observation, WorkSample
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.domain.signals import Proposal
from queue_scaler.shared.domain.text import fmt

#: A burst window's rate counts only beyond this many standard deviations of its arrival count.
BURST_SIGMAS = 3.0


class ArrivalRateSettings(BaseModel):
    """The arrival-rate signal's settings (`signals.arrival_rate`); it needs the pool's seconds_per_message."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    window_seconds: Annotated[float, Field(ge=10, le=3600)] = Field(
        default=120, description="How far back the rate is measured: longer is steadier, shorter reacts sooner"
    )
    staffing: Annotated[float, Field(ge=0, le=10)] = Field(
        default=1.0, description="Square-root staffing coefficient: slots = load + staffing x sqrt(load)"
    )
    # No 10 s floor, unlike window_seconds: the local cloud divides every duration by its time
    # compression (60), and the burst window must stay below the window it is compressed with.
    burst_window_seconds: Annotated[float | None, Field(gt=0, le=3600)] = Field(
        default=None,
        description="A second, shorter window: the rate is the larger of the two windows' rates, so a "
        "burst is seen within this window while a steady flow is measured over window_seconds. Must "
        "be shorter than window_seconds; none when omitted",
    )

    dispersion: bool = Field(
        default=False,
        description="Scale the staffing term by the arrivals' index of dispersion over the window (1 "
        "for a Poisson flow, more for a bursty one, never below 1): slots = load + staffing x "
        "sqrt(dispersion x load)",
    )

    @model_validator(mode="after")
    def _burst_shorter(self) -> ArrivalRateSettings:
        if self.burst_window_seconds is not None and self.burst_window_seconds >= self.window_seconds:
            raise ValueError(
                f"burst_window_seconds ({self.burst_window_seconds}) must be shorter than window_seconds "
                f"({self.window_seconds})"
            )
        return self


def sample(observation: Observation, now: float) -> WorkSample | None:
    """The pool's work at `now`, or None when a queue could not be read (a partial sum would fake a drop)."""
    if any(q.error is not None for q in observation.queues):
        return None
    in_flight = sum(q.in_flight for q in observation.queues)
    return WorkSample(at=now, work=sum(q.visible for q in observation.queues) + in_flight, in_flight=in_flight)


def dispersion(samples: list[WorkSample], seconds_per_message: float) -> float:
    """The arrivals' index of dispersion over `samples`, oldest first: the chi-square of the arrivals
    between consecutive samples against the window's mean rate, per degree of freedom; 1 for a
    Poisson flow, more for a bursty one, never below 1, and 1 when fewer than two intervals or no
    arrivals tell it."""
    counts: list[tuple[float, float, float]] = []
    for before, after in itertools.pairwise(samples):
        span = after.at - before.at
        finished = (before.in_flight + after.in_flight) / 2 * span / seconds_per_message
        counts.append((max(0.0, after.work - before.work + finished), span, finished))
    total, span = sum(c[0] for c in counts), sum(c[1] for c in counts)
    if len(counts) < 2 or total <= 0:
        return 1.0
    rate = total / span
    # The finishing count is an expectation; the real one is itself Poisson, so its variance is part
    # of what a steady flow shows between samples.
    chi2 = sum((arrived - rate * dt) ** 2 / (rate * dt + finished) for arrived, dt, finished in counts)
    return max(1.0, chi2 / (len(counts) - 1))


def arrival_rate(samples: list[WorkSample], seconds_per_message: float) -> tuple[float, float]:
    """(messages per second, span in seconds) over `samples`, oldest first, the newest being now.

    One sample alone has no span: its rate is the finishing rate of its running messages."""
    first, last = samples[0], samples[-1]
    span = last.at - first.at
    finishing = sum(s.in_flight for s in samples) / len(samples) / seconds_per_message
    growth = (last.work - first.work) / span if span > 0 else 0.0
    return max(0.0, growth + finishing), span


def instances(
    rate: float, seconds_per_message: float, staffing: float, slots_per_instance: int, spread: float = 1.0
) -> tuple[float, float, float]:
    """(load, slots, instances) for work arriving at `rate` a second: Little's law, then square-root
    staffing, its term scaled by the arrivals' index of dispersion `spread` (1: Poisson)."""
    load = rate * seconds_per_message
    slots = load + staffing * math.sqrt(spread * load)
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
        spread = dispersion(samples, seconds) if settings.dispersion else 1.0
        which = "arrival rate"
        if settings.burst_window_seconds is not None:
            recent = [s for s in samples if s.at > now - settings.burst_window_seconds]
            short, short_span = arrival_rate(recent, seconds)
            # Only a rise the counting noise cannot explain: the arrivals' Poisson lower bound.
            arrived = short * short_span
            short = max(0.0, arrived - BURST_SIGMAS * math.sqrt(arrived)) / short_span if short_span > 0 else 0.0
            if short > rate:
                which = f"arrival rate (burst window: {fmt(arrived)} arrived - {fmt(BURST_SIGMAS)} x sqrt)"
                rate, span, samples = short, short_span, recent
        load, slots, raw_need = instances(rate, seconds, settings.staffing, pool.slots_per_instance, spread)
        line = (
            f"{which}: work {samples[0].work} -> {current.work} in {fmt(span)} s, {current.in_flight} running: "
            f"{fmt(rate)}/s x {fmt(seconds)} s = load {fmt(load)} slot(s); + {fmt(settings.staffing)} x "
            f"sqrt({f'dispersion {fmt(spread)} x ' if settings.dispersion else ''}load) = {fmt(slots)} slot(s) / "
            f"{pool.slots_per_instance} = {fmt(raw_need)}"
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
