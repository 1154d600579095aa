"""The receive budget's low-water rule: with every slot busy, the next receive waits for half the room.

The room is free slots plus prefetch (at most one SQS batch of 10); the low water is half of what
the board can hold (slots plus prefetch, at most 10), and at least one. Each case sits on a boundary:
exactly the low water (receive), one below it (wait), and the idle slot that is never kept waiting.
"""

from __future__ import annotations

import pytest

from queue_worker.scheduling import SlotBoard


@pytest.mark.parametrize(
    ("case", "board", "budget"),
    [
        # 4 slots + 4 prefetch: low water 4.
        ("all busy, room exactly the low water: receive it", SlotBoard(slots=4, prefetch=4, running=4), 4),
        ("all busy, room one below the low water: wait", SlotBoard(slots=4, prefetch=4, running=4, buffered=1), 0),
        ("one slot idle, room above the low water: receive all of it", SlotBoard(slots=4, prefetch=4, running=3), 5),
        ("idle slot while prefetch is held: receive", SlotBoard(slots=4, prefetch=4, running=2, buffered=1), 5),
        # 4 slots + 2 prefetch: low water 3; busy slots leave only the prefetch room, 2.
        ("all busy, prefetch room under the low water: wait", SlotBoard(slots=4, prefetch=2, running=4), 0),
        ("one slot idle, same room plus one: receive", SlotBoard(slots=4, prefetch=2, running=3), 3),
        # 4 slots, no prefetch: low water 2.
        ("one slot idle, room 1 under the low water: an idle slot never waits", SlotBoard(slots=4, running=3), 1),
        ("all busy, no prefetch: nothing to receive", SlotBoard(slots=4, running=4), 0),
        # 1 slot + 1 prefetch: half of 2 is 1, the least low water.
        ("one slot, one prefetch, busy: one is enough", SlotBoard(slots=1, prefetch=1, running=1), 1),
        # 3 slots + 3 prefetch: half of 6 is 3, rounded down for odd sizes too (5 -> 2).
        ("odd board (3 + 2), busy: low water 2 of room 2", SlotBoard(slots=3, prefetch=2, running=3), 2),
        ("odd board (3 + 2), busy, one buffered: wait", SlotBoard(slots=3, prefetch=2, running=3, buffered=1), 0),
        # 16 slots + 10 prefetch: the board holds 26, but the low water is half of one batch (5).
        ("large board, busy, room 5: receive", SlotBoard(slots=16, prefetch=10, running=16, buffered=5), 5),
        ("large board, busy, room 4: wait", SlotBoard(slots=16, prefetch=10, running=16, buffered=6), 0),
        ("large board, busy, nothing buffered: one full batch", SlotBoard(slots=16, prefetch=10, running=16), 10),
    ],
)
def test_given_every_slot_busy_then_the_receive_waits_for_half_the_room(
    case: str, board: SlotBoard, budget: int
) -> None:
    assert board.receive_budget() == budget, case
