"""The forecast signal: the same time of day (or of week) in past periods, one boot time ahead, with its
error; too little history gives no floor; the modes; the thinned history that keeps two weeks.

Given / When / Then in each case's name. The pool's jobs take 40 s on 4 slots per instance, so a
steady 0.5 arrivals a second (20 running, no queue growth) is a load of 20 slots: 5 instances at
staffing 0.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from queue_scaler.scaling.domain.decision import decide_pool
from queue_scaler.scaling.domain.models import (
    SAMPLE_SPACING_SECONDS,
    History,
    LimitedBy,
    Observation,
    Recommendation,
    WorkSample,
)
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.domain.signals.forecast import DAY, FORECAST, WEEK
from queue_scaler.shared.metric_names import Metric

NOW = 30 * DAY  # a Saturday's midnight in epoch time; only the distances to it matter
LEAD = 180.0


def pool(**settings: Any) -> PoolConfig:
    return PoolConfig.model_validate(
        {
            "name": "p",
            "max_size": 50,
            "slots_per_instance": 4,
            "seconds_per_message": 40,
            "queues": [{"name": "q", "target_per_instance": 100}],
            "signals": {"backlog": {}, "forecast": {"mode": "forecast_and_scale", "staffing": 0, **settings}},
        }
    )


def seen(visible: int = 0, in_flight: int = 0, desired: int = 0) -> Observation:
    return Observation.model_validate(
        {
            "queues": [{"name": "q", "visible": visible, "in_flight": in_flight}],
            "fleet": {"desired": desired, "in_service": desired},
        }
    )


def steady(centre: float, running: int, span: float = 900.0) -> list[WorkSample]:
    """Samples 300 s apart around `centre`, `running` messages in flight and no queue: rate running / 40 s."""
    return [WorkSample(at=centre + d, work=running, in_flight=running) for d in (-span / 2, 0.0, span / 2)]


def days_back(*running: int) -> History:
    """A steady flow around now + lead, one day back per value (yesterday first), and an old start sample."""
    samples = [s for k, r in enumerate(running, 1) for s in steady(NOW + LEAD - k * DAY, r)]
    return History(samples=sorted(samples, key=lambda s: s.at))


@dataclass(frozen=True)
class Case:
    name: str
    history: History
    raw_need: float
    line: str
    settings: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case(
        "given no samples, when forecasting, then no floor and the explanation says why",
        History(),
        0.0,
        "forecast: 0 h of work samples, needs 24.07 h (a day before now + 180 s, with its window): no floor",
    ),
    Case(
        "given 20 h of samples, when forecasting, then too little history (AWS needs 24 h)",
        History(samples=steady(NOW - 20 * 3600, 20)),
        0.0,
        "forecast: 20.12 h of work samples, needs 24.07 h (a day before now + 180 s, with its window): no floor",
    ),
    Case(
        "given yesterday's 20 running at the same time, when forecasting, then 0.5/s x 40 s / 4 = 5",
        days_back(20),
        5.0,
        "forecast: 0.5/s ± 0/s at now + 180 s, from the same time of day in 1 past day(s) (0.5/s): x 40 s = "
        "load 20 slot(s); + 0 x sqrt(load) = 20 slot(s) / 4 = floor 5",
    ),
    Case(
        "given three past days of 16, 20 and 24 running, when forecasting, then their mean with their spread",
        days_back(16, 20, 24),
        5.0,
        "forecast: 0.5/s ± 0.08/s at now + 180 s, from the same time of day in 3 past day(s) (0.4, 0.5, 0.6/s): "
        "x 40 s = load 20 slot(s); + 0 x sqrt(load) = 20 slot(s) / 4 = floor 5",
    ),
    Case(
        "given history_days 1, when three days are held, then only yesterday is read",
        days_back(16, 20, 24),
        4.0,
        "forecast: 0.4/s ± 0/s at now + 180 s, from the same time of day in 1 past day(s) (0.4/s): x 40 s = "
        "load 16 slot(s); + 0 x sqrt(load) = 16 slot(s) / 4 = floor 4",
        {"history_days": 1},
    ),
    Case(
        "given staffing 1, when forecasting 20 slots of load, then + sqrt(20)",
        days_back(20),
        (20 + 20**0.5) / 4,
        "forecast: 0.5/s ± 0/s at now + 180 s, from the same time of day in 1 past day(s) (0.5/s): x 40 s = "
        "load 20 slot(s); + 1 x sqrt(load) = 24.47 slot(s) / 4 = floor 6.12",
        {"staffing": 1},
    ),
    Case(
        "given two weeks held, when forecasting, then the same time of week in the 2 past weeks",
        History(
            samples=sorted(
                [*steady(NOW + LEAD - 2 * WEEK, 8), *steady(NOW + LEAD - WEEK, 12), *steady(NOW + LEAD - DAY, 40)],
                key=lambda s: s.at,
            )
        ),
        2.5,
        "forecast: 0.25/s ± 0.05/s at now + 180 s, from the same time of week in 2 past week(s) (0.3, 0.2/s): "
        "x 40 s = load 10 slot(s); + 0 x sqrt(load) = 10 slot(s) / 4 = floor 2.5",
    ),
    Case(
        "given a lead of 1 h, when the flow starts in yesterday's next hour, then it is forecast now",
        History(samples=[*steady(NOW - DAY, 0), *steady(NOW + 3600 - DAY, 20)]),
        5.0,
        "forecast: 0.5/s ± 0/s at now + 3600 s, from the same time of day in 1 past day(s) (0.5/s): x 40 s = "
        "load 20 slot(s); + 0 x sqrt(load) = 20 slot(s) / 4 = floor 5",
        {"lead_seconds": 3600},
    ),
    Case(
        "given a queue that grew by 90 over yesterday's window, when forecasting, then growth counts as arrivals",
        History(
            samples=[
                WorkSample(at=NOW + LEAD - DAY - 450, work=0, in_flight=0),
                WorkSample(at=NOW + LEAD - DAY + 450, work=90, in_flight=0),
            ]
        ),
        1.0,
        "forecast: 0.1/s ± 0/s at now + 180 s, from the same time of day in 1 past day(s) (0.1/s): x 40 s = "
        "load 4 slot(s); + 0 x sqrt(load) = 4 slot(s) / 4 = floor 1",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_forecast_proposal(case: Case) -> None:
    proposal = FORECAST.need(pool(**case.settings), seen(), case.history, NOW)
    assert proposal.signal == "forecast"
    assert proposal.raw_need == pytest.approx(case.raw_need)
    assert proposal.active is (case.raw_need > 0)
    assert proposal.lines == (case.line,)
    assert proposal.held == 0.0  # remembered whole: the scale-down window bridges its drop


def test_given_forecast_only_when_a_floor_is_forecast_then_it_is_explained_and_nothing_proposed() -> None:
    config = pool(mode="forecast_only")
    proposal = FORECAST.need(config, seen(), days_back(20), NOW)
    assert (proposal.raw_need, proposal.active) == (0.0, False)
    [line] = proposal.lines
    assert line.startswith("forecast: 0.5/s ± 0/s") and line.endswith("= floor 5 (forecast_only: proposes nothing)")
    decision = decide_pool(NOW, config, seen(), days_back(20))
    assert (decision.desired, decision.signal) == (0, "backlog")
    assert line in decision.explanation


def test_given_mode_off_then_nothing_is_forecast_and_no_history_is_kept_for_it() -> None:
    config = pool(mode="off")
    proposal = FORECAST.need(config, seen(), days_back(20), NOW)
    assert (proposal.raw_need, proposal.lines) == (0.0, ("forecast: off",))
    assert config.history_seconds() == config.behavior.longest_window_seconds()


def test_given_a_forecast_floor_at_zero_when_deciding_then_it_wakes_the_pool_before_the_work() -> None:
    decision = decide_pool(NOW, pool(), seen(), days_back(20))
    assert (decision.desired, decision.signal) == (5, "forecast")
    assert "signals: backlog 0, forecast 5; largest: forecast" in decision.explanation


def test_given_a_forecast_below_the_backlog_need_when_deciding_then_the_backlog_wins() -> None:
    decision = decide_pool(NOW, pool(), seen(visible=900, desired=5), days_back(20))
    assert (decision.desired, decision.signal) == (9, "backlog")


def test_given_the_forecast_drops_when_deciding_then_it_does_not_scale_in_by_itself() -> None:
    # Yesterday the flow stopped at now + lead: the forecast is 0. The fleet of 5 the forecast asked
    # for a minute ago is held by the scale-down stabilization window, then goes as it allows.
    samples = [*steady(NOW - DAY - 1800, 20), *steady(NOW + LEAD - DAY, 0)]
    asked = History(samples=samples, recommendations=[Recommendation(at=NOW - 60, desired=5)])
    held = decide_pool(NOW, pool(), seen(desired=5), asked)
    assert (held.desired, held.limited_by) == (5, LimitedBy.SCALE_DOWN_STABILIZED)
    assert held.raw_need == 0
    later = decide_pool(NOW + 300, pool(), seen(desired=5), asked)
    assert later.desired == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mode": "always"}, "signals.forecast: .*mode"),
        ({"lead_seconds": -1}, "signals.forecast: .*lead_seconds"),
        ({"window_seconds": 300}, "signals.forecast: .*window_seconds"),
        ({"history_days": 15}, "signals.forecast: .*history_days"),
        ({"history_days": 0}, "signals.forecast: .*history_days"),
    ],
    ids=["unknown mode", "negative lead", "window under two sample spacings", "over 14 days", "no day"],
)
def test_given_bad_settings_when_validating_then_the_error_names_the_field(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        pool(**settings)


def test_given_a_pool_without_seconds_per_message_when_validating_then_refused() -> None:
    with pytest.raises(ValidationError, match=r"signals\.forecast needs the pool's seconds_per_message"):
        PoolConfig.model_validate(
            {
                "name": "p",
                "max_size": 5,
                "queues": [{"name": "q", "target_per_instance": 1}],
                "signals": {"forecast": {}},
            }
        )


def test_the_look_back_is_history_days_and_one_window_and_only_samples_are_kept_that_long() -> None:
    config = pool(history_days=14, window_seconds=900)
    assert config.history_seconds() == 14 * DAY + 900
    assert config.dense_seconds() == 3600


def test_given_ticks_every_10_s_for_3_h_when_recorded_then_samples_beyond_the_hour_are_300_s_apart() -> None:
    config = pool()
    history = History()
    start = NOW - 3 * 3600
    for tick in range(3 * 360 + 1):
        now = start + 10 * tick
        decision = decide_pool(now, config, seen(in_flight=4, desired=1), history)
        history = history.record(decision, now, config.history_seconds(), config.dense_seconds())
    old = [s.at for s in history.samples if s.at <= NOW - 3600]
    recent = [s.at for s in history.samples if s.at > NOW - 3600]
    assert len(recent) == 360  # every tick of the last hour
    assert old[0] == start and all(b - a == SAMPLE_SPACING_SECONDS for a, b in itertools.pairwise(old))
    assert min(r.at for r in history.recommendations) > NOW - 3600  # recommendations only for the hour


@dataclass(frozen=True)
class FiguresCase:
    name: str
    mode: str
    history: History
    visible: int
    """Messages queued, 100 per instance: the backlog's need is visible / 100."""
    figures: dict[Metric, float]


