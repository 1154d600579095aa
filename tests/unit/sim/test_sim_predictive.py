"""Auto Scaling's predictive scaling and scheduled actions for the target-tracking peers
(devkit/sim/policies/predictive.py), on hand-computed histories.

The load metric is the messages sent per minute, averaged per hour; the forecast of an hour is the mean
of the same hour of day in the past days (at most 14), none with less than 24 h of data; the capacity
forecast is the load over the TargetValue (what one instance serves a minute), rounded up, at most the
max size; it is the group's minimum capacity from SchedulingBufferTime before its hour, taken from the
latest 6-hourly forecast made by then; target tracking never goes below it.
"""

from __future__ import annotations

from typing import Any

import pytest

from devkit.sim.engine import PoolSim
from devkit.sim.policies import predictive as ps
from devkit.sim.policies import target_tracking as tt
from devkit.sim.scenario import Scenario

H = ps.HOUR
D = ps.DAY


def arrivals_at(hour: float, count: int) -> list[float]:
    """`count` arrivals spread inside hour index `hour`."""
    return [hour * H + (i + 0.5) * H / count for i in range(count)]


@pytest.mark.parametrize(
    ("arrivals", "until", "expected"),
    [
        ([], 2 * H, [0.0, 0.0]),
        (arrivals_at(0, 120), 2 * H, [2.0, 0.0]),
        (arrivals_at(1, 60), 2 * H, [0.0, 1.0]),
        # An hour not yet ended is not a datapoint.
        (arrivals_at(1, 60), 1.5 * H, [0.0]),
    ],
    ids=["none", "first-hour", "second-hour", "partial-hour-left-out"],
)
def test_the_load_metric_is_messages_per_minute_per_whole_hour(
    arrivals: list[float], until: float, expected: list[float]
) -> None:
    assert ps.load_per_hour(arrivals, until) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("hourly", "hour", "expected"),
    [
        # Less than 24 hours of data: no forecast.
        ([5.0] * 23, 30, None),
        # One day: hour 33 reads hour 9.
        ([0.0] * 9 + [6.0] + [0.0] * 14, 33, 6.0),
        # Two days: the mean of hours 9 and 33.
        ([0.0] * 9 + [6.0] + [0.0] * 23 + [2.0] + [0.0] * 14, 57, 4.0),
        # A day of data but not the hour asked's day: hour 24 + 23 reads hour 23.
        ([0.0] * 23 + [3.0], 47, 3.0),
        # Never the future: hour 24 with 24 h of data reads hour 0 only.
        ([1.0] + [9.0] * 23, 24, 1.0),
    ],
    ids=["under-24h", "one-day", "two-days-mean", "last-hour", "same-hour-only"],
)
def test_the_load_forecast_is_the_same_hour_of_day_over_past_days(
    hourly: list[float], hour: int, expected: float | None
) -> None:
    assert ps.forecast_load(hourly, hour) == (None if expected is None else pytest.approx(expected))


def test_the_forecast_reads_at_most_14_days() -> None:
    hourly = [0.0] * (20 * 24)
    hourly[0] = 1400.0  # day 0, 20 days before day 20: outside the 14 days
    for day in range(6, 20):
        hourly[day * 24] = 7.0
    assert ps.forecast_load(hourly, 20 * 24) == pytest.approx(7.0)


@pytest.mark.parametrize(
    ("load", "target", "max_size", "expected"),
    [(0.0, 2.0, 10, 0), (4.0, 2.0, 10, 2), (4.1, 2.0, 10, 3), (100.0, 2.0, 10, 10)],
    ids=["no-load", "exact", "rounded-up", "honor-max-capacity"],
)
def test_the_capacity_forecast_is_load_over_target_rounded_up_within_max(
    load: float, target: float, max_size: int, expected: int
) -> None:
    assert ps.capacity_forecast(load, ps.Predictive(target, max_size)) == expected


#: A burst of 600 messages in hour 9 of day 0: 10 a minute over the hour; 1 instance serves 2 a minute.
BURST = arrivals_at(9, 600)
POLICY = ps.Predictive(target_per_minute=2.0, max_size=50)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Day 0: no 24 h of data, no forecast.
        (9 * H, 0),
        # Day 1, the hour before: nothing happened at 08:00 yesterday.
        (D + 8 * H, 0),
        # SchedulingBufferTime (300 s) before 09:00: the 09:00 hour's capacity, 10 / 2 = 5.
        (D + 9 * H - 301, 0),
        (D + 9 * H - 300, 5),
        (D + 9 * H + 1800, 5),
        # From 09:55 the 10:00 hour's forecast applies: nothing.
        (D + 10 * H - 300, 0),
    ],
    ids=["day-0", "hour-before", "before-buffer", "at-buffer", "inside-hour", "next-hour"],
)
def test_the_minimum_capacity_is_the_hours_forecast_from_the_buffer_before_it(now: float, expected: int) -> None:
    assert ps.CapacityFloor(predictive=POLICY, arrivals=BURST).predicted(now) == expected


