"""Pure scheduling rules of the worker: priority order with a starvation guard, slot accounting."""

from __future__ import annotations

import itertools

import pytest

from queue_worker.scheduling import PriorityBuffer, PriorityOrder, SlotBoard


def test_given_fresh_queues_when_ordered_then_highest_priority_first() -> None:
    assert PriorityOrder(3, starvation_limit=5).order() == [0, 1, 2]


def test_given_a_busy_top_queue_when_lower_ones_are_skipped_limit_times_then_they_are_polled_first() -> None:
    order = PriorityOrder(3, starvation_limit=2)
    order.record([0])
    assert order.order() == [0, 1, 2]
    order.record([0])
    assert order.order() == [1, 2, 0], "both skipped twice: the higher of them first"


def test_given_a_starving_queue_polled_when_recorded_then_its_count_resets() -> None:
    order = PriorityOrder(2, starvation_limit=1)
    order.record([0])
    assert order.order() == [1, 0]
    order.record([1])
    assert order.order() == [0, 1]


def test_given_a_full_sweep_when_recorded_then_no_queue_is_starving() -> None:
    order = PriorityOrder(3, starvation_limit=1)
    order.record([0, 1, 2])
    assert order.skipped == [0, 0, 0]


def test_given_a_top_queue_that_always_has_work_then_the_lowest_gets_one_receive_in_limit_plus_one() -> None:
    limit = 4
    order = PriorityOrder(3, starvation_limit=limit)
    served = []
    for _ in range(100):
        # Every queue always has messages: a receive stops at the first queue it polls.
        first = order.order()[0]
        served.append(first)
        order.record([first])
    assert served.count(0) > served.count(1) > 0
    assert served.count(2) >= 100 // (limit + 2)
    gaps = [i for i, q in enumerate(served) if q == 2]
    assert max(b - a for a, b in itertools.pairwise(gaps)) <= 2 * (limit + 1)


@pytest.mark.parametrize(("count", "limit"), [(0, 1), (1, 0)])
def test_given_invalid_sizes_when_built_then_rejected(count: int, limit: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PriorityOrder(count, limit)


@pytest.mark.parametrize(
    ("case", "board", "budget"),
    [
        ("idle, one slot", SlotBoard(slots=1), 1),
        ("idle, four slots, prefetch two", SlotBoard(slots=4, prefetch=2), 6),
        ("all slots busy", SlotBoard(slots=2, running=2), 0),
        ("busy but prefetch room", SlotBoard(slots=2, prefetch=1, running=2), 1),
        ("prefetch already held", SlotBoard(slots=2, prefetch=1, running=2, buffered=1), 0),
        ("many slots: one SQS batch at most", SlotBoard(slots=32), 10),
        ("never negative", SlotBoard(slots=1, running=1, buffered=3), 0),
    ],
)
def test_given_a_slot_board_then_the_receive_budget_is_free_slots_plus_prefetch(
    case: str, board: SlotBoard, budget: int
) -> None:
    assert board.receive_budget() == budget, case


def test_given_held_messages_when_popped_then_highest_priority_then_first_received() -> None:
    buffer: PriorityBuffer[str] = PriorityBuffer()
    for priority, item in [(1, "low-a"), (0, "high-a"), (1, "low-b"), (0, "high-b")]:
        buffer.push(priority, item)
    assert len(buffer) == 4
    assert buffer.pop() == "high-a"
    assert buffer.drain() == ["high-b", "low-a", "low-b"]
    assert len(buffer) == 0
