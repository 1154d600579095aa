"""The schedule signal: cron floors in a time zone, windows across midnight and DST, and its validation.

Given / When / Then in each case's name. Times are written in the schedule's local time and turned into
the epoch seconds a decision is given, so each case reads as the operator would check it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from queue_scaler.scaling.domain.decision import decide_pool
from queue_scaler.scaling.domain.models import History, LimitedBy, Observation, Recommendation
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.domain.signals.schedule import SCHEDULE
from queue_scaler.shared.metric_names import Metric

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
MORNING = {"name": "weekday-morning", "cron": "0 8 * * MON-FRI", "minimum": 4, "window_seconds": 7200}


def at(text: str, zone: str = BERLIN) -> float:
    """Epoch seconds of local time `text` (`2026-12-07 08:30`) in `zone`."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone)).timestamp()


def pool(*schedules: dict[str, Any], max_size: int = 20) -> PoolConfig:
    return PoolConfig.model_validate(
        {
            "name": "p",
            "max_size": max_size,
            "queues": [{"name": "q", "target_per_instance": 10}],
            "signals": {"backlog": {}, "schedule": {"schedules": list(schedules)}},
        }
    )


def seen(visible: int = 0, desired: int = 0) -> Observation:
    return Observation.model_validate(
        {"queues": [{"name": "q", "visible": visible}], "fleet": {"desired": desired, "in_service": desired}}
    )


def berlin(**more: Any) -> dict[str, Any]:
    return {**MORNING, "time_zone": BERLIN, **more}


@dataclass(frozen=True)
class Case:
    name: str
    schedules: tuple[dict[str, Any], ...]
    now: float
    floor: float
    line: str


