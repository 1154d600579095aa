"""How long each receive waits, in-process: the first sweep and a busy worker short-poll every queue;
an idle one long-polls the top queue only (the real-process version: tests/functional/test_worker_idle_long_poll.py)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from queue_worker.sqs import ReceivedMessage
from tests.unit.worker.test_worker_settlement import FakeQueues, body, make_worker

pytestmark = pytest.mark.timeout(30)

POLL_WAIT = 3


class RecordingDoor(FakeQueues):
    """Two queues; records (queue, wait) of each receive; the lower queue gets `later` once asked to."""

    def __init__(self) -> None:
        super().__init__([])
        self.urls = [self.urls[0], "http://sqs.local/1/jobs-low"]
        self.receives: list[tuple[int, int]] = []
        self.later: list[ReceivedMessage] = []

    def receive(self, index: int, max_messages: int, wait_seconds: int, visibility: int) -> list[ReceivedMessage]:
        with self._lock:
            self.receives.append((index, wait_seconds))
            if index == 1 and self.later:
                batch, self.later = self.later, []
                return batch
        time.sleep(0.01)  # a long poll returns at once here: the wait asked for is what is checked
        return []

    def seen(self) -> list[tuple[int, int]]:
        with self._lock:
            return list(self.receives)


def until(check: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_given_empty_queues_then_the_first_sweep_is_short_and_idle_ones_long_poll_the_top_queue(
    tmp_path: Path,
) -> None:
    door = RecordingDoor()
    worker = make_worker(tmp_path / "health", door, lambda job: None, poll_wait_seconds=POLL_WAIT, drain_seconds=5)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    until(lambda: len(door.seen()) >= 6)
    worker.request_stop(signal.SIGTERM)
    thread.join(10)
    assert door.seen()[:6] == [(0, 0), (1, 0), (0, POLL_WAIT), (1, 0), (0, POLL_WAIT), (1, 0)]


def test_given_work_found_then_the_next_sweep_is_short_again(tmp_path: Path) -> None:
    door = RecordingDoor()
    worker = make_worker(tmp_path / "health", door, lambda job: None, poll_wait_seconds=POLL_WAIT, drain_seconds=5)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    until(lambda: (0, POLL_WAIT) in door.seen())
    with door._lock:
        door.later = [ReceivedMessage(1, door.urls[1], "m-low", "r-low", body("low"), 1, None)]
        asked = len(door.receives)
    until(lambda: door.deleted == ["m-low"])
    until(lambda: len(door.seen()) >= asked + 6)
    worker.request_stop(signal.SIGTERM)
    thread.join(10)
    seen = door.seen()
    taken = next(i for i in range(asked, len(seen)) if seen[i] == (1, 0))  # the receive that got m-low
    assert seen[taken + 1 : taken + 5] == [(0, 0), (1, 0), (0, POLL_WAIT), (1, 0)], seen
