"""Auto Scaling's two ways to be ready before the work, for the target-tracking peers: scheduled actions
and predictive scaling, each raising the group's minimum capacity (`CapacityFloor`) under the dynamic
target tracking policy (devkit/sim/policies/target_tracking.py).

A peer gets a feature where queue-scaler is given the same one on the same pool (the pool's `scaler:
signals:`), configured as AWS's docs recommend, so that the comparison is feature for feature:

- **Scheduled actions** for each of the pool's schedules (queue-scaler's `schedule` signal): a recurring
  scheduled action (PutScheduledUpdateGroupAction with `Recurrence` = the schedule's cron expression and
  `TimeZone` = its zone) that sets MinSize to the schedule's minimum at each fire, and a second one that
  sets it back `window_seconds` later. The group then keeps at least that many instances while the
  window lasts; target tracking scales above it and never below it. A schedule's optional `maximum` is
  the same action's MaxSize: while in force target tracking never goes above the lowest maximum, never
  below the highest minimum in force (queue-scaler's `signal_cap` rule).
- **Predictive scaling** where the pool turns queue-scaler's `forecast` on (mode `forecast_and_scale`:
  ForecastAndScale; `forecast_only`: ForecastOnly, which changes no capacity; `off`: no policy), as the
  Amazon EC2 Auto Scaling User Guide ("Predictive scaling for Amazon EC2 Auto Scaling", "How predictive
  scaling works", "Advanced predictive scaling policy using custom metrics") and the API reference
  (PredictiveScalingConfiguration, GetPredictiveScalingForecast) describe it:
  - Metrics (a custom load metric and scaling metric, as the custom-metrics page advises: a load metric
    that "represents the load on an Amazon EC2 Auto Scaling group as a whole, regardless of the group's
    capacity", a scaling metric that is "an average throughput ... per instance metric" inversely
    proportional to capacity): the load is the queues' NumberOfMessagesSent (CloudWatch's count of
    messages sent, exact: the simulated arrivals), per minute; the scaling metric the messages sent per
    minute per instance, with `TargetValue` what one instance serves in a minute: slots_per_instance x 60
    / seconds_per_message (the pool's mean job time).
  - History: the forecast needs at least 24 hours of load data ("A minimum of 24 hours of data is
    required to create the initial forecasts") and reads up to the last 14 days.
  - Forecast: hourly ("Load forecasts are predictions of the hourly load values"; "Capacity forecasts
    are represented as predicted values for the minimum capacity that is needed on an hourly basis,
    based on the hourly load forecast"), for the next 48 hours, updated every 6 hours with the latest
    data. AWS does not publish its model; this one takes, for each hour, the mean load of the same hour
    of day in each past day the data covers (the daily pattern AWS's docs say it looks for), and the
    capacity forecast is that load over the target value, rounded up, at most the group's max size
    (MaxCapacityBreachBehavior HonorMaxCapacity, the default).
  - Scheduling: the capacity forecast for an hour is applied `SchedulingBufferTime` before the hour
    starts (default 300 s: "the forecast says to add capacity at 10:00 AM, and you choose to pre-launch
    instances by 5 minutes. In that case, the instances will be launched at 9:55 AM"), as the group's
    minimum capacity.
  - Only up: in ForecastAndScale "If the forecast expects a decrease in load, predictive scaling will
    not scale in to remove capacity": the forecast is a floor (MinSize); when the next hour's is lower,
    the floor drops and the dynamic policy scales in as it would (target tracking's slow low alarm).
  The floors are applied at the target tracking policy's evaluations (every metric period: 60 s or
  10 s), the one place the model sets the desired capacity.

Sources: https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-predictive-scaling.html,
https://docs.aws.amazon.com/autoscaling/ec2/userguide/predictive-scaling-customized-metric-specification.html,
https://docs.aws.amazon.com/autoscaling/application/userguide/aas-predictive-scaling-how-it-works.html (24 h
of data, up to 14 days, hourly forecast for 48 h updated every 6 h, ForecastOnly / ForecastAndScale, no
scale-in on a forecast drop), https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PredictiveScalingConfiguration.html
(SchedulingBufferTime default 300 s, Mode default ForecastOnly, MaxCapacityBreachBehavior default
HonorMaxCapacity), https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_GetPredictiveScalingForecast.html,
https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-scheduled-scaling.html (scheduled
actions with a recurrence and a time zone).
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.domain.signals.forecast import ForecastSettings
from queue_scaler.scaling.domain.signals.schedule import Schedule, ScheduleSettings

HOUR = 3600.0
DAY = 86400.0
#: "A minimum of 24 hours of data is required to create the initial forecasts."
MIN_HISTORY_SECONDS = DAY
#: "analyzing metric data from up to the past 14 days".
MAX_HISTORY_DAYS = 14
#: "The forecast is updated every 6 hours using the latest CloudWatch data."
UPDATE_SECONDS = 6 * HOUR
#: "Amazon EC2 Auto Scaling only issues forecasts for periods of two days in advance."
HORIZON_SECONDS = 2 * DAY
#: PredictiveScalingConfiguration.SchedulingBufferTime's default.
SCHEDULING_BUFFER_SECONDS = 300.0
_EPSILON = 1e-9


@dataclass(frozen=True)
class Predictive:
    """A predictive scaling policy in ForecastAndScale (ForecastOnly changes no capacity: no floor)."""

    #: Messages one instance serves per minute (the scaling metric's TargetValue).
    target_per_minute: float
    max_size: int
    buffer_seconds: float = SCHEDULING_BUFFER_SECONDS


def load_per_hour(arrivals: Sequence[float], until: float) -> list[float]:
    """The load metric's hourly values (messages sent per minute, averaged over each whole hour) of
    the hours that ended by `until`, from `arrivals` (sorted times)."""
    hours = int(until // HOUR + _EPSILON)
    counts = [0] * hours
    for at in arrivals:
        hour = int(at // HOUR)
        if hour >= hours:
            break
        counts[hour] += 1
    return [c / 60 for c in counts]


def forecast_load(hourly: Sequence[float], hour: int) -> float | None:
    """The load forecast for hour index `hour` from the hourly history `hourly` (hours 0.. len - 1):
    the mean of the same hour of day over the past days the history covers (at most 14); None when
    the history holds less than 24 hours."""
    if len(hourly) * HOUR < MIN_HISTORY_SECONDS - _EPSILON:
        return None
    same = [hourly[h] for k in range(1, MAX_HISTORY_DAYS + 1) if 0 <= (h := hour - 24 * k) < len(hourly)]
    return statistics.fmean(same) if same else None


def capacity_forecast(load: float, predictive: Predictive) -> int:
    """The capacity the load forecast needs: load / TargetValue, rounded up, at most max size
    (HonorMaxCapacity)."""
    return min(predictive.max_size, math.ceil(load / predictive.target_per_minute - _EPSILON))


class CapacityFloor:
    """The group's minimum capacity over time: the scheduled actions' and predictive scaling's (the
    higher; 0 where neither holds)."""

    def __init__(
        self,
        schedules: Sequence[Schedule] = (),
        predictive: Predictive | None = None,
        arrivals: Sequence[float] = (),
    ) -> None:
        self.schedules = list(schedules)
        self.predictive = predictive
        self.arrivals = sorted(arrivals)
        #: Each forecast made so far by the time it was made: {update time: {hour index: capacity}}.
        self._forecasts: dict[float, dict[int, int]] = {}

    def __bool__(self) -> bool:
        return bool(self.schedules) or self.predictive is not None

    def __call__(self, now: float) -> int:
        scheduled = max((s.minimum for s in self.schedules if s.in_force(now) is not None), default=0)
        return max(scheduled, self.predicted(now))

    def cap(self, now: float) -> int | None:
        """The scheduled actions' MaxSize at `now`: the lowest maximum in force, never below the highest
        minimum in force; None where no schedule with a maximum is in force."""
        held = [s for s in self.schedules if s.in_force(now) is not None]
        maxima = [s.maximum for s in held if s.maximum is not None]
        if not maxima:
            return None
        return max(min(maxima), *(s.minimum for s in held))

    def predicted(self, now: float) -> int:
        """Predictive scaling's minimum capacity at `now`: the capacity forecast of the hour that starts
        within the scheduling buffer (or has started), from the latest forecast made by the time its
        action was scheduled; 0 without a policy or a forecast."""
        if self.predictive is None:
            return 0
        hour = int((now + self.predictive.buffer_seconds) // HOUR + _EPSILON)
        acted = hour * HOUR - self.predictive.buffer_seconds
        made = math.floor(max(0.0, acted) / UPDATE_SECONDS + _EPSILON) * UPDATE_SECONDS
        return self.forecast(made).get(hour, 0)

    def forecast(self, made: float) -> dict[int, int]:
        """The capacity forecast made at `made` (an update time) for the next 48 hours, from the load
        data of the hours that ended by then."""
        known = self._forecasts.get(made)
        if known is not None:
            return known
        assert self.predictive is not None, "only a predictive policy forecasts"
        hourly = load_per_hour(self.arrivals[: bisect_right(self.arrivals, made)], made)
        first = int(made // HOUR + _EPSILON)
        capacities: dict[int, int] = {}
        for hour in range(first, first + int(HORIZON_SECONDS // HOUR)):
            load = forecast_load(hourly, hour)
            if load is not None:
                capacities[hour] = capacity_forecast(load, self.predictive)
        self._forecasts[made] = capacities
        return capacities


def capacity_floor(config: PoolConfig, arrivals: Sequence[float]) -> CapacityFloor:
    """The scheduled actions and predictive scaling policy a pool gets from its queue-scaler signals
    (`schedule`: scheduled actions; `forecast` in forecast_and_scale: ForecastAndScale), over the pool's
    arrivals as CloudWatch counts them."""
    schedule = config.signals.get("schedule")
    schedules = list(schedule.schedules) if isinstance(schedule, ScheduleSettings) else []
    forecast = config.signals.get("forecast")
    predictive = None
    if isinstance(forecast, ForecastSettings) and forecast.mode == "forecast_and_scale":
        seconds = config.seconds_per_message
        assert seconds is not None, "PoolConfig refuses a forecast without seconds_per_message"
        predictive = Predictive(target_per_minute=config.slots_per_instance * 60 / seconds, max_size=config.max_size)
    return CapacityFloor(schedules, predictive, arrivals)