def forecast_figures(rate: float, error: float, capacity: float, added: float) -> dict[Metric, float]:
    return {
        Metric.FORECAST_ARRIVAL_RATE: rate,
        Metric.FORECAST_ERROR: error,
        Metric.FORECAST_CAPACITY: capacity,
        Metric.FORECAST_ADDED: added,
    }


FIGURES_CASES = [
    FiguresCase(
        "given a floor of 5 and no work, then it added all 5",
        "forecast_and_scale",
        days_back(20),
        0,
        forecast_figures(0.5, 0.0, 5.0, 5),
    ),
    FiguresCase(
        "given a floor of 5 over a backlog needing 3, then it added 2",
        "forecast_and_scale",
        days_back(20),
        300,
        forecast_figures(0.5, 0.0, 5.0, 2),
    ),
    FiguresCase(
        "given a floor of 5 under a backlog needing 9, then it added nothing",
        "forecast_and_scale",
        days_back(20),
        900,
        forecast_figures(0.5, 0.0, 5.0, 0),
    ),
    FiguresCase(
        "given two past days of 0.4/s and 0.6/s, then the forecast 0.5/s has an error of 0.1/s",
        "forecast_and_scale",
        days_back(16, 24),
        0,
        forecast_figures(0.5, 0.1, 5.0, 5),
    ),
    FiguresCase(
        "given forecast_only, then the forecast and its floor are reported, and it added nothing",
        "forecast_only",
        days_back(20),
        0,
        forecast_figures(0.5, 0.0, 5.0, 0),
    ),
    FiguresCase(
        "given too little history, then there is no forecast and no figure",
        "forecast_and_scale",
        History(samples=steady(NOW - 6 * 3600, 20)),
        0,
        {},
    ),
    FiguresCase("given mode off, then no figure", "off", days_back(20), 0, {}),
]


@pytest.mark.parametrize("case", FIGURES_CASES, ids=[c.name for c in FIGURES_CASES])
def test_forecast_figures(case: FiguresCase) -> None:
    decision = decide_pool(NOW, pool(mode=case.mode), seen(visible=case.visible), case.history)
    assert decision.figures == pytest.approx(case.figures)
    assert set(decision.figures) == set(case.figures)
