"""Invariants of the decision over generated inputs (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from queue_scaler.scaling.domain.decision import decide_pool
from queue_scaler.scaling.domain.models import (
    FleetObservation,
    History,
    Observation,
    QueueObservation,
    Recommendation,
    ScaleEvent,
)
from queue_scaler.scaling.domain.pool import PoolConfig

NOW = 10_000.0

policies = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Instances", "Percent"]),
            "value": st.integers(1, 200),
            "period_seconds": st.sampled_from([15, 60, 300]),
        }
    ),
    max_size=3,
)
rules = st.fixed_dictionaries(
    {
        "stabilization_window_seconds": st.sampled_from([0, 60, 300]),
        "select_policy": st.sampled_from(["Max", "Min", "Disabled"]),
        "policies": policies,
    }
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[PoolConfig, Observation, History]:
    min_size = draw(st.integers(0, 5))
    pool = PoolConfig.model_validate(
        {
            "name": "p",
            "min_size": min_size,
            "max_size": draw(st.integers(min_size, 50)),
            "queues": [{"name": "a", "target_per_instance": 5}, {"name": "b", "target_per_instance": 12}],
            "tolerance": draw(st.sampled_from([0, 0.1, 0.5])),
            "activation_backlog": draw(st.sampled_from([0, 5])),
            "behavior": {"scale_up": draw(rules), "scale_down": draw(rules)},
        }
    )
    queues = [
        QueueObservation(name=n, error="ThrottlingException")
        if draw(st.booleans()) and draw(st.booleans())
        else QueueObservation(name=n, visible=draw(st.integers(0, 500)), in_flight=draw(st.integers(0, 50)))
        for n in ("a", "b")
    ]
    history = History(
        recommendations=[
            Recommendation(at=NOW - draw(st.integers(1, 400)), desired=draw(st.integers(0, 60)))
            for _ in range(draw(st.integers(0, 4)))
        ],
        scale_events=[
            ScaleEvent(at=NOW - draw(st.integers(1, 400)), change=draw(st.integers(-10, 10)))
            for _ in range(draw(st.integers(0, 4)))
        ],
    )
    fleet = FleetObservation(desired=draw(st.integers(0, 60)))
    return pool, Observation(queues=queues, fleet=fleet), history


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_decision_invariants(scenario: tuple[PoolConfig, Observation, History]) -> None:
    pool, observation, history = scenario
    decision = decide_pool(NOW, pool, observation, history)
    current = observation.fleet.desired
    # Always within the clamps.
    assert pool.min_size <= decision.desired <= pool.max_size
    # An unreadable queue never lets the fleet shrink, unless max_size itself forces it.
    if decision.unavailable_queues and current <= pool.max_size:
        assert decision.desired >= current
    # Moves only toward the recommendation, unless a clamp forces the other way.
    if pool.min_size <= current <= pool.max_size:
        if decision.desired > current:
            assert decision.recommendation > current or decision.desired == pool.min_size
        if decision.desired < current:
            assert decision.recommendation < current
    # Deterministic, and always explained down to the final line.
    assert decide_pool(NOW, pool, observation, history) == decision
    assert decision.explanation[-1].startswith(f"desired {decision.desired}")
