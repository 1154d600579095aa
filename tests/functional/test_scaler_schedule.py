"""ScalerFunction's handler under moto with the schedule signal: the floor by the wall clock, in the
schedule's time zone, across midnight and across DST changes (Europe/Berlin, America/New_York).

The wall clock is set with time-machine; each invocation runs one tick (RUN_SECONDS 0) on a pool with
no messages, so the group's desired capacity is the schedule's floor or nothing (the maximum's test
queues work above its cap). The floor in force is published as the pool's ScheduleFloor metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.functional.clocked_scaler import PARAMETER, clocked_scaler, invoke_at, published
from tests.functional.moto_stack import (
    create_group,
    create_queue,
    desired_of,
    pool_config,
    put_config,
)


@pytest.fixture
def scaler(aws: None, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return clocked_scaler(monkeypatch)


def local(text: str, zone: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone))


def configure(schedule: dict[str, Any]) -> None:
    create_group("reports", desired=0)
    url = create_queue("reports-jobs")
    pool = pool_config("reports", [("reports-jobs", url, 10)])
    put_config(PARAMETER, [pool | {"signals": {"backlog": {}, "schedule": {"schedules": [schedule]}}}])


MORNING_BERLIN = {
    "name": "weekday-morning",
    "cron": "0 8 * * MON-FRI",
    "time_zone": "Europe/Berlin",
    "minimum": 4,
    "window_seconds": 7200,
}
MORNING_NEW_YORK = MORNING_BERLIN | {"cron": "0 9 * * MON-FRI", "time_zone": "America/New_York"}
FRIDAY_NIGHT = MORNING_BERLIN | {"name": "friday-night", "cron": "0 22 * * FRI", "window_seconds": 4 * 3600}


@dataclass(frozen=True)
class Case:
    name: str
    schedule: dict[str, Any]
    before: str
    """Local time just before the floor: desired stays 0."""
    inside: str
    """Local time inside the window: desired is the floor, the explanation names the schedule."""
    line: str


CASES = [
    Case(
        "Berlin winter (UTC+1): 07:59 nothing, 08:00 the floor",
        MORNING_BERLIN,
        "2026-03-27 07:59",
        "2026-03-27 08:00",
        'schedule "weekday-morning" (0 8 * * MON-FRI Europe/Berlin, until 10:00) floor 4',
    ),
    Case(
        "Berlin after the last Sunday of March (UTC+2): the floor still starts at 08:00 local, 06:00 UTC",
        MORNING_BERLIN,
        "2026-03-30 07:59",
        "2026-03-30 08:00",
        'schedule "weekday-morning" (0 8 * * MON-FRI Europe/Berlin, until 10:00) floor 4',
    ),
    Case(
        "Berlin after the last Sunday of October (UTC+1 again): 08:00 local, 07:00 UTC",
        MORNING_BERLIN,
        "2026-10-26 07:59",
        "2026-10-26 08:00",
        'schedule "weekday-morning" (0 8 * * MON-FRI Europe/Berlin, until 10:00) floor 4',
    ),
    Case(
        "New York after the second Sunday of March (EDT): 09:00 local, 13:00 UTC",
        MORNING_NEW_YORK,
        "2026-03-09 08:59",
        "2026-03-09 09:00",
        'schedule "weekday-morning" (0 9 * * MON-FRI America/New_York, until 11:00) floor 4',
    ),
    Case(
        "New York after the first Sunday of November (EST): 09:00 local, 14:00 UTC",
        MORNING_NEW_YORK,
        "2026-11-02 08:59",
        "2026-11-02 09:00",
        'schedule "weekday-morning" (0 9 * * MON-FRI America/New_York, until 11:00) floor 4',
    ),
    Case(
        "a window across midnight: Friday 22:00 for 4 h is in force on Saturday at 01:30",
        FRIDAY_NIGHT,
        "2026-12-11 21:59",
        "2026-12-12 01:30",
        'schedule "friday-night" (0 22 * * FRI Europe/Berlin, until Sat 02:00) floor 4',
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_given_a_schedule_when_the_scaler_ticks_around_its_fire_then_the_floor_follows_the_local_clock(
    scaler: ModuleType, case: Case
) -> None:
    configure(case.schedule)
    zone = case.schedule["time_zone"]
    before = invoke_at(scaler, local(case.before, zone))
    assert (desired_of("reports"), before["desired"]) == (0, 0)
    assert any(line.startswith("schedule: none in force") for line in before["explanation"])
    inside = invoke_at(scaler, local(case.inside, zone))
    assert desired_of("reports") == 4
    assert (inside["desired"], inside["signal"]) == (4, "schedule")
    assert case.line in inside["explanation"]


def test_given_a_window_across_the_spring_forward_night_then_it_lasts_its_elapsed_seconds(scaler: ModuleType) -> None:
    # Saturday 23:00 Berlin + 4 h: the clocks jump from 02:00 to 03:00, so the window ends at 04:00 local.
    configure(FRIDAY_NIGHT | {"name": "saturday-night", "cron": "0 23 * * SAT"})
    zone = "Europe/Berlin"
    inside = invoke_at(scaler, local("2026-03-29 03:57", zone))
    assert (desired_of("reports"), inside["signal"]) == (4, "schedule")
    assert 'schedule "saturday-night" (0 23 * * SAT Europe/Berlin, until Sun 04:00) floor 4' in inside["explanation"]
    # At 04:00 the floor is gone; the scale-down window (300 s) first holds the fleet, then it goes.
    ended = invoke_at(scaler, local("2026-03-29 04:00", zone))
    assert (ended["desired"], ended["limited_by"]) == (4, "ScaleDownStabilized"), ended["explanation"]
    invoke_at(scaler, local("2026-03-29 04:06", zone))
    assert desired_of("reports") == 0


def test_given_a_night_maximum_across_midnight_then_desired_is_capped_until_the_window_ends(
    scaler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # 60 messages at 10 per instance need 6; Friday 22:00 Berlin for 8 h the schedule keeps at least 1
    # and at most 2, as a scheduled action's MaxSize would, until Saturday 06:00.
    create_group("reports", desired=0)
    url = create_queue("reports-jobs", messages=60)
    night = {
        "name": "friday-night",
        "cron": "0 22 * * FRI",
        "time_zone": "Europe/Berlin",
        "minimum": 1,
        "maximum": 2,
        "window_seconds": 8 * 3600,
    }
    pool = pool_config("reports", [("reports-jobs", url, 10)])
    put_config(PARAMETER, [pool | {"signals": {"backlog": {}, "schedule": {"schedules": [night]}}}])
    zone = "Europe/Berlin"
    in_force = 'schedule "friday-night" (0 22 * * FRI Europe/Berlin, until Sat 06:00) floor 1, maximum 2'

    capsys.readouterr()
    evening = invoke_at(scaler, local("2026-12-11 22:30", zone))
    assert (desired_of("reports"), evening["desired"], evening["limited_by"]) == (2, 2, "MaxSize")
    assert evening["recommendation"] == 6  # the need, kept uncapped in the history
    assert in_force in evening["explanation"]
    assert 'capped at 2: schedule "friday-night" maximum 2' in evening["explanation"]
    assert published(capsys.readouterr().out, "reports")["ScheduleFloor"] == (1.0, "Count")

    after_midnight = invoke_at(scaler, local("2026-12-12 05:59", zone))
    assert (desired_of("reports"), after_midnight["limited_by"]) == (2, "MaxSize")
    assert in_force in after_midnight["explanation"]

    capsys.readouterr()
    ended = invoke_at(scaler, local("2026-12-12 06:00", zone))
    assert (desired_of("reports"), ended["limited_by"]) == (6, "None"), ended["explanation"]
    assert not any(line.startswith("capped at") for line in ended["explanation"])
    assert published(capsys.readouterr().out, "reports")["ScheduleFloor"] == (0.0, "Count")
