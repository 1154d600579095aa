"""The arrival_rate signal: Little's law over the pool's work samples, with square-root staffing.

Given / When / Then in each case's name; every boundary (the window's edges, one sample, a falling
queue, no work, an unreadable queue, the settings' bounds) has its own case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from queue_scaler.scaling.domain.decision import decide_pool
from queue_scaler.scaling.domain.models import Decision, History, Observation, WorkSample
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.domain.signals import arrival_rate
from queue_scaler.scaling.domain.signals.arrival_rate import ARRIVAL_RATE, ArrivalRateSettings

NOW = 1000.0


def pool(slots: int = 1, seconds: float = 10.0, **settings: Any) -> PoolConfig:
    return PoolConfig.model_validate(
        {
            "name": "p",
            "max_size": 100,
            "slots_per_instance": slots,
            "seconds_per_message": seconds,
            "queues": [{"name": "a", "target_per_instance": 20}, {"name": "b", "target_per_instance": 20}],
            "signals": {"backlog": {}, "arrival_rate": settings},
        }
    )


def seen(a: tuple[int, int] = (0, 0), b: tuple[int, int] = (0, 0), error: str | None = None) -> Observation:
    """Queue a (visible, in flight), queue b (visible, in flight), or b unreadable."""
    queues: list[dict[str, Any]] = [{"name": "a", "visible": a[0], "in_flight": a[1]}]
    queues.append({"name": "b", "error": error} if error else {"name": "b", "visible": b[0], "in_flight": b[1]})
    return Observation.model_validate({"queues": queues, "fleet": {"desired": 1, "in_service": 1}})


def samples(*points: tuple[float, int, int]) -> History:
    return History(samples=[WorkSample(at=at, work=work, in_flight=running) for at, work, running in points])


@dataclass(frozen=True)
class Case:
    name: str
    observation: Observation
    history: History
    raw_need: float
    active: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    slots: int = 1
    line: str | None = None


CASES = [
    Case(
        "given no sample yet and 4 running of 10 s jobs, when proposing, then the load is the 4 busy slots + sqrt(4)",
        seen(a=(0, 4)),
        History(),
        raw_need=6.0,
        line="arrival rate: work 4 -> 4 in 0 s, 4 running: 0.4/s x 10 s = load 4 slot(s); + 1 x sqrt(load) "
        "= 6 slot(s) / 1 = 6",
    ),
    Case(
        "given the work grew by 12 over 60 s with 2 running throughout, when proposing, then rate 0.2 + 0.2",
        seen(a=(10, 2)),
        samples((940.0, 0, 2)),
        raw_need=4.0 + 2.0,
    ),
    Case(
        "given both queues' work and running jobs, when proposing, then they are summed",
        seen(a=(0, 3), b=(0, 6)),
        samples((990.0, 9, 9)),
        raw_need=9.0 + 3.0,
    ),
    Case(
        "given the running count varies, when proposing, then its mean over the samples is the finishing rate",
        seen(a=(0, 6)),
        samples((980.0, 6, 0), (990.0, 6, 3)),
        raw_need=3.0 + 3.0**0.5,
    ),
    Case(
        "given a sample exactly one window old, when proposing, then it is outside the window",
        seen(a=(0, 4)),
        samples((880.0, 100, 4)),
        raw_need=6.0,
    ),
    Case(
        "given a sample just inside the window, when proposing, then the rate is measured from it",
        seen(a=(0, 4)),
        samples((880.5, 0, 4)),
        raw_need=(4 / 119.5 + 0.4) * 10 + ((4 / 119.5 + 0.4) * 10) ** 0.5,
    ),
    Case(
        "given a sample dated now, when proposing, then the current observation replaces it",
        seen(a=(0, 4)),
        samples((1000.0, 400, 0)),
        raw_need=6.0,
        line="arrival rate: work 4 -> 4 in 0 s, 4 running: 0.4/s x 10 s = load 4 slot(s); + 1 x sqrt(load) "
        "= 6 slot(s) / 1 = 6",
    ),
    Case(
        "given a window of 30 s, when a sample is 40 s old, then it is outside",
        seen(a=(0, 4)),
        samples((960.0, 0, 4)),
        raw_need=6.0,
        settings={"window_seconds": 30},
    ),
    Case(
        "given a queue draining faster than the jobs finish, when proposing, then the rate is never negative",
        seen(a=(0, 1)),
        samples((940.0, 60, 1)),
        raw_need=0.0,
        active=False,
        line="arrival rate: work 60 -> 1 in 60 s, 1 running: 0/s x 10 s = load 0 slot(s); + 1 x sqrt(load) "
        "= 0 slot(s) / 1 = 0",
    ),
    Case(
        "given no work at all, when proposing, then nothing is needed and the signal is inactive",
        seen(),
        samples((940.0, 0, 0)),
        raw_need=0.0,
        active=False,
    ),
    Case(
        "given staffing 0, when proposing, then the load alone",
        seen(a=(0, 4)),
        History(),
        raw_need=4.0,
        settings={"staffing": 0},
    ),
    Case(
        "given staffing 2, when proposing, then load + 2 sqrt(load)",
        seen(a=(0, 4)),
        History(),
        raw_need=8.0,
        settings={"staffing": 2},
    ),
    Case(
        "given a burst window of 30 s and 100 arrivals in its last 20 s, when proposing, then its rate less "
        "3 standard deviations of the count (100 - 3 x 10 in 20 s = 3.5/s) wins over the long window's 1/s",
        seen(a=(100, 0)),
        samples((900.0, 0, 0), (980.0, 0, 0)),
        raw_need=35.0 + 35.0**0.5,
        settings={"burst_window_seconds": 30},
        line="arrival rate (burst window: 100 arrived - 3 x sqrt): work 0 -> 100 in 20 s, 0 running: 3.5/s x "
        "10 s = load 35 slot(s); + 1 x sqrt(load) = 40.92 slot(s) / 1 = 40.92",
    ),
    Case(
        "given a burst window and a rise its counting noise explains (9 - 3 x 3 = 0), when proposing, then "
        "the long window's rate",
        seen(a=(9, 0)),
        samples((900.0, 0, 0), (980.0, 0, 0)),
        raw_need=0.9 + 0.9**0.5,
        settings={"burst_window_seconds": 30},
    ),
    Case(
        "given a burst window and a steady flow it measures lower than the long window, when proposing, then "
        "the long window's rate",
        seen(a=(0, 4)),
        samples((900.0, 0, 4), (980.0, 0, 4)),
        raw_need=(4 / 100 + 0.4) * 10 + ((4 / 100 + 0.4) * 10) ** 0.5,
        settings={"burst_window_seconds": 30},
    ),
    Case(
        "given dispersion and arrivals as even as Poisson's, when proposing, then the staffing of a Poisson flow",
        seen(a=(15, 0)),
        samples((970.0, 0, 0), (980.0, 5, 0), (990.0, 10, 0)),
        raw_need=5.0 + 5.0**0.5,
        settings={"dispersion": True},
    ),
    Case(
        "given dispersion and all 30 arrivals in the last of three intervals, when proposing, then the "
        "staffing term grows with the dispersion ((10^2 + 10^2 + 20^2) / 10 / 2 = 30)",
        seen(a=(30, 0)),
        samples((970.0, 0, 0), (980.0, 0, 0), (990.0, 0, 0)),
        raw_need=10.0 + (30.0 * 10.0) ** 0.5,
        settings={"dispersion": True},
        line="arrival rate: work 0 -> 30 in 30 s, 0 running: 1/s x 10 s = load 10 slot(s); + 1 x "
        "sqrt(dispersion 30 x load) = 27.32 slot(s) / 1 = 27.32",
    ),
    Case(
        "given the same clumped arrivals without dispersion, when proposing, then Poisson staffing",
        seen(a=(30, 0)),
        samples((970.0, 0, 0), (980.0, 0, 0), (990.0, 0, 0)),
        raw_need=10.0 + 10.0**0.5,
    ),
    Case(
        "given 4 slots per instance, when proposing, then the slots are divided among them",
        seen(a=(0, 4)),
        History(),
        raw_need=1.5,
        slots=4,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_arrival_rate_proposal(case: Case) -> None:
    config = pool(case.slots, **case.settings)
    proposal = ARRIVAL_RATE.need(config, case.observation, case.history, NOW)
    assert proposal.signal == "arrival_rate"
    assert proposal.raw_need == pytest.approx(case.raw_need)
    assert proposal.held == proposal.raw_need  # none of it is queue-driven
    assert proposal.active is case.active
    assert proposal.unavailable == ()
    if case.line is not None:
        assert proposal.lines == (case.line,)


def test_given_a_rate_when_proposing_then_its_activity_and_work_are_reported() -> None:
    proposal = ARRIVAL_RATE.need(pool(), seen(a=(2, 4)), History(), NOW)
    assert proposal.activity == "arrival rate 0.4/s > 0"
    assert proposal.work == 6
    idle = ARRIVAL_RATE.need(pool(), seen(), History(), NOW)
    assert idle.activity == "arrival rate 0/s = 0"


def test_given_an_unreadable_queue_when_proposing_then_no_rate_and_the_queue_is_unavailable() -> None:
    proposal = ARRIVAL_RATE.need(pool(), seen(a=(5, 5), error="Throttling"), samples((940.0, 0, 0)), NOW)
    assert proposal.signal == "arrival_rate"
    assert (proposal.raw_need, proposal.active, proposal.unavailable) == (0.0, False, ("b",))
    assert proposal.lines == ("arrival rate: 1 queue(s) unavailable: no rate",)
    assert proposal.activity == "arrival rate unknown"


@pytest.mark.parametrize(
    ("observation", "expected"),
    [
        (seen(a=(3, 2), b=(1, 4)), WorkSample(at=NOW, work=10, in_flight=6)),
        (seen(a=(3, 2), error="Throttling"), None),
    ],
    ids=["visible and in flight of every queue", "a queue unreadable: no sample"],
)
def test_the_work_sample(observation: Observation, expected: WorkSample | None) -> None:
    assert arrival_rate.sample(observation, NOW) == expected


def test_given_delayed_messages_when_sampling_then_they_are_not_work_yet() -> None:
    observation = Observation.model_validate(
        {
            "queues": [{"name": "a", "visible": 1, "in_flight": 1, "delayed": 5}, {"name": "b"}],
            "fleet": {"desired": 0},
        }
    )
    assert arrival_rate.sample(observation, NOW) == WorkSample(at=NOW, work=2, in_flight=1)


@pytest.mark.parametrize(
    ("points", "rate", "span"),
    [
        ([(5.0, 7, 3)], 0.3, 0.0),
        ([(0.0, 0, 0), (10.0, 5, 0)], 0.5, 10.0),
        ([(0.0, 0, 0), (1.0, 5, 0)], 5.0, 1.0),
        ([(0.0, 0, 0), (0.5, 5, 0)], 10.0, 0.5),
        ([(0.0, 20, 2), (10.0, 0, 2)], 0.0, 10.0),
        ([(0.0, 10, 10), (10.0, 0, 10)], 0.0, 10.0),
        ([(0.0, 5, 4), (10.0, 2, 4)], 0.1, 10.0),
    ],
    ids=[
        "one sample: running / seconds",
        "growth only",
        "growth over exactly 1 s",
        "growth over half a second",
        "falling: clipped at 0",
        "falling exactly as fast",
        "falling",
    ],
)
def test_the_rate_estimate(points: list[tuple[float, int, int]], rate: float, span: float) -> None:
    estimate = arrival_rate.arrival_rate([WorkSample(at=a, work=w, in_flight=r) for a, w, r in points], 10.0)
    assert estimate == (pytest.approx(rate), span)


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(990.0, 0, 0), (1000.0, 30, 0)], 1.0),
        ([(980.0, 0, 0), (990.0, 0, 0), (1000.0, 0, 0)], 1.0),
        ([(980.0, 0, 0), (990.0, 10, 0), (1000.0, 20, 0)], 1.0),
        ([(970.0, 0, 0), (980.0, 0, 0), (990.0, 0, 0), (1000.0, 30, 0)], 30.0),
        ([(980.0, 10, 10), (990.0, 0, 10), (1000.0, 20, 10)], 18.0),
    ],
    ids=[
        "one interval tells nothing: 1",
        "no arrivals: 1",
        "even arrivals: below 1, so 1",
        "30 arrivals in the last of three 10 s intervals: 30",
        "the finishing jobs' variance is expected: (15^2 + 15^2) / (15 + 10) = 18, not 30",
    ],
)
def test_the_index_of_dispersion(points: list[tuple[float, int, int]], expected: float) -> None:
    assert arrival_rate.dispersion(samples(*points).samples, 10.0) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"window_seconds": 9.99}, "window_seconds"),
        ({"window_seconds": 3600.01}, "window_seconds"),
        ({"staffing": -0.01}, "staffing"),
        ({"staffing": 10.01}, "staffing"),
        ({"rate": 1}, "rate"),
        ({"burst_window_seconds": 0}, "burst_window_seconds"),
        ({"window_seconds": 60, "burst_window_seconds": 60}, ": Value error, burst_window_seconds"),
    ],
    ids=[
        "window under 10 s",
        "window over an hour",
        "negative staffing",
        "staffing over 10",
        "unknown field",
        "burst window 0 s",
        "burst window not shorter than the window",
    ],
)
def test_given_bad_settings_when_validating_then_the_field_is_named(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=rf"signals\.arrival_rate: {field}"):
        pool(**settings)


@pytest.mark.parametrize(
    "settings",
    [
        {"window_seconds": 10},
        {"window_seconds": 3600},
        {"staffing": 0},
        {"staffing": 10},
        {"window_seconds": 10, "burst_window_seconds": 1},
    ],
    ids=["window 10 s", "window an hour", "staffing 0", "staffing 10", "burst window 1 s under a 10 s window"],
)
def test_given_settings_on_their_bounds_when_validating_then_they_are_accepted(settings: dict[str, Any]) -> None:
    assert pool(**settings).signals["arrival_rate"] == ArrivalRateSettings(**settings)


def test_the_defaults_are_a_120_s_window_and_staffing_1() -> None:
    assert ArrivalRateSettings() == ArrivalRateSettings(window_seconds=120, staffing=1.0)


def test_given_no_seconds_per_message_when_validating_then_arrival_rate_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"signals\.arrival_rate needs the pool's seconds_per_message"):
        PoolConfig.model_validate(
            {
                "name": "p",
                "max_size": 5,
                "queues": [{"name": "a", "target_per_instance": 20}],
                "signals": {"arrival_rate": {}},
            }
        )


def test_given_arrival_rate_when_deciding_then_the_decision_carries_its_sample_and_history_keeps_it() -> None:
    config = pool()
    decision = decide_pool(NOW, config, seen(a=(2, 4)), History())
    assert decision.sample == WorkSample(at=NOW, work=6, in_flight=4)
    recorded = History().record(decision, NOW, config.history_seconds())
    assert recorded.samples == [WorkSample(at=NOW, work=6, in_flight=4)]
    assert "sample" not in decision.model_dump() and "held" not in decision.model_dump()


def test_given_backlog_alone_when_deciding_then_no_sample_is_kept() -> None:
    config = PoolConfig.model_validate(
        {"name": "p", "max_size": 5, "queues": [{"name": "a", "target_per_instance": 2}]}
    )
    decision = decide_pool(
        NOW,
        config,
        Observation.model_validate({"queues": [{"name": "a", "visible": 3}], "fleet": {"desired": 1}}),
        History(),
    )
    assert decision.sample is None
    assert History().record(decision, NOW, 300).samples == []


@pytest.mark.parametrize(
    ("settings", "down_window", "seconds"),
    [({"window_seconds": 600}, 300, 600.0), ({"window_seconds": 60}, 300, 300.0), ({}, 100, 120.0)],
    ids=["the signal's window is longer", "the stabilization window is longer", "the default 120 s window"],
)
def test_the_history_spans_the_longest_look_back(settings: dict[str, Any], down_window: float, seconds: float) -> None:
    config = pool(**settings).model_copy(deep=True)
    behavior = config.behavior.model_copy(
        update={
            "scale_down": config.behavior.scale_down.model_copy(update={"stabilization_window_seconds": down_window})
        }
    )
    assert config.model_copy(update={"behavior": behavior}).history_seconds() == seconds


def test_given_a_large_arrival_rate_when_deciding_then_it_wins_over_the_backlog_and_is_named() -> None:
    decision: Decision = decide_pool(NOW, pool(), seen(a=(0, 16)), History())
    assert decision.signal == "arrival_rate"
    assert decision.recommendation == 20
    assert decision.held == 20
    assert "signals: backlog 0.8, arrival_rate 20; largest: arrival_rate" in decision.explanation


def test_given_both_signals_active_at_zero_when_deciding_then_the_pool_wakes_on_the_largest() -> None:
    at_zero = Observation.model_validate(
        {"queues": [{"name": "a", "visible": 40}, {"name": "b"}], "fleet": {"desired": 0}}
    )
    decision = decide_pool(NOW, pool(), at_zero, samples((940.0, 0, 0)))
    assert (decision.signal, decision.desired) == ("arrival_rate", 10)
    assert "need ceil(9.25) = 10; from zero: arrival rate 0.67/s > 0, recommend 10" in decision.explanation
