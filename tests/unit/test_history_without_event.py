"""Undoing a change that did not happen drops exactly its scale event: the recommendations (which
stabilization reads) and the events of other ticks (which rate limits read) stay."""

from __future__ import annotations

from queue_scaler.domain.models import History, Recommendation, ScaleEvent

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
