"""The demo's schedule and its timeline lines (devkit/demo.py): pure functions of the time and the status."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from devkit.demo import SCHEDULE_WINDOW_SECONDS, TimelineLines, demo_schedule, warm_pools_ready
from queue_scaler.scaling.domain.signals.schedule import Schedule


@pytest.mark.parametrize(
    ("now", "fire"),
    [
        # The first whole minute at least 3 s ahead (cron fires on whole minutes).
        (datetime(2026, 12, 7, 19, 30, 10, tzinfo=UTC), datetime(2026, 12, 7, 19, 31, tzinfo=UTC)),
        (datetime(2026, 12, 7, 19, 30, 58, tzinfo=UTC), datetime(2026, 12, 7, 19, 32, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC), datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_given_the_demos_start_then_its_schedule_fires_at_the_next_minute_and_is_in_force_for_its_window(
    now: datetime, fire: datetime
) -> None:
    settings, ends = demo_schedule(now)
    schedule = Schedule.model_validate(settings)
    assert ends == fire.timestamp() + SCHEDULE_WINDOW_SECONDS
    assert schedule.in_force(fire.timestamp() - 1) is None
    assert schedule.in_force(fire.timestamp()) is not None
    assert schedule.in_force(ends - 0.5) is not None and schedule.in_force(ends) is None


def status(
    starts: list[list[Any]], explanation: list[str], warm_pool: list[str], size: int | None = None
) -> dict[str, Any]:
    warm = [{"LifecycleState": s} for s in warm_pool]
    return {
        "pools": {
            "ai": {"starts": starts, "warm_pool": warm, "warm_pool_size": len(warm) if size is None else size},
            "video": {"starts": [["i-cold2", 6.0, False]]},
        },
        "scaler": {"last": [{"pool": "ai", "decision": {"explanation": explanation}}]},
    }


def test_given_statuses_when_read_then_each_warm_start_and_schedule_is_one_line_once() -> None:
    lines = TimelineLines()
    line = 'schedule "demo-floor" (31 19 7 12 * UTC, until 19:31) floor 1'
    first = status([["i-cold", 4.0, False], ["i-warm", 1.25, True]], ["backlog: 0", line], [])
    assert lines.new(first, 12.0) == [
        "t=12s ai: i-warm started from the warm pool in 1.2 s (cold starts so far: 5.0 s)",
        f"t=12s ai: {line}",
    ]
    assert lines.new(first, 13.0) == []


def test_given_warm_pools_then_ready_only_once_every_instance_is_prepared() -> None:
    assert warm_pools_ready(status([], [], ["Warmed:Hibernated", "Warmed:Stopped"]))
    assert not warm_pools_ready(status([], [], ["Warmed:Hibernated", "Warmed:Pending:Wait"]))
    # Not filled yet (the control loop launches into it): an empty or short pool is not ready.
    assert not warm_pools_ready(status([], [], [], size=2))
    assert not warm_pools_ready(status([], [], ["Warmed:Hibernated"], size=2))


def test_given_a_schedule_the_live_view_missed_when_the_log_is_read_then_its_line_is_printed_at_its_tick() -> None:
    line = 'schedule "demo-floor" (31 19 7 12 * UTC, until 19:31) floor 1'
    started_at = datetime(2026, 12, 7, 19, 30, 0, tzinfo=UTC).timestamp()
    record = {"message": "decision", "timestamp": "2026-12-07 19:31:02,500+0000", "pool": "ai"}
    log = [
        "not json",
        json.dumps(record | {"explanation": ["backlog: 0", line]}),
        json.dumps(record | {"explanation": [line]}),
    ]
    lines = TimelineLines()
    assert lines.from_log(log, started_at) == [f"t=62s ai: {line}"]
    assert lines.from_log(log, started_at) == []  # once
