"""The forecast signal: a seasonal floor, one boot time ahead of the work (AWS predictive scaling's idea).

The arrivals at the moment the instances launched now would be ready (`now + lead_seconds`, the boot
time) are forecast from the same moment in past periods: the same time of week when the history
reaches back two weeks, else the same time of day in each past day it holds. In each past period the
arrival rate over `window_seconds` around that moment is measured from the pool's work samples as the
arrival_rate signal measures it (`arrival_rate.arrival_rate`); the forecast is their mean, its error
their spread (population standard deviation). The need is the arrival_rate signal's: Little's law and
square-root staffing over the forecast rate (`arrival_rate.instances`).

As AWS's predictive scaling, it needs a day of history (none: no floor, and the explanation says so),
only raises the need (a proposal is a floor under the other signals), and never scales in by itself:
when the forecast drops, the decision's scale-down rules (stabilization, rate limits) apply as to any
drop. Modes: `off`; `forecast_only` (the forecast is explained, nothing proposed: AWS's ForecastOnly);
`forecast_and_scale`.

In both modes other than `off`, a forecast's figures are published per pool each tick
(`shared.metric_names`): the forecast rate, its error, the floor it makes (instances, unrounded) and
the instances it added to the need over the other signals (0 in `forecast_only`, which adds none).
With too little history there is no forecast and nothing is published for it.

The history keeps work samples for `history_days` days plus one window; beyond the last hour it keeps
one per SAMPLE_SPACING_SECONDS (`History.record`), which is what makes two weeks fit the history's one
DynamoDB item.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from queue_scaler.scaling.domain import signals
from queue_scaler.scaling.domain.models import QUEUE_COUNTS, SAMPLE_SPACING_SECONDS, History, Observation, WorkSample
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.domain.signals import Proposal
from queue_scaler.scaling.domain.signals.arrival_rate import arrival_rate, instances, sample
from queue_scaler.shared.domain.text import fmt
from queue_scaler.shared.metric_names import Metric

DAY = 86400.0
WEEK = 7 * DAY
#: The longest look-back: two weeks give the same time of week twice.
MAX_HISTORY_DAYS = 14

Mode = Literal["off", "forecast_only", "forecast_and_scale"]


class ForecastSettings(BaseModel):
    """The forecast signal's settings (`signals.forecast`); it needs the pool's seconds_per_message."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    mode: Mode = Field(
        default="forecast_only",
        description="off; forecast_only (explain, propose nothing: AWS's ForecastOnly, the default); "
        "forecast_and_scale",
    )
    lead_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=180, description="How far ahead to forecast: the pool's boot time (60-180 s cold in the design)"
    )
    window_seconds: Annotated[float, Field(ge=2 * SAMPLE_SPACING_SECONDS, le=3600)] = Field(
        default=900, description="The span around the same moment of each past period the rate is measured over"
    )
    history_days: Annotated[int, Field(ge=1, le=MAX_HISTORY_DAYS)] = Field(
        default=MAX_HISTORY_DAYS, description="How many past days the forecast reads (14: the same time of week)"
    )
    staffing: Annotated[float, Field(ge=0, le=10)] = Field(
        default=1.0, description="Square-root staffing over the forecast load, as the arrival_rate signal's"
    )


def _at(entry: WorkSample) -> float:
    return entry.at


def seasonal_rates(
    samples: list[WorkSample], target: float, settings: ForecastSettings, seconds_per_message: float
) -> tuple[str, list[float]]:
    """The period used (`week` or `day`) and the arrival rate around `target` in each past period the
    samples cover (most recent first); no rates when they do not reach a whole period back."""
    if not samples:
        return "day", []
    oldest = samples[0].at
    half = settings.window_seconds / 2
    weekly = settings.history_days >= MAX_HISTORY_DAYS and oldest <= target - 2 * WEEK - half
    period, count, name = (WEEK, 2, "week") if weekly else (DAY, settings.history_days, "day")
    rates: list[float] = []
    for k in range(1, count + 1):
        centre = target - k * period
        if centre - half < oldest:
            break
        # The samples are in time order (the history appends them): a bisection, not a scan per period,
        # keeps a 14-day history cheap at every tick (the simulator runs days of them).
        around = samples[bisect_left(samples, centre - half, key=_at) : bisect_right(samples, centre + half, key=_at)]
        if len(around) >= 2:
            rates.append(arrival_rate(around, seconds_per_message)[0])
    return name, rates


