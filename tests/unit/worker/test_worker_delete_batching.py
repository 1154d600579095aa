"""Succeeded jobs' messages are deleted together: jobs ending within the gathering window share one
DeleteMessageBatch call, at most 10 entries each (SQS's batch limit).

Over an in-memory fake of the worker's SQS door that records every delete call. The jobs end a
little apart (20 ms each), and the window is widened to 1 s so that a busy machine cannot make
them miss it; the rule under test is that the gathering lasts its window, not that it is 50 ms.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_scaler.shared.jobs import JobEnvelope
from queue_worker import worker as worker_module
from queue_worker.sqs import ReceivedMessage
from queue_worker.worker import Worker
from tests.unit.worker.test_worker_settlement import FakeQueues, body, make_worker

pytestmark = pytest.mark.timeout(30)

GATHER_SECONDS = 1.0
STAGGER_SECONDS = 0.02


class RecordingQueues(FakeQueues):
    """FakeQueues that also keeps each delete call's messages, as one batch."""

    def __init__(self, bodies: list[str]) -> None:
        super().__init__(bodies)
        self.delete_calls: list[list[str]] = []

    def delete(self, messages: list[ReceivedMessage]) -> dict[str, str]:
        with self._lock:
            self.delete_calls.append([m.message_id for m in messages])
        return super().delete(messages)


@pytest.fixture(autouse=True)
def wide_gathering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "DELETE_GATHER_SECONDS", GATHER_SECONDS)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[tuple[Worker, threading.Thread]]]:
    running: list[tuple[Worker, threading.Thread]] = []
    yield running
    for worker, thread in running:
        worker.request_stop(signal.SIGTERM)
        thread.join(10)


def run_staggered(jobs: int, tmp_path: Path, started: list[tuple[Worker, threading.Thread]]) -> RecordingQueues:
    """`jobs` jobs that start together and end STAGGER_SECONDS apart, one slot each."""
    together = threading.Barrier(jobs)

    def staggered(job: JobEnvelope) -> None:
        together.wait(10)
        time.sleep(STAGGER_SECONDS * int(job.job_id))

    queues = RecordingQueues([body(str(i)) for i in range(jobs)])
    worker = make_worker(tmp_path / "health", queues, staggered, worker_slots=jobs, drain_seconds=5)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    started.append((worker, thread))
    deadline = time.monotonic() + 2 * GATHER_SECONDS + 5
    while len(queues.deleted) < jobs and time.monotonic() < deadline:
        time.sleep(0.02)
    return queues


@pytest.mark.parametrize(
    ("case", "jobs", "sizes"),
    [
        ("three jobs ending 20 ms apart: one call", 3, [3]),
        ("ten: one full batch, sent without waiting out the window", 10, [10]),
        ("twelve: a full batch of 10, then the other 2 together", 12, [10, 2]),
    ],
)
def test_given_jobs_ending_within_the_gathering_window_then_their_deletes_share_calls_of_at_most_10(
    case: str, jobs: int, sizes: list[int], tmp_path: Path, started: list[tuple[Worker, threading.Thread]]
) -> None:
    queues = run_staggered(jobs, tmp_path, started)
    assert sorted(queues.deleted) == sorted(f"m-{i}" for i in range(jobs)), case
    assert [len(call) for call in queues.delete_calls] == sizes, case


def test_given_a_full_batch_when_it_is_ready_then_it_is_deleted_before_the_window_ends(
    tmp_path: Path, started: list[tuple[Worker, threading.Thread]]
) -> None:
    begun = time.monotonic()
    queues = run_staggered(10, tmp_path, started)
    assert [len(call) for call in queues.delete_calls] == [10]
    assert time.monotonic() - begun < GATHER_SECONDS, "ten waiting deletes go at once"
