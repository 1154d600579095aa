"""The schedule signal: a floor of instances at known busy times (Auto Scaling's scheduled actions).

A pool lists schedules, each a 5-field cron expression (the `Recurrence` of an Auto Scaling scheduled
action: minute hour day-of-month month day-of-week) read in an IANA time zone, a `minimum` and a
`window_seconds`. A schedule is in force from each time its expression fires until `window_seconds`
later, so a window may run past midnight (or the weekend). In force it proposes `minimum` instances,
and is active (it wakes a pool at zero); the pool's need is then at least that, named in the explanation.

The fire times are the local wall-clock times of the expression in the schedule's time zone, as
Auto Scaling and EventBridge Scheduler read them: `0 8 * * MON-FRI` in Europe/Berlin fires at 08:00
Berlin time in winter and in summer. The window is elapsed time from the fire, so a window across a
DST change lasts exactly `window_seconds` (its end's wall-clock time moves by the hour). A fire in
the hour skipped in spring happens when the clocks jump (02:30 fires at 03:00); one in the hour
repeated in autumn happens at both occurrences (croniter's reading, kept the same from every instant).

As a floor it cannot lower what the other signals propose. When its window ends the floor goes, and
the decision's scale-down rules (stabilization, rate limits) take the fleet down as they would after
any drop in need.

An optional `maximum` caps the desired capacity while the schedule is in force, as a scheduled
action's MaxSize: the decision's `signal_cap` rule applies it after the scale rules and before the
pool's and the group's bounds (min_size wins over it). Where several schedules are in force the
lowest maximum caps, never below the highest minimum in force. The recommendation is not capped, so
when the window ends the fleet goes back to what the need is.

Each tick the floor in force (0 when none) is published as the pool's `ScheduleFloor` metric.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from queue_scaler.scaling.domain import signals
from queue_scaler.scaling.domain.models import History, Observation, WorkSample
from queue_scaler.scaling.domain.pool import NAME_PATTERN, PoolConfig
from queue_scaler.scaling.domain.signals import Cap, Proposal
from queue_scaler.shared.domain.text import fmt
from queue_scaler.shared.metric_names import Metric

#: A window longer than a week would overlap the next fire of any expression that fires at all weekly.
MAX_WINDOW_SECONDS = 7 * 24 * 3600
#: Each (expression, zone)'s current fire interval (`Schedule._interval`); cleared when this many are held.
_MAX_INTERVALS = 256
_INTERVALS: dict[tuple[str, str], tuple[datetime, datetime]] = {}


class Schedule(BaseModel):
    """One recurring floor: from each fire of `cron` (in `time_zone`) for `window_seconds`, at least `minimum`."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(description="Named in the explanation")
    cron: str = Field(
        description="5-field cron expression (minute hour day-of-month month day-of-week), as an Auto Scaling "
        "scheduled action's Recurrence: `0 8 * * MON-FRI`"
    )
    time_zone: str = Field(default="UTC", description="IANA time zone the expression is read in: `Europe/Berlin`")
    minimum: Annotated[int, Field(ge=0)] = Field(description="Instances the pool keeps at least while in force")
    maximum: Annotated[int | None, Field(ge=0)] = Field(
        default=None, description="Instances the pool's desired capacity is capped at while in force (none: no cap)"
    )
    window_seconds: Annotated[float, Field(gt=0, le=MAX_WINDOW_SECONDS)] = Field(
        description="How long the schedule stays in force after each fire"
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5:
            raise ValueError(
                f"{value!r} has {len(fields)} field(s); write 5: minute hour day-of-month month day-of-week"
            )
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a valid cron expression (e.g. `0 8 * * MON-FRI`)")
        return " ".join(fields)

    @field_validator("maximum")
    @classmethod
    def _maximum(cls, value: int | None, info: ValidationInfo) -> int | None:
        minimum = info.data.get("minimum")
        if value is not None and minimum is not None and value < minimum:
            raise ValueError(f"{value} is below this schedule's minimum {minimum}; raise it or lower the minimum")
        return value

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. `Europe/Berlin`, `UTC`)") from None
        return value

    def last_fire(self, now: float) -> datetime:
        """The latest fire at or before `now`, in the schedule's time zone."""
        return self._interval(now)[0]

    def _interval(self, now: float) -> tuple[datetime, datetime]:
        """(the latest fire at or before `now`, the fire after it): remembered per expression and zone,
        since every tick asks within the same interval and croniter takes milliseconds per step (the
        simulator ticks days of them)."""
        key = (self.cron, self.time_zone)
        known = _INTERVALS.get(key)
        if known is not None and known[0].timestamp() <= now < known[1].timestamp():
            return known
        fire = self._last_fire(now)
        interval = (fire, croniter(self.cron, fire).get_next(datetime))
        if len(_INTERVALS) >= _MAX_INTERVALS:
            _INTERVALS.clear()
        _INTERVALS[key] = interval
        return interval

    def _last_fire(self, now: float) -> datetime:
        local = datetime.fromtimestamp(now, ZoneInfo(self.time_zone))
        # croniter steps back from the second after `now`, so a fire exactly at `now` counts.
        fire: datetime = croniter(self.cron, local + timedelta(seconds=1)).get_prev(datetime)
        # Stepping back from inside the hour repeated on the fall-back night, croniter lands on that
        # hour's first occurrence, while stepping forward it fires in both: step forward to the latest
        # fire not after `now`, so that every instant sees the same fires (at most one step).
        forward = croniter(self.cron, fire)
        while (following := forward.get_next(datetime)).timestamp() <= now:
            fire = following
        return fire

    def next_fire(self, now: float) -> datetime:
        """The first fire after `now`, in the schedule's time zone."""
        # The fire after the latest one: the same fires whatever instant asks (see last_fire).
        return self._interval(now)[1]

    def in_force(self, now: float) -> tuple[datetime, datetime] | None:
        """The fire and the end (local times) of the window holding `now`, or None when `now` is in no window."""
        fire = self.last_fire(now)
        end = fire.timestamp() + self.window_seconds
        return (fire, datetime.fromtimestamp(end, ZoneInfo(self.time_zone))) if now < end else None

    def describe(self) -> str:
        return f'"{self.name}" ({self.cron} {self.time_zone}'

    def limits(self) -> str:
        """`floor 4`, or `floor 4, maximum 6` with a maximum."""
        return f"floor {self.minimum}" + ("" if self.maximum is None else f", maximum {self.maximum}")


