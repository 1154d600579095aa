"""The opt-in policy options of issue 15: `stabilize_queue_part` and `count_in_flight_as_slots_always`,
and the history entries they and the arrival_rate signal keep (held parts, work samples)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from queue_scaler.scaling.domain.behavior import remembered
from queue_scaler.scaling.domain.decision import decide_pool
from queue_scaler.scaling.domain.models import History, LimitedBy, Observation, Recommendation, ScaleEvent, WorkSample
from queue_scaler.scaling.domain.pool import PoolConfig

NOW = 1000.0
DOWN_300: dict[str, Any] = {
    "scale_up": {"stabilization_window_seconds": 0, "policies": []},
    "scale_down": {"stabilization_window_seconds": 300, "policies": []},
}


def pool(**fields: Any) -> PoolConfig:
    base: dict[str, Any] = {
        "name": "p",
        "max_size": 100,
        "tolerance": 0,
        "queues": [{"name": "q", "target_per_instance": 20}],
        "behavior": DOWN_300,
        "count_in_flight_as_slots": True,
    }
    return PoolConfig.model_validate(base | fields)


def observed(visible: int, in_flight: int, desired: int) -> Observation:
    return Observation.model_validate(
        {"queues": [{"name": "q", "visible": visible, "in_flight": in_flight}], "fleet": {"desired": desired}}
    )


def past(*recommendations: tuple[float, int, float]) -> History:
    return History(recommendations=[Recommendation(at=at, desired=d, held=h) for at, d, h in recommendations])


@pytest.mark.parametrize(
    ("desired", "held_then", "held_now", "expected"),
    [
        (10, 8.0, None, 10),
        (10, 8.0, 2.0, 4),
        (10, 8.0, 0.0, 2),
        (10, 0.0, 3.0, 10),
        (6, 3.0, 1.5, 5),
        (5, 2.0, 1.0000000001, 4),
        (5, 2.0, 1.01, 5),
        (2, 3.5, 0.0, 0),
        (2, 3.5, 0.5, 1),
        (0, 0.0, 0.0, 0),
    ],
    ids=[
        "off: all of it",
        "queue part 2 + 2 held now",
        "queue part 2, nothing held now",
        "capped at what it was",
        "rounded up",
        "float noise does not add an instance",
        "just over a whole instance",
        "held more than it was: no queue part",
        "no queue part, half an instance held now",
        "zero",
    ],
)
def test_what_a_past_recommendation_is_remembered_as(
    desired: int, held_then: float, held_now: float | None, expected: int
) -> None:
    assert remembered(Recommendation(at=0, desired=desired, held=held_then), held_now) == expected


@dataclass(frozen=True)
class Case:
    name: str
    observation: Observation
    history: History
    expected: int
    limited_by: LimitedBy
    says: str | None = None
    fields: dict[str, Any] = field(default_factory=lambda: {"stabilize_queue_part": True})


CASES = [
    Case(
        "given a burst's busy fleet remembered and 2 jobs left, when queue-part, then down to the 2 running",
        observed(0, 2, desired=10),
        past((900.0, 10, 8.0)),
        expected=4,
        limited_by=LimitedBy.SCALE_DOWN_STABILIZED,
        says="scale-down stabilization: highest queue-driven recommendation (+ 2 held now) in the last 300 s = 4: "
        "hold at 4",
    ),
    Case(
        "given the same without the option, when deciding, then the window holds the whole busy fleet",
        observed(0, 2, desired=10),
        past((900.0, 10, 8.0)),
        expected=10,
        limited_by=LimitedBy.SCALE_DOWN_STABILIZED,
        says="scale-down stabilization: highest recommendation in the last 300 s = 10: hold at 10",
        fields={},
    ),
    Case(
        "given a lull in the queue, when queue-part, then the queue-driven need is still remembered",
        observed(0, 0, desired=5),
        past((900.0, 5, 0.0)),
        expected=5,
        limited_by=LimitedBy.SCALE_DOWN_STABILIZED,
    ),
    Case(
        "given a recommendation exactly one window old, when queue-part, then it is forgotten",
        observed(0, 2, desired=10),
        past((700.0, 10, 0.0)),
        expected=2,
        limited_by=LimitedBy.NONE,
    ),
    Case(
        "given a recommendation just inside the window, when queue-part, then it holds",
        observed(0, 2, desired=10),
        past((700.5, 10, 0.0)),
        expected=10,
        limited_by=LimitedBy.SCALE_DOWN_STABILIZED,
    ),
    Case(
        "given a rising need, when queue-part, then scale-up is untouched",
        observed(40, 12, desired=10),
        past((900.0, 10, 8.0)),
        expected=14,
        limited_by=LimitedBy.NONE,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_queue_part_stabilization(case: Case) -> None:
    decision = decide_pool(NOW, pool(**case.fields), case.observation, case.history)
    assert (decision.desired, decision.limited_by) == (case.expected, case.limited_by)
    if case.says is not None:
        assert case.says in decision.explanation


@pytest.mark.parametrize(
    ("fields", "target", "held"),
    [
        ({"count_in_flight_as_slots": False}, 20, False),
        ({}, 20, True),
        ({"slots_per_instance": 20}, 20, False),
        ({"slots_per_instance": 19}, 20, True),
        ({"slots_per_instance": 21}, 20, False),
        ({"slots_per_instance": 20, "count_in_flight_as_slots_always": True}, 20, True),
        ({"slots_per_instance": 21, "count_in_flight_as_slots_always": True}, 20, True),
    ],
    ids=[
        "off",
        "1 slot, target 20",
        "slots equal to the target: no",
        "slots just below the target",
        "slots above the target: no",
        "always: slots equal to the target",
        "always: slots above the target",
    ],
)
def test_which_queues_count_running_jobs_as_slots(fields: dict[str, Any], target: float, held: bool) -> None:
    assert pool(**fields).slots_held(target) is held


@pytest.mark.parametrize(
    ("fields", "raw_need", "held"),
    [
        ({"slots_per_instance": 4}, 3.0, 0.0),
        ({"slots_per_instance": 4, "count_in_flight_as_slots_always": True}, 2.0, 1.0),
    ],
    ids=["target 2 below 4 slots: in flight against the target", "always: in flight as its slots"],
)
def test_running_jobs_as_slots_below_the_target(fields: dict[str, Any], raw_need: float, held: float) -> None:
    config = pool(queues=[{"name": "q", "target_per_instance": 2}], **fields)
    decision = decide_pool(NOW, config, observed(2, 4, desired=3), History())
    assert decision.raw_need == raw_need
    assert decision.held == held


def test_given_always_without_slots_when_validating_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="count_in_flight_as_slots_always needs count_in_flight_as_slots"):
        pool(count_in_flight_as_slots=False, count_in_flight_as_slots_always=True)


def test_the_options_are_off_by_default() -> None:
    config = PoolConfig.model_validate(
        {"name": "p", "max_size": 1, "queues": [{"name": "q", "target_per_instance": 1}]}
    )
    assert (config.stabilize_queue_part, config.count_in_flight_as_slots_always) == (False, False)
    assert list(config.signals) == ["backlog"]


def test_given_running_jobs_when_recording_then_the_recommendation_keeps_the_part_they_held() -> None:
    decision = decide_pool(NOW, pool(), observed(20, 3, desired=4), History())
    assert decision.held == 3.0
    assert History().record(decision, NOW, 300).recommendations == [Recommendation(at=NOW, desired=4, held=3.0)]


SAMPLES = [WorkSample(at=700.0, work=1, in_flight=1), WorkSample(at=700.5, work=2, in_flight=1)]


def test_samples_are_pruned_at_the_window_edge_and_past_now() -> None:
    history = History(samples=[*SAMPLES, WorkSample(at=1000.5, work=3, in_flight=0)])
    assert history.pruned(NOW, 300).samples == [SAMPLES[1]]
    assert history.future_count(NOW) == 1
    assert history.as_of(NOW).samples == SAMPLES


def test_a_history_without_future_entries_is_its_own_as_of() -> None:
    history = History(samples=SAMPLES)
    assert history.future_count(NOW) == 0
    assert history.as_of(NOW) is history


def test_dropping_a_scale_event_keeps_the_samples_and_recommendations() -> None:
    history = History(
        recommendations=[Recommendation(at=NOW, desired=3)],
        scale_events=[ScaleEvent(at=NOW, change=1)],
        samples=SAMPLES,
    )
    undone = history.without_event(NOW)
    assert (undone.recommendations, undone.scale_events, undone.samples) == (history.recommendations, [], SAMPLES)


def test_a_decision_on_partial_metrics_keeps_no_recommendation_and_no_sample() -> None:
    config = pool(signals={"backlog": {}, "arrival_rate": {}}, seconds_per_message=10)
    observation = Observation.model_validate(
        {"queues": [{"name": "q", "error": "Throttling"}], "fleet": {"desired": 2}}
    )
    decision = decide_pool(NOW, config, observation, History())
    recorded = History().record(decision, NOW, 300)
    assert (recorded.recommendations, recorded.samples) == ([], [])


def test_given_running_jobs_on_two_queues_when_recording_then_the_held_parts_are_summed() -> None:
    config = pool(queues=[{"name": "a", "target_per_instance": 20}, {"name": "b", "target_per_instance": 20}])
    observation = Observation.model_validate(
        {
            "queues": [{"name": "a", "visible": 20, "in_flight": 3}, {"name": "b", "in_flight": 2}],
            "fleet": {"desired": 6},
        }
    )
    decision = decide_pool(NOW, config, observation, History())
    assert (decision.raw_need, decision.held, decision.backlog) == (6.0, 5.0, 25)
    assert History().record(decision, NOW, 300).recommendations == [Recommendation(at=NOW, desired=6, held=5.0)]


def test_given_a_third_of_an_instance_held_when_recording_then_it_is_kept_to_six_decimals() -> None:
    decision = decide_pool(NOW, pool(slots_per_instance=3), observed(0, 1, desired=1), History())
    assert decision.held == 0.333333
    assert History().record(decision, NOW, 300).recommendations == [Recommendation(at=NOW, desired=1, held=0.333333)]
