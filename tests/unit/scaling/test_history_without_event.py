"""Undoing a change that did not happen drops exactly its scale event: the recommendations (which
stabilization reads) and the events of other ticks (which rate limits read) stay. Pruning keeps what a
later decision can still read: nothing as old as the look-back or older, nothing dated after now."""

from __future__ import annotations

import pytest

from queue_scaler.scaling.domain.models import History, Recommendation, ScaleEvent, WorkSample

HISTORY = History(
    recommendations=[Recommendation(at=5.0, desired=3), Recommendation(at=7.0, desired=4)],
    scale_events=[ScaleEvent(at=5.0, change=2), ScaleEvent(at=7.0, change=1)],
)


def test_given_the_event_of_a_tick_when_undone_then_only_it_is_dropped() -> None:
    undone = HISTORY.without_event(7.0)
    assert undone.scale_events == [ScaleEvent(at=5.0, change=2)]
    assert undone.recommendations == HISTORY.recommendations


def test_given_no_event_at_that_time_when_undone_then_the_history_is_unchanged() -> None:
    assert HISTORY.without_event(6.0) == HISTORY


def at(*times: float) -> History:
    """One recommendation, one scale event and one work sample at each time."""
    return History(
        recommendations=[Recommendation(at=t, desired=1) for t in times],
        scale_events=[ScaleEvent(at=t, change=1) for t in times],
        samples=[WorkSample(at=t, work=1, in_flight=0) for t in times],
    )


@pytest.mark.parametrize(
    ("name", "times", "kept"),
    [
        ("given entries exactly as old as the look-back then they are dropped", (700.0,), ()),
        ("given entries just inside it then they are kept", (700.5,), (700.5,)),
        ("given entries dated now then they are kept", (1000.0,), (1000.0,)),
        ("given entries dated after now then they are dropped", (1000.5,), ()),
    ],
)
def test_pruning_to_the_look_back(name: str, times: tuple[float, ...], kept: tuple[float, ...]) -> None:
    assert at(*times).pruned(1000.0, 300.0) == at(*kept)