class ForecastSignal:
    """Implements `Signal`."""

    name = "forecast"
    settings = ForecastSettings
    inputs = frozenset({QUEUE_COUNTS})

    def check(self, pool: PoolConfig, settings: BaseModel) -> None:
        if pool.seconds_per_message is None:
            raise ValueError("signals.forecast needs the pool's seconds_per_message (Little's law)")

    def history_seconds(self, settings: BaseModel) -> float:
        assert isinstance(settings, ForecastSettings)
        if settings.mode == "off":
            return 0.0
        # The farthest sample read: a window's half before the same moment `history_days` ago (a full
        # window, since the moment is `lead_seconds` ahead of now).
        return settings.history_days * DAY + settings.window_seconds

    def remember(self, observation: Observation, now: float) -> WorkSample | None:
        """The pool's work now: the past periods' rates are measured over these samples."""
        return sample(observation, now)

    def need(self, pool: PoolConfig, observation: Observation, history: History, now: float) -> Proposal:
        settings = pool.signals[self.name]
        assert isinstance(settings, ForecastSettings)
        seconds = pool.seconds_per_message
        assert seconds is not None  # PoolConfig refuses forecast without it
        if settings.mode == "off":
            return Proposal(self.name, 0.0, ("forecast: off",), False, "forecast off")
        target = now + settings.lead_seconds
        past = history.samples[: bisect_left(history.samples, now, key=_at)]
        period, rates = seasonal_rates(past, target, settings, seconds)
        if not rates:
            held_hours = (now - past[0].at) / 3600 if past else 0.0
            needed_hours = (DAY + settings.window_seconds / 2 - settings.lead_seconds) / 3600
            line = (
                f"forecast: {fmt(held_hours)} h of work samples, needs {fmt(needed_hours)} h (a day before "
                f"now + {fmt(settings.lead_seconds)} s, with its window): no floor"
            )
            return Proposal(self.name, 0.0, (line,), False, "forecast: too little history")
        rate = statistics.fmean(rates)
        error = statistics.pstdev(rates)
        load, slots, raw_need = instances(rate, seconds, settings.staffing, pool.slots_per_instance)
        each = ", ".join(f"{fmt(r)}" for r in rates)
        line = (
            f"forecast: {fmt(rate)}/s ± {fmt(error)}/s at now + {fmt(settings.lead_seconds)} s, from the same "
            f"time of {period} in {len(rates)} past {period}(s) ({each}/s): x {fmt(seconds)} s = load {fmt(load)} "
            f"slot(s); + {fmt(settings.staffing)} x sqrt(load) = {fmt(slots)} slot(s) / {pool.slots_per_instance} "
            f"= floor {fmt(raw_need)}"
        )
        figures = (
            (Metric.FORECAST_ARRIVAL_RATE, rate),
            (Metric.FORECAST_ERROR, error),
            (Metric.FORECAST_CAPACITY, round(raw_need, 6)),
        )
        if settings.mode == "forecast_only":
            only = f"{line} (forecast_only: proposes nothing)"
            return Proposal(
                self.name, 0.0, (only,), False, "forecast only", figures=figures, added=Metric.FORECAST_ADDED
            )
        active = raw_need > 0
        # None of it is `held`: its recommendations are remembered whole, so when the forecast drops the
        # scale-down window bridges it like any drop in need.
        return Proposal(
            signal=self.name,
            raw_need=raw_need,
            lines=(line,),
            active=active,
            activity=f"forecast {fmt(rate)}/s {'>' if active else '='} 0",
            figures=figures,
            added=Metric.FORECAST_ADDED,
        )


FORECAST = ForecastSignal()
signals.register(FORECAST)
