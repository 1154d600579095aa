"""Pure scheduling rules of the worker: which queue to poll first, and how many messages to ask for.

No I/O and no clock here, so the rules are unit-tested by table, and the threaded worker only applies
them under its lock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from queue_worker.settings import MAX_BATCH


class PriorityOrder:
    """Strict priority across queues (index 0 highest), with a guard against starvation.

    Every receive polls queues in `order()` and stops at the first that returns messages, so a busy
    high-priority queue would keep the ones below it from ever being polled. The guard counts, per
    queue, the consecutive receives that did not poll it; once a count reaches `starvation_limit`,
    that queue is polled first, so even the lowest plan gets at least one batch in every
    `starvation_limit + 1` receives.
    """

    def __init__(self, queue_count: int, starvation_limit: int) -> None:
        if queue_count < 1 or starvation_limit < 1:
            raise ValueError("queue_count and starvation_limit must be at least 1")
        self.starvation_limit = starvation_limit
        self.skipped = [0] * queue_count

    def order(self) -> list[int]:
        """Queue indexes to poll, in order: starving queues (longest-skipped first), then by priority."""
        starving = [i for i, skips in enumerate(self.skipped) if skips >= self.starvation_limit]
        starving.sort(key=lambda i: (-self.skipped[i], i))
        return starving + [i for i in range(len(self.skipped)) if i not in starving]

    def record(self, polled: Iterable[int]) -> None:
        """Account for one receive sweep that polled the queues `polled` (in any order)."""
        polled_set = set(polled)
        self.skipped = [0 if i in polled_set else skips + 1 for i, skips in enumerate(self.skipped)]


@dataclass
class SlotBoard:
    """Slot accounting: jobs running, messages held but not started, and what may still be received."""

    slots: int
    prefetch: int = 0
    running: int = 0
    buffered: int = 0

    def receive_budget(self) -> int:
        """How many messages the next receive should ask for now; 0 means wait for more room.

        The room is free slots plus prefetch, at most one SQS batch of 10. While every slot is busy,
        the receive waits until half that room is free: a receive per finished job would double the
        SQS calls per message for no gain, since nothing could start earlier anyway. An idle slot
        is never kept waiting.
        """
        room = max(0, min(MAX_BATCH, self.slots + self.prefetch - self.running - self.buffered))
        if self.running + self.buffered < self.slots:
            return room
        low_water = max(1, min(MAX_BATCH, self.slots + self.prefetch) // 2)
        return room if room >= low_water else 0


@dataclass(order=True)
class _Entry[T]:
    priority: int
    sequence: int
    item: T = field(compare=False)


class PriorityBuffer[T]:
    """Received messages waiting for a slot: highest-priority queue first, then first received."""

    def __init__(self) -> None:
        self._heap: list[_Entry[T]] = []
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, priority: int, item: T) -> None:
        """Hold `item`; a lower `priority` number is served first."""
        heapq.heappush(self._heap, _Entry(priority, next(self._sequence), item))

    def pop(self) -> T:
        """The next item to start; raises IndexError when empty."""
        return heapq.heappop(self._heap).item

    def drain(self) -> list[T]:
        """Remove and return every held item, in serving order."""
        return [heapq.heappop(self._heap).item for _ in range(len(self._heap))]
