"""Jobs that finish together are deleted together, on the wire: a real worker process against moto,
every SQS request recorded (tests/functional/sqs_requests.py).

Twelve jobs wait for each other (tests/functional/worker_jobs.py:together) and end at once; their
messages go in DeleteMessageBatch calls of at most 10 entries (SQS refuses more), not one each.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.functional import sqs_requests
from tests.functional.worker_fixtures import WorkerProcess, counts, envelope, make_queue, send_bodies, wait_for
from tests.worker_events import from_json, undocumented

pytestmark = pytest.mark.timeout(60)

JOBS = 12


def test_given_twelve_jobs_finishing_together_then_their_messages_go_in_batches_of_at_most_10(
    endpoint: str, sqs: Any, tmp_path: Path
) -> None:
    url, _ = make_queue(sqs, "together")
    send_bodies(sqs, url, [envelope(f"j-{i}") for i in range(JOBS)])
    log = tmp_path / "requests.jsonl"
    worker = WorkerProcess(
        endpoint,
        tmp_path,
        "worker",
        launcher=("tests.functional.sqs_requests", str(log)),
        QUEUE_URLS=url,
        WORKER_SLOTS=JOBS,
        JOB_HANDLER="tests.functional.worker_jobs:together",
        TOGETHER_JOBS=JOBS,
        POLL_WAIT_SECONDS=1,
    )
    try:
        assert wait_for(lambda: len(worker.job_ids("job_completed")) == JOBS, 30), worker.log_text()
        worker.signal(signal.SIGTERM)
        assert worker.wait(15) == 0
    finally:
        worker.kill()

    calls = sqs_requests.load(log, "DeleteMessageBatch")
    sizes = [len(call["params"]["Entries"]) for call in calls]
    assert sum(sizes) == JOBS, sizes
    assert all(size <= 10 for size in sizes), sizes
    assert len(calls) <= 3, f"twelve jobs ending together took {len(calls)} delete calls: {sizes}"
    assert not any(call["error"] for call in calls), calls
    assert not sqs_requests.load(log, "DeleteMessage"), "one by one"
    assert counts(sqs, url) == (0, 0)
    assert all(event["deleted"] for event in worker.events("job_completed"))
    assert undocumented([from_json(line) for line in worker.events()]) == []
