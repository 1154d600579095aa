"""An idle worker long-polls; a busy one sweeps with short polls (real processes, requests recorded).

Each worker runs under tests/functional/sqs_requests.py, which records every SQS request's
parameters while moto answers as SQS does: the assertions are on what went over the wire.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional import sqs_requests
from tests.functional.worker_fixtures import WorkerProcess, envelope, make_queue, send_bodies, wait_for
from tests.worker_events import from_json, undocumented

pytestmark = pytest.mark.timeout(60)

StartWorker = Callable[..., tuple[WorkerProcess, Path]]
POLL_WAIT = 2


@pytest.fixture
def start_worker(endpoint: str, tmp_path: Path) -> Iterator[StartWorker]:
    started: list[WorkerProcess] = []

    def start(**settings: str | int | float) -> tuple[WorkerProcess, Path]:
        log = tmp_path / "requests.jsonl"
        worker = WorkerProcess(
            endpoint, tmp_path, "worker", launcher=("tests.functional.sqs_requests", str(log)), **settings
        )
        started.append(worker)
        return worker, log

    yield start
    for worker in started:
        worker.kill()


def receives(log: Path, urls: list[str]) -> list[tuple[int, int]]:
    """(queue index, WaitTimeSeconds) of every ReceiveMessage so far, in order."""
    return [
        (urls.index(r["params"]["QueueUrl"]), r["params"]["WaitTimeSeconds"])
        for r in sqs_requests.load(log, "ReceiveMessage")
    ]


def test_given_empty_queues_when_idle_then_each_sweep_long_polls_the_top_queue_for_the_configured_wait(
    sqs: Any, start_worker: StartWorker
) -> None:
    urls = [make_queue(sqs, "idle-high")[0], make_queue(sqs, "idle-low")[0]]
    worker, log = start_worker(
        QUEUE_URLS=",".join(urls), POLL_WAIT_SECONDS=POLL_WAIT, WORKER_SLOTS=2, WORKER_PREFETCH=1, VISIBILITY_TIMEOUT=45
    )
    assert wait_for(lambda: len(receives(log, urls)) >= 6, 30), worker.log_text()
    worker.signal(signal.SIGTERM)
    assert worker.wait(POLL_WAIT + 10) == 0

    # The first sweep short-polls both (work may be waiting); once it found nothing, each sweep waits
    # on the top queue for POLL_WAIT_SECONDS, then looks at the lower one without waiting.
    assert receives(log, urls)[:6] == [(0, 0), (1, 0), (0, POLL_WAIT), (1, 0), (0, POLL_WAIT), (1, 0)]
    for request in sqs_requests.load(log, "ReceiveMessage"):
        assert request["params"]["MaxNumberOfMessages"] == 3, "two free slots and one prefetch"
        assert request["params"]["VisibilityTimeout"] == 45


def test_given_work_arriving_when_an_idle_worker_receives_it_then_it_short_polls_until_a_sweep_finds_nothing(
    sqs: Any, start_worker: StartWorker
) -> None:
    urls = [make_queue(sqs, "wake-high")[0], make_queue(sqs, "wake-low")[0]]
    worker, log = start_worker(QUEUE_URLS=",".join(urls), POLL_WAIT_SECONDS=POLL_WAIT, WORKER_SLOTS=1)
    assert wait_for(lambda: (0, POLL_WAIT) in receives(log, urls), 30), worker.log_text()
    send_bodies(sqs, urls[1], [envelope("low-1")])
    assert wait_for(lambda: worker.job_ids("job_completed") == ["low-1"], 30), worker.log_text()
    answers = [r["messages"] for r in sqs_requests.load(log, "ReceiveMessage")]
    taken = answers.index(1)  # the receive that got low-1
    assert wait_for(lambda: len(receives(log, urls)) >= taken + 5, 30), worker.log_text()
    worker.signal(signal.SIGTERM)
    assert worker.wait(POLL_WAIT + 10) == 0

    # Busy again: the next sweep short-polls both queues; only once it found nothing does the worker
    # go back to waiting on the top queue.
    seen = receives(log, urls)
    assert seen[taken] == (1, 0), seen
    assert seen[taken + 1 : taken + 5] == [(0, 0), (1, 0), (0, POLL_WAIT), (1, 0)], seen
    assert undocumented([from_json(line) for line in worker.events()]) == []