class ScheduleSettings(BaseModel):
    """The schedule signal's settings (`signals.schedule`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedules: Annotated[list[Schedule], Field(min_length=1)] = Field(
        description="The recurring floors (and caps); where several are in force the highest minimum and the "
        "lowest maximum win"
    )

    @field_validator("schedules")
    @classmethod
    def _unique(cls, value: list[Schedule]) -> list[Schedule]:
        seen: set[str] = set()
        for index, schedule in enumerate(value):
            if schedule.name in seen:
                raise ValueError(f"{index}.name: {schedule.name!r} names two schedules; each needs its own name")
            seen.add(schedule.name)
        return value


def _until(fire: datetime, end: datetime) -> str:
    """`10:00`, or `Sat 02:00` when the window ends on another local day than it started."""
    return end.strftime("%H:%M" if end.date() == fire.date() else "%a %H:%M")


class ScheduleSignal:
    """Implements `Signal`: reads no queue and no history, only the clock."""

    name = "schedule"
    settings = ScheduleSettings
    inputs: frozenset[str] = frozenset()

    def check(self, pool: PoolConfig, settings: BaseModel) -> None:
        assert isinstance(settings, ScheduleSettings)
        for index, schedule in enumerate(settings.schedules):
            if schedule.minimum > pool.max_size:
                raise ValueError(
                    f"signals.schedule.schedules.{index}.minimum: {schedule.minimum} is above the pool's "
                    f"max_size {pool.max_size}; lower it or raise max_size"
                )

    def history_seconds(self, settings: BaseModel) -> float:
        return 0.0

    def remember(self, observation: Observation, now: float) -> WorkSample | None:
        return None

    def need(self, pool: PoolConfig, observation: Observation, history: History, now: float) -> Proposal:
        settings = pool.signals[self.name]
        assert isinstance(settings, ScheduleSettings)
        lines: list[str] = []
        floor = 0
        winner: Schedule | None = None
        caps: list[tuple[int, Schedule]] = []
        for schedule in settings.schedules:
            window = schedule.in_force(now)
            if window is None:
                continue
            lines.append(f"schedule {schedule.describe()}, until {_until(*window)}) {schedule.limits()}")
            if winner is None or schedule.minimum > floor:
                floor, winner = schedule.minimum, schedule
            if schedule.maximum is not None:
                caps.append((schedule.maximum, schedule))
        figures = ((Metric.SCHEDULE_FLOOR, float(floor)),)
        if winner is None:
            upcoming = min(settings.schedules, key=lambda s: s.next_fire(now).timestamp())
            fire = upcoming.next_fire(now)
            lines.append(f"schedule: none in force (next: {upcoming.describe()}) at {fire:%a %Y-%m-%d %H:%M})")
            return Proposal(self.name, 0.0, tuple(lines), False, "no schedule in force", figures=figures)
        active = floor > 0
        return Proposal(
            signal=self.name,
            raw_need=float(floor),
            lines=tuple(lines),
            active=active,
            activity=f'schedule "{winner.name}" floor {fmt(floor)} {">" if active else "="} 0',
            figures=figures,
            cap=_cap(min(caps, key=_first, default=None), floor, winner),
        )


def _first(cap: tuple[int, Schedule]) -> int:
    return cap[0]


def _cap(lowest: tuple[int, Schedule] | None, floor: int, winner: Schedule) -> Cap | None:
    """The lowest maximum in force, never below the highest minimum in force (a schedule never caps
    the pool under another schedule's floor)."""
    if lowest is None:
        return None
    maximum, schedule = lowest
    reason = f'schedule "{schedule.name}" maximum {maximum}'
    if maximum >= floor:
        return Cap(maximum, reason)
    return Cap(floor, f'{reason}, raised to schedule "{winner.name}" floor {floor}')


SCHEDULE = ScheduleSignal()
signals.register(SCHEDULE)
