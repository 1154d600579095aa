"""`decide` on the extremes a schema allows: a decision or exit 2 naming the field, never a traceback;
and a history entry dated in the future never holds a scale-down past the window measured from now."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from devkit.cli import main
from queue_scaler.scaling.domain.decision import DecisionRequest, decide, decide_pool
from queue_scaler.scaling.domain.models import (
    FleetObservation,
    History,
    Observation,
    QueueObservation,
    ScaleEvent,
)
from queue_scaler.scaling.domain.models import Recommendation as Rec
from queue_scaler.scaling.domain.pool import PoolConfig


# The extremes each field's schema allows: zero, the smallest and largest floats, huge integers.
def bounded(low: float, high: float, *extremes: float) -> st.SearchStrategy[float]:
    return st.one_of(st.floats(low, high, allow_nan=False), st.sampled_from([low, high, *extremes]))


positive = st.one_of(
    st.floats(5e-324, 1.7976931348623157e308),
    st.sampled_from([5e-324, 1e-300, 1e-9, 0.5, 1.0, 1e9, 1e300, 1.7976931348623157e308]),
)
anywhere = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.0, -1e308, 1e308]))
counts = st.one_of(st.integers(0, 10**6), st.sampled_from([0, 1, 2**63, 10**30]))
sizes = st.one_of(st.integers(0, 10_000), st.sampled_from([0, 1, 10_000]))
window = bounded(0, 3600, 5e-324)
policy = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Instances", "Percent", "Pods"]),
        "value": st.one_of(st.integers(1, 10**6), st.sampled_from([1, 2**63, 10**30])),
        "period_seconds": bounded(5e-324, 3600),
    }
)
direction = st.fixed_dictionaries(
    {},
    optional={
        "stabilization_window_seconds": window,
        "select_policy": st.sampled_from(["Max", "Min", "Disabled"]),
        "policies": st.lists(policy, max_size=3),
        "tolerance": bounded(0, 0.999999),
    },
)


@st.composite
def pools(draw: st.DrawFn) -> dict[str, Any]:
    min_size = draw(sizes)
    queues = [
        {"name": name, "target_per_instance": draw(positive)}
        if draw(st.booleans())
        else {"name": name, "max_wait_seconds": draw(positive)}
        for name in draw(st.sampled_from([["a"], ["a", "b"]]))
    ]
    in_flight = draw(st.booleans())
    return {
        "name": "p",
        "min_size": min_size,
        "max_size": draw(st.integers(min_size, 10_000)),
        "queues": queues,
        "count_in_flight": in_flight,
        "count_delayed": draw(st.booleans()),
        "activation_backlog": draw(st.one_of(st.just(0.0), positive)),
        "tolerance": draw(bounded(0, 0.999999)),
        "seconds_per_message": draw(positive),
        "slots_per_instance": draw(st.one_of(st.integers(1, 64), st.just(10**12))),
        "keep_busy_instances": draw(st.booleans()),
        "count_in_flight_as_slots": in_flight and draw(st.booleans()),
        "behavior": draw(st.fixed_dictionaries({}, optional={"scale_up": direction, "scale_down": direction})),
    }


observed = st.one_of(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["a", "b"])},
        optional={"visible": counts, "in_flight": counts, "delayed": counts},
    ),
    st.fixed_dictionaries({"name": st.sampled_from(["a", "b"]), "error": st.just("ThrottlingException")}),
)
requests = st.fixed_dictionaries(
    {
        "now": anywhere,
        "pool": pools(),
        "observation": st.fixed_dictionaries(
            {
                "queues": st.lists(observed, max_size=2),
                "fleet": st.fixed_dictionaries(
                    {"desired": counts}, optional={"in_service": counts, "pending": counts, "leaving": counts}
                ),
            }
        ),
        "history": st.fixed_dictionaries(
            {
                "recommendations": st.lists(st.fixed_dictionaries({"at": anywhere, "desired": counts}), max_size=3),
                "scale_events": st.lists(
                    st.fixed_dictionaries({"at": anywhere, "change": st.integers(-(10**6), 10**6)}), max_size=3
                ),
            }
        ),
    }
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(requests)
def test_given_any_schema_valid_request_when_deciding_then_a_decision_comes_back(raw: dict[str, Any]) -> None:
    try:
        request = DecisionRequest.model_validate(raw)
    except ValidationError:
        assume(False)
        return
    decision = decide(request)
    assert request.pool.min_size <= decision.desired <= request.pool.max_size
    assert decision.explanation[-1].startswith(f"desired {decision.desired}")


@pytest.mark.parametrize(
    ("name", "pool"),
    [
        (
            "given a derived target that underflows to 0 when validating then the field is named",
            {"seconds_per_message": 1e300, "queues": [{"name": "a", "max_wait_seconds": 1e-300}]},
        ),
        (
            "given a derived target that overflows to infinity when validating then the field is named",
            {"seconds_per_message": 1e-300, "queues": [{"name": "a", "max_wait_seconds": 1e300}]},
        ),
    ],
)
def test_derived_target_extremes_exit_2_naming_the_field(
    name: str, pool: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = {
        "now": 1.0,
        "pool": {"name": "p", "max_size": 5} | pool,
        "observation": {"queues": [{"name": "a", "visible": 3}], "fleet": {"desired": 1}},
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(raw))
    assert main(["decide", str(path)]) == 2
    assert "queues.0.max_wait_seconds" in capsys.readouterr().err


def test_given_a_tiny_target_and_a_huge_backlog_when_deciding_then_max_size_clamps_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = {
        "now": 1.0,
        "pool": {"name": "p", "max_size": 5, "queues": [{"name": "a", "target_per_instance": 5e-324}]},
        "observation": {"queues": [{"name": "a", "visible": 10**30}], "fleet": {"desired": 1}},
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(raw))
    assert main(["decide", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["desired"], out["limited_by"]) == (5, "MaxSize")


WINDOW = 300.0
NOW = 10_000.0


@settings(max_examples=300, deadline=None)
@given(
    ahead=st.floats(0.001, 1e6),
    high=st.integers(2, 50),
    past=st.lists(st.tuples(st.floats(0.001, 1e4), st.integers(0, 50)), max_size=4),
)
def test_given_a_future_dated_recommendation_when_deciding_then_it_holds_nothing_beyond_the_window(
    ahead: float, high: int, past: list[tuple[float, int]]
) -> None:
    pool = PoolConfig.model_validate(
        {
            "name": "p",
            "max_size": 100,
            "queues": [{"name": "a", "target_per_instance": 10}],
            "behavior": {"scale_down": {"stabilization_window_seconds": WINDOW, "policies": []}},
        }
    )
    observation = Observation(queues=[QueueObservation(name="a")], fleet=FleetObservation(desired=10))
    earlier = [Rec(at=NOW - age, desired=d) for age, d in past]
    with_future = History(recommendations=[*earlier, Rec(at=NOW + ahead, desired=high)])
    decision = decide_pool(NOW, pool, observation, with_future)
    # Exactly what the same history without the future entry decides: only the window from now counts.
    assert decision.desired == decide_pool(NOW, pool, observation, History(recommendations=earlier)).desired
    assert decision.ignored_history == 1
    assert any("dated after now" in line for line in decision.explanation)
    if all(age >= WINDOW or d == 0 for age, d in past):
        assert decision.desired == 0


@pytest.mark.parametrize(
    ("name", "history", "line"),
    [
        (
            "given one entry dated after now then it is named in the singular",
            History(recommendations=[Rec(at=NOW + 1, desired=3)]),
            "ignored 1 history entry dated after now (a clock ahead)",
        ),
        (
            "given two then in the plural",
            History(recommendations=[Rec(at=NOW + 1, desired=3)], scale_events=[ScaleEvent(at=NOW + 2, change=1)]),
            "ignored 2 history entries dated after now (a clock ahead)",
        ),
        (
            "given one dated exactly now then nothing is ignored",
            History(recommendations=[Rec(at=NOW, desired=3)]),
            None,
        ),
    ],
)
def test_the_explanation_counts_the_history_entries_dated_after_now(
    name: str, history: History, line: str | None
) -> None:
    pool = PoolConfig.model_validate(
        {"name": "p", "max_size": 10, "queues": [{"name": "a", "target_per_instance": 10}]}
    )
    observation = Observation(queues=[QueueObservation(name="a", visible=30)], fleet=FleetObservation(desired=3))
    decision = decide_pool(NOW, pool, observation, history)
    ignored = [text for text in decision.explanation if text.startswith("ignored ")]
    assert ignored == ([] if line is None else [line])
    assert decision.ignored_history == (0 if line is None else int(line.split()[1]))