def test_the_forecast_is_made_every_6_hours_from_the_data_then() -> None:
    """The 06:00 forecast of day 1 reads 30 hours of data: the burst at 09:00 of day 1 is not yet in it,
    so day 2's 09:00 is forecast from day 0 alone until the next update after day 1's burst."""
    two_bursts = [*BURST, *arrivals_at(24 + 9, 1200)]
    floor = ps.CapacityFloor(predictive=POLICY, arrivals=two_bursts)
    day1_06 = floor.forecast(D + 6 * H)
    assert day1_06[24 + 9] == 5
    assert day1_06[48 + 9] == 5  # 48 h ahead, before day 1's burst is data
    assert floor.forecast(D + 12 * H)[48 + 9] == 8  # (10 + 20) / 2 a minute / 2 = 7.5 -> 8
    assert floor.predicted(2 * D + 9 * H) == 8


def test_without_a_policy_or_schedule_there_is_no_floor() -> None:
    floor = ps.CapacityFloor(arrivals=BURST)
    assert not floor
    assert floor(D + 9 * H) == 0


SCHEDULE = {"name": "morning", "cron": "55 8 * * *", "time_zone": "UTC", "minimum": 7, "window_seconds": 1800}


def pool_config(signals: dict[str, Any] | None, seconds_per_message: float = 60) -> PoolSim:
    scaler: dict[str, Any] = {"seconds_per_message": seconds_per_message}
    if signals is not None:
        scaler["signals"] = signals
    scenario = Scenario.model_validate(
        {
            "name": "t",
            "duration_seconds": 3 * D,
            "boot_seconds": {"min": 60, "max": 120},
            "fleet": {"sqs_relative_error": 0, "cloudwatch_delay_seconds": 0},
            "pools": [
                {
                    "name": "p",
                    "slots_per_instance": 4,
                    "drain_seconds": 60,
                    "max_size": 20,
                    "scaler": scaler,
                    "queues": [
                        {
                            "name": "q",
                            "target_per_instance": 4,
                            "arrivals": {"burst": {"at": 0, "count": 1}},
                            "service_seconds": {"fixed": 60},
                        }
                    ],
                }
            ],
        }
    )
    return PoolSim(0, scenario.pools[0], scenario, [60.0])


@pytest.mark.parametrize(
    ("signals", "schedules", "target"),
    [
        (None, 0, None),
        ({"backlog": {}, "schedule": {"schedules": [SCHEDULE]}}, 1, None),
        ({"forecast": {"mode": "forecast_and_scale"}}, 0, 4 * 60 / 120),
        # ForecastOnly changes no capacity: no predictive floor.
        ({"forecast": {"mode": "forecast_only"}}, 0, None),
        ({"forecast": {"mode": "off"}}, 0, None),
    ],
    ids=["nothing", "schedule", "forecast-and-scale", "forecast-only", "off"],
)
def test_a_pool_gets_the_features_its_queue_scaler_signals_turn_on(
    signals: dict[str, Any] | None, schedules: int, target: float | None
) -> None:
    floor = ps.capacity_floor(pool_config(signals, seconds_per_message=120).config, BURST)
    assert len(floor.schedules) == schedules
    assert (floor.predictive.target_per_minute if floor.predictive else None) == target


@pytest.mark.parametrize(
    ("now", "desired", "expected"),
    [
        # Before the schedule's window target tracking has nothing to do (no datapoint yet).
        (8 * H + 54 * 60, 0, None),
        # In the window at zero: the scheduled minimum.
        (8 * H + 55 * 60, 0, 7),
        # Already above it: left alone.
        (9 * H, 9, None),
        # After the window: no floor.
        (9 * H + 26 * 60, 0, None),
    ],
    ids=["before", "raises-to-minimum", "above-minimum", "after"],
)
def test_target_tracking_stays_at_or_above_the_scheduled_minimum(
    now: float, desired: int, expected: int | None
) -> None:
    pool = pool_config({"backlog": {}, "schedule": {"schedules": [SCHEDULE]}})
    pool.desired = desired
    floor = ps.capacity_floor(pool.config, [])
    controller = tt.TargetTracking(pool, tt.Resolution(tt.STANDARD_PERIOD, 0.0), 120.0, floor=floor)
    assert controller.on_loop(0, now) == expected


CAPPED = SCHEDULE | {"name": "capped", "minimum": 2, "maximum": 5}


@pytest.mark.parametrize(
    ("schedules", "now", "desired", "expected"),
    [
        # In force: above its maximum, target tracking is brought down to it.
        ([CAPPED], 9 * H, 9, 5),
        # At or below the maximum: left alone.
        ([CAPPED], 9 * H, 4, None),
        # Out of its window: no cap.
        ([CAPPED], 10 * H, 9, None),
        # Never below another schedule's minimum in force: the cap is raised to the highest floor.
        ([CAPPED, SCHEDULE], 9 * H, 9, 7),
    ],
    ids=["capped", "below-cap", "outside-window", "cap-raised-to-floor"],
)
def test_a_schedules_maximum_caps_target_tracking_while_in_force(
    schedules: list[dict[str, Any]], now: float, desired: int, expected: int | None
) -> None:
    pool = pool_config({"backlog": {}, "schedule": {"schedules": schedules}})
    pool.desired = desired
    floor = ps.capacity_floor(pool.config, [])
    controller = tt.TargetTracking(pool, tt.Resolution(tt.STANDARD_PERIOD, 0.0), 120.0, floor=floor)
    assert controller.on_loop(0, now) == expected