CASES = [
    Case(
        "given a weekday 08:00 Berlin schedule, when it is Monday 08:30 in Berlin, then the floor is in force",
        (berlin(),),
        at("2026-12-07 08:30"),
        4.0,
        'schedule "weekday-morning" (0 8 * * MON-FRI Europe/Berlin, until 10:00) floor 4',
    ),
    Case(
        "given the same schedule, when it is exactly 08:00, then the fire itself is in force",
        (berlin(),),
        at("2026-12-07 08:00"),
        4.0,
        'schedule "weekday-morning" (0 8 * * MON-FRI Europe/Berlin, until 10:00) floor 4',
    ),
    Case(
        "given a 2 h window, when it is exactly 10:00, then the window has ended",
        (berlin(),),
        at("2026-12-07 10:00"),
        0.0,
        'schedule: none in force (next: "weekday-morning" (0 8 * * MON-FRI Europe/Berlin) at Tue 2026-12-08 08:00)',
    ),
    Case(
        "given 07:59 Berlin, which is 06:59 UTC, when proposing, then not yet in force (the zone is applied)",
        (berlin(),),
        at("2026-12-07 07:59"),
        0.0,
        'schedule: none in force (next: "weekday-morning" (0 8 * * MON-FRI Europe/Berlin) at Mon 2026-12-07 08:00)',
    ),
    Case(
        "given MON-FRI, when it is Saturday 08:30, then no floor",
        (berlin(),),
        at("2026-12-12 08:30"),
        0.0,
        'schedule: none in force (next: "weekday-morning" (0 8 * * MON-FRI Europe/Berlin) at Mon 2026-12-14 08:00)',
    ),
    Case(
        "given a UTC schedule, when 08:30 UTC, then in force (UTC is the default zone)",
        ({**MORNING},),
        at("2026-12-07 08:30", "UTC"),
        4.0,
        'schedule "weekday-morning" (0 8 * * MON-FRI UTC, until 10:00) floor 4',
    ),
    Case(
        "given Friday 22:00 with a 4 h window, when Saturday 01:00, then in force across midnight",
        (berlin(name="night", cron="0 22 * * FRI", window_seconds=4 * 3600),),
        at("2026-12-12 01:00"),
        4.0,
        'schedule "night" (0 22 * * FRI Europe/Berlin, until Sat 02:00) floor 4',
    ),
    Case(
        "given Friday 22:00 with a 4 h window, when Saturday 02:00, then it has ended",
        (berlin(name="night", cron="0 22 * * FRI", window_seconds=4 * 3600),),
        at("2026-12-12 02:00"),
        0.0,
        'schedule: none in force (next: "night" (0 22 * * FRI Europe/Berlin) at Fri 2026-12-18 22:00)',
    ),
    Case(
        "given a Berlin 08:00 schedule, when 08:30 on the first summer-time Monday (UTC+2), then in force",
        (berlin(),),
        at("2026-03-30 08:30"),
        4.0,
        'schedule "weekday-morning" (0 8 * * MON-FRI Europe/Berlin, until 10:00) floor 4',
    ),
    Case(
        "given a Berlin 08:00 schedule, when 07:30 summer time (06:30 UTC, 08:00 UTC+1), then not yet",
        (berlin(),),
        at("2026-03-30 07:30"),
        0.0,
        'schedule: none in force (next: "weekday-morning" (0 8 * * MON-FRI Europe/Berlin) at Mon 2026-03-30 08:00)',
    ),
    Case(
        "given a window across the spring-forward night, when 04:30 local, then it ended after 4 h elapsed",
        (berlin(name="night", cron="0 23 * * SAT", window_seconds=4 * 3600),),
        at("2026-03-29 04:30"),
        0.0,
        'schedule: none in force (next: "night" (0 23 * * SAT Europe/Berlin) at Sat 2026-04-04 23:00)',
    ),
    Case(
        "given a window across the spring-forward night, when 03:30 local (3.5 h elapsed), then in force",
        (berlin(name="night", cron="0 23 * * SAT", window_seconds=4 * 3600),),
        at("2026-03-29 03:30"),
        4.0,
        'schedule "night" (0 23 * * SAT Europe/Berlin, until Sun 04:00) floor 4',
    ),
    Case(
        "given a window across the fall-back night, when 01:30 local (3.5 h elapsed), then it ends at 02:00",
        (berlin(name="night", cron="0 23 * * SAT", window_seconds=4 * 3600),),
        at("2026-10-25 01:30"),
        4.0,
        'schedule "night" (0 23 * * SAT Europe/Berlin, until Sun 02:00) floor 4',
    ),
    Case(
        "given 02:30 daily, when 03:05 on the spring-forward night, then it fired as the clocks jumped to 03:00",
        (berlin(name="early", cron="30 2 * * *", window_seconds=600),),
        at("2026-03-29 03:05"),
        4.0,
        'schedule "early" (30 2 * * * Europe/Berlin, until 03:10) floor 4',
    ),
    Case(
        "given 02:30 daily, when 02:35 in the first pass of the fall-back hour (UTC+2), then in force",
        (berlin(name="early", cron="30 2 * * *", window_seconds=600),),
        datetime(2026, 10, 25, 2, 35, tzinfo=ZoneInfo(BERLIN), fold=0).timestamp(),
        4.0,
        'schedule "early" (30 2 * * * Europe/Berlin, until 02:40) floor 4',
    ),
    Case(
        "given 02:30 daily, when 02:35 in the repeated fall-back hour (UTC+1), then it fired again",
        (berlin(name="early", cron="30 2 * * *", window_seconds=600),),
        datetime(2026, 10, 25, 2, 35, tzinfo=ZoneInfo(BERLIN), fold=1).timestamp(),
        4.0,
        'schedule "early" (30 2 * * * Europe/Berlin, until 02:40) floor 4',
    ),
    Case(
        "given 02:30 daily, when 02:45 in the repeated fall-back hour, then its second window has ended",
        (berlin(name="early", cron="30 2 * * *", window_seconds=600),),
        datetime(2026, 10, 25, 2, 45, tzinfo=ZoneInfo(BERLIN), fold=1).timestamp(),
        0.0,
        'schedule: none in force (next: "early" (30 2 * * * Europe/Berlin) at Mon 2026-10-26 02:30)',
    ),
    Case(
        "given New York 09:00 weekdays, when 09:15 EDT after the March change, then in force",
        ({**MORNING, "cron": "0 9 * * MON-FRI", "time_zone": NEW_YORK},),
        at("2026-03-09 09:15", NEW_YORK),
        4.0,
        'schedule "weekday-morning" (0 9 * * MON-FRI America/New_York, until 11:00) floor 4',
    ),
    Case(
        "given New York 09:00 weekdays, when 09:15 EST after the November change, then in force",
        ({**MORNING, "cron": "0 9 * * MON-FRI", "time_zone": NEW_YORK},),
        at("2026-11-02 09:15", NEW_YORK),
        4.0,
        'schedule "weekday-morning" (0 9 * * MON-FRI America/New_York, until 11:00) floor 4',
    ),
    Case(
        "given two schedules in force, when proposing, then the highest minimum is the floor",
        (berlin(), berlin(name="peak", cron="30 8 * * *", minimum=9, window_seconds=600)),
        at("2026-12-07 08:35"),
        9.0,
        'schedule "peak" (30 8 * * * Europe/Berlin, until 08:40) floor 9',
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_schedule_proposal(case: Case) -> None:
    proposal = SCHEDULE.need(pool(*case.schedules), seen(), History(), case.now)
    assert proposal.signal == "schedule"
    assert proposal.raw_need == case.floor
    assert proposal.active is (case.floor > 0)
    assert case.line in proposal.lines
    assert (proposal.held, proposal.unavailable, proposal.backlog) == (0.0, (), 0)


def test_given_a_floor_with_no_work_when_the_pool_is_at_zero_then_it_wakes_and_names_the_schedule() -> None:
    decision = decide_pool(at("2026-12-07 08:01"), pool(berlin()), seen(), History())
    assert (decision.desired, decision.signal) == (4, "schedule")
    assert "signals: backlog 0, schedule 4; largest: schedule" in decision.explanation
    woken = 'from zero: schedule "weekday-morning" floor 4 > 0, recommend 4'
    assert any(woken in line for line in decision.explanation)


def test_given_a_floor_below_the_backlog_need_when_deciding_then_the_backlog_wins() -> None:
    decision = decide_pool(at("2026-12-07 08:01"), pool(berlin()), seen(visible=70, desired=4), History())
    assert (decision.desired, decision.signal) == (7, "backlog")


def test_given_the_window_ended_when_deciding_then_the_scale_down_window_holds_the_floor_first() -> None:
    # The floor's recommendations are in the history like any other: its end is a drop in need, which
    # the scale-down stabilization window (300 s by default) bridges before the fleet goes down.
    end = at("2026-12-07 10:00")
    remembered = History(recommendations=[Recommendation(at=end - 60, desired=4)])
    held = decide_pool(end + 10, pool(berlin()), seen(desired=4), remembered)
    assert (held.desired, held.limited_by) == (4, LimitedBy.SCALE_DOWN_STABILIZED)
    later = decide_pool(end + 300, pool(berlin()), seen(desired=4), remembered)
    assert later.desired == 0


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"cron": "0 8 * *"}, "schedules.0.cron"),
        ({"cron": "0 8 * * * 2026"}, "has 6 field(s); write 5"),
        ({"cron": "0 25 * * *"}, "is not a valid cron expression"),
        ({"cron": "0 8 * * FUNDAY"}, "is not a valid cron expression"),
        ({"time_zone": "Europe/Atlantis"}, "schedules.0.time_zone"),
        ({"time_zone": "Mars/Olympus"}, "is not an IANA time zone"),
        ({"minimum": -1}, "schedules.0.minimum"),
        ({"window_seconds": 0}, "schedules.0.window_seconds"),
        ({"window_seconds": 8 * 24 * 3600}, "schedules.0.window_seconds"),
        ({"name": "two words"}, "schedules.0.name"),
        ({"minimum": 21}, "signals.schedule.schedules.0.minimum: 21 is above the pool's max_size 20"),
        ({"maximum": 3}, "schedules.0.maximum"),
        ({"maximum": 3}, "3 is below this schedule's minimum 4; raise it or lower the minimum"),
        ({"maximum": -1}, "schedules.0.maximum"),
    ],
    ids=[
        "4 fields",
        "6 fields",
        "hour 25",
        "unknown day name",
        "unknown zone named",
        "unknown zone said",
        "negative minimum",
        "no window",
        "window over a week",
        "bad name",
        "minimum above max_size",
        "maximum below minimum named",
        "maximum below minimum said",
        "negative maximum",
    ],
)
def test_given_a_bad_schedule_when_validating_then_the_error_names_the_field(
    schedule: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pool(berlin(**schedule))


def test_given_two_schedules_of_one_name_when_validating_then_refused() -> None:
    with pytest.raises(ValidationError, match=r"schedules: .*1\.name: 'weekday-morning' names two schedules"):
        pool(berlin(), berlin())


def test_given_no_schedule_when_validating_then_refused() -> None:
    with pytest.raises(ValidationError, match=r"signals\.schedule: .*schedules"):
        pool()


def test_the_schedule_signal_looks_back_at_nothing_and_keeps_nothing() -> None:
    config = pool(berlin())
    assert config.history_seconds() == config.behavior.longest_window_seconds()
    assert SCHEDULE.remember(seen(), 0.0) is None


NIGHT = {"name": "night", "cron": "0 22 * * *", "time_zone": BERLIN, "minimum": 0, "window_seconds": 8 * 3600}


@dataclass(frozen=True)
class CapCase:
    name: str
    schedules: tuple[dict[str, Any], ...]
    now: float
    visible: int
    """Messages queued, 10 per instance: the backlog's need is visible / 10."""
    current: int
    desired: int
    limited_by: LimitedBy
    lines: tuple[str, ...]
    """The cap's and the clamps' lines in the explanation."""
    min_size: int = 0
    remembered: int | None = None
    """A recommendation a minute before: the scale-down window would hold it."""


CAP_CASES = [
    CapCase(
        "given a night maximum of 2, when the backlog needs 6 at 23:00, then desired is capped at 2",
        (NIGHT | {"maximum": 2},),
        at("2026-12-07 23:00"),
        60,
        2,
        2,
        LimitedBy.MAX_SIZE,
        ('capped at 2: schedule "night" maximum 2',),
    ),
    CapCase(
        "given the same, when it is 03:00 next day (the window across midnight), then still capped",
        (NIGHT | {"maximum": 2},),
        at("2026-12-08 03:00"),
        60,
        2,
        2,
        LimitedBy.MAX_SIZE,
        ('capped at 2: schedule "night" maximum 2',),
    ),
    CapCase(
        "given the same, when the window ended at 06:00, then the backlog's 6 is desired",
        (NIGHT | {"maximum": 2},),
        at("2026-12-08 06:00"),
        60,
        2,
        6,
        LimitedBy.NONE,
        (),
    ),
    CapCase(
        "given a maximum above the need, when in force, then nothing is capped",
        (NIGHT | {"maximum": 8},),
        at("2026-12-07 23:00"),
        60,
        6,
        6,
        LimitedBy.NONE,
        (),
    ),
    CapCase(
        "given a fleet of 5 above the maximum with no work, when in force, then it is capped at once "
        "(as a scheduled MaxSize, before the scale-down window)",
        (NIGHT | {"maximum": 2},),
        at("2026-12-07 23:00"),
        0,
        5,
        2,
        LimitedBy.MAX_SIZE,
        ('capped at 2: schedule "night" maximum 2',),
        remembered=5,
    ),
    CapCase(
        "given a maximum of 1 and min_size 3, when in force, then min_size wins over the cap",
        (NIGHT | {"maximum": 1},),
        at("2026-12-07 23:00"),
        60,
        3,
        3,
        LimitedBy.MIN_SIZE,
        ('capped at 1: schedule "night" maximum 1', "clamped to min_size 3"),
        min_size=3,
    ),
    CapCase(
        "given a cap of 2 and another schedule's floor of 4 both in force, then the cap is raised to the floor",
        (NIGHT | {"maximum": 2}, berlin(name="late", cron="0 23 * * *")),
        at("2026-12-07 23:30"),
        60,
        4,
        4,
        LimitedBy.MAX_SIZE,
        ('capped at 4: schedule "night" maximum 2, raised to schedule "late" floor 4',),
    ),
    CapCase(
        "given two maxima in force, then the lowest caps",
        (NIGHT | {"maximum": 3}, NIGHT | {"name": "later", "cron": "0 23 * * *", "maximum": 1}),
        at("2026-12-07 23:30"),
        60,
        3,
        1,
        LimitedBy.MAX_SIZE,
        ('capped at 1: schedule "later" maximum 1',),
    ),
]


@pytest.mark.parametrize("case", CAP_CASES, ids=[c.name for c in CAP_CASES])
def test_schedule_maximum(case: CapCase) -> None:
    config = pool(*case.schedules).model_copy(update={"min_size": case.min_size})
    history = History()
    if case.remembered is not None:
        history = History(recommendations=[Recommendation(at=case.now - 60, desired=case.remembered)])
    decision = decide_pool(case.now, config, seen(case.visible, case.current), history)
    assert (decision.desired, decision.limited_by) == (case.desired, case.limited_by)
    capped = [line for line in decision.explanation if line.startswith(("capped at", "clamped to"))]
    assert tuple(capped) == case.lines
    # The recommendation (what history keeps) is the backlog's need, never capped.
    assert decision.recommendation == -(-case.visible // 10)


def test_given_a_maximum_when_in_force_then_the_explanation_names_it() -> None:
    proposal = SCHEDULE.need(pool(NIGHT | {"maximum": 2}), seen(), History(), at("2026-12-07 23:00"))
    assert proposal.lines == ('schedule "night" (0 22 * * * Europe/Berlin, until Tue 06:00) floor 0, maximum 2',)


@pytest.mark.parametrize(
    ("moment", "floor"),
    [("2026-12-07 08:30", 4.0), ("2026-12-07 10:30", 0.0)],
    ids=["in force: its floor", "none in force: 0"],
)
def test_the_schedule_reports_its_floor_as_a_figure(moment: str, floor: float) -> None:
    decision = decide_pool(at(moment), pool(berlin()), seen(), History())
    assert decision.figures == {Metric.SCHEDULE_FLOOR: floor}
