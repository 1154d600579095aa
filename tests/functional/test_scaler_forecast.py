"""ScalerFunction's handler under moto with the forecast signal: yesterday's flow, read from the history
table, raises the pool one boot time ahead; too little history gives no floor and says so; a drop in
the forecast is bridged by the scale-down window (the floor never scales in by itself); forecast_only
changes nothing but the explanation; two weeks of thinned samples fit the history's one item. The
forecast's figures are published as the pool's metrics (EMF on stdout) unless the mode is off.

The wall clock is set with time-machine; each invocation runs one tick (RUN_SECONDS 0).
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from queue_scaler.scaling.adapters.history import DynamoHistoryStore
from queue_scaler.scaling.domain.models import SAMPLE_SPACING_SECONDS, History, Recommendation, WorkSample
from queue_scaler.shared.errors import AwsCallError
from tests.functional.clocked_scaler import PARAMETER, TABLE, clocked_scaler, invoke_at, published
from tests.functional.moto_stack import (
    create_group,
    create_queue,
    desired_of,
    pool_config,
    put_config,
)

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC).timestamp()
DAY = 86400.0
LEAD = 180.0


@pytest.fixture
def scaler(aws: None, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return clocked_scaler(monkeypatch)


def configure(mode: str, desired: int = 0) -> None:
    """Jobs of 40 s on 4 slots: a steady 0.5 arrivals a second is 20 slots, 5 instances (staffing 0)."""
    create_group("nightly", desired=desired)
    url = create_queue("nightly-jobs")
    pool = pool_config("nightly", [("nightly-jobs", url, 100)], slots_per_instance=4, seconds_per_message=40)
    forecast = {"mode": mode, "lead_seconds": LEAD, "staffing": 0}
    put_config(PARAMETER, [pool | {"signals": {"backlog": {}, "forecast": forecast}}])


def steady(centre: float, running: int) -> list[WorkSample]:
    return [WorkSample(at=centre + d, work=running, in_flight=running) for d in (-450.0, 0.0, 450.0)]


def seed(samples: list[WorkSample], recommendations: list[Recommendation] | None = None) -> None:
    history = History(samples=sorted(samples, key=lambda s: s.at), recommendations=recommendations or [])
    DynamoHistoryStore(TABLE).save("nightly", history, 0)


def forecast_line(decision: dict[str, Any]) -> str:
    lines: list[str] = decision["explanation"]
    [line] = [line for line in lines if line.startswith("forecast:")]
    return line


def test_given_only_hours_of_history_when_the_scaler_ticks_then_no_floor_and_it_says_so(scaler: ModuleType) -> None:
    configure("forecast_and_scale")
    seed(steady(NOW - 6 * 3600, 20))
    decision = invoke_at(scaler, NOW)
    assert desired_of("nightly") == 0
    assert forecast_line(decision) == (
        "forecast: 6.12 h of work samples, needs 24.07 h (a day before now + 180 s, with its window): no floor"
    )


def test_given_yesterdays_flow_when_the_scaler_ticks_a_boot_time_before_then_the_floor_is_there_first(
    scaler: ModuleType,
) -> None:
    configure("forecast_and_scale")
    seed(steady(NOW + LEAD - DAY, 20))
    decision = invoke_at(scaler, NOW)
    assert desired_of("nightly") == 5
    assert (decision["desired"], decision["signal"]) == (5, "forecast")
    assert forecast_line(decision).startswith(
        "forecast: 0.5/s ± 0/s at now + 180 s, from the same time of day in 1 past day(s) (0.5/s)"
    )


def test_given_the_forecast_drops_when_the_scaler_ticks_then_the_floor_does_not_scale_in_by_itself(
    scaler: ModuleType,
) -> None:
    # Yesterday the flow ran until 07:30 and stopped; this morning the forecast asked for 5 at 07:59.
    configure("forecast_and_scale", desired=5)
    seed(
        [*steady(NOW - DAY - 1800, 20), *steady(NOW + LEAD - DAY, 0)],
        [Recommendation(at=NOW - 60, desired=5)],
    )
    dropped = invoke_at(scaler, NOW)
    assert forecast_line(dropped).startswith("forecast: 0/s")
    assert (desired_of("nightly"), dropped["limited_by"]) == (5, "ScaleDownStabilized")
    # Past the 300 s window, the fleet goes down as the scale-down rules allow.
    invoke_at(scaler, NOW + 301)
    assert desired_of("nightly") == 0


def test_given_forecast_only_when_a_floor_is_forecast_then_only_the_explanation_changes(scaler: ModuleType) -> None:
    configure("forecast_only")
    seed(steady(NOW + LEAD - DAY, 20))
    decision = invoke_at(scaler, NOW)
    assert desired_of("nightly") == 0
    assert (decision["desired"], decision["signal"], decision["limited_by"]) == (0, "backlog", "None")
    assert forecast_line(decision).endswith("= floor 5 (forecast_only: proposes nothing)")


def test_given_two_weeks_of_ticks_every_10_s_then_the_thinned_history_fits_one_item(scaler: ModuleType) -> None:
    # What `History.record` keeps at steady state for a 14-day forecast with 10 s ticks: every entry of
    # the last hour, and one sample per 300 s before it. DynamoDB (and moto) refuse an item over 400 KB.
    configure("forecast_and_scale")
    start, dense_from = NOW - 14 * DAY - 900, NOW - 3600
    thinned = [start + SAMPLE_SPACING_SECONDS * i for i in range(int((dense_from - start) / SAMPLE_SPACING_SECONDS))]
    dense = [dense_from + 10 * i + 0.123456 for i in range(360)]
    big = 10_000  # five-digit counts, at float timestamps: the widest entries a busy pool writes
    samples = [WorkSample(at=at + 0.123456, work=big, in_flight=big) for at in thinned + dense]
    recommendations = [Recommendation(at=at, desired=big, held=1234.567891) for at in dense]
    seed(samples, recommendations)
    invoke_at(scaler, NOW)  # the scaler loads it, decides and writes it back
    loaded = DynamoHistoryStore(TABLE).load("nightly").history
    assert len(samples) == 4383 and len(loaded.samples) == len(samples) + 1  # and this tick's
    # Unthinned, two days of 10 s ticks alone are more than one item holds.
    every_tick = [WorkSample(at=start + 10 * i + 0.123456, work=big, in_flight=big) for i in range(2 * 8640)]
    with pytest.raises(AwsCallError, match="Item size has exceeded the maximum allowed size"):
        DynamoHistoryStore(TABLE).save("unthinned", History(samples=every_tick), 0)


@pytest.mark.parametrize(
    ("mode", "desired", "metrics"),
    [
        (
            "forecast_and_scale",
            5,
            {
                "ForecastArrivalRate": (0.5, "Count/Second"),
                "ForecastError": (0.1, "Count/Second"),
                "ForecastCapacity": (5.0, "Count"),
                "ForecastAdded": (5.0, "Count"),
                "ScaleActions": (1.0, "Count"),
            },
        ),
        (
            "forecast_only",
            0,
            {
                "ForecastArrivalRate": (0.5, "Count/Second"),
                "ForecastError": (0.1, "Count/Second"),
                "ForecastCapacity": (5.0, "Count"),
                "ForecastAdded": (0.0, "Count"),
            },
        ),
        ("off", 0, {}),
    ],
    ids=["forecast_and_scale: what it added", "forecast_only: added nothing", "off: no metric"],
)
def test_given_a_mode_when_the_scaler_ticks_then_the_forecast_figures_are_the_pools_metrics(
    scaler: ModuleType, capsys: pytest.CaptureFixture[str], mode: str, desired: int, metrics: dict[str, Any]
) -> None:
    # Two past days at 0.4/s and 0.6/s around now + lead: the forecast 0.5/s ± 0.1/s, a floor of 5.
    configure(mode)
    seed([*steady(NOW + LEAD - DAY, 16), *steady(NOW + LEAD - 2 * DAY, 24)])
    capsys.readouterr()
    invoke_at(scaler, NOW)
    assert desired_of("nightly") == desired
    got = published(capsys.readouterr().out, "nightly")
    assert {name: unit for name, (_, unit) in got.items()} == {name: unit for name, (_, unit) in metrics.items()}
    assert {name: value for name, (value, _) in got.items()} == pytest.approx(
        {name: value for name, (value, _) in metrics.items()}
    )


def test_given_too_little_history_when_the_scaler_ticks_then_no_forecast_metric(
    scaler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("forecast_and_scale")
    seed(steady(NOW - 6 * 3600, 20))
    capsys.readouterr()
    invoke_at(scaler, NOW)
    assert published(capsys.readouterr().out, "nightly") == {}
