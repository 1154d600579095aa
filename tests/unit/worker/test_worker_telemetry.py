"""Worker telemetry: JSON event lines and EMF lines stay one JSON document per stdout line."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from queue_worker.telemetry import Telemetry


@pytest.fixture
def captured() -> Iterator[tuple[Telemetry, io.StringIO]]:
    """A Telemetry whose output goes to a buffer.

    Powertools configures one handler per service name and process, bound to the stdout of the
    moment; the test swaps that handler's stream and restores it, so that other tests are unaffected.
    """
    telemetry = Telemetry("video", "Test", flush_seconds=3600, clock=time.monotonic)
    handler = telemetry.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    previous = handler.setStream(out)
    yield telemetry, out
    handler.setStream(previous)


def test_given_threads_logging_and_flushing_metrics_then_every_line_is_one_json_document(
    captured: tuple[Telemetry, io.StringIO],
) -> None:
    telemetry, out = captured

    def work(worker: int) -> None:
        for i in range(150):
            telemetry.event("job_completed", "job completed", job_id=f"j-{worker}-{i}")
            telemetry.job_completed(0.5)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    telemetry.queue_wait(1.5)
    telemetry.flush()

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    events = [line for line in lines if line.get("event") == "job_completed"]
    emf = [line for line in lines if "_aws" in line]
    assert len(events) == 900
    assert {e["job_id"] for e in events} == {f"j-{w}-{i}" for w in range(6) for i in range(150)}
    assert sum(sum(line.get("JobsCompleted", [])) for line in emf) == 900
    assert all(len(line.get("JobSeconds", [])) <= 100 for line in emf), "EMF allows 100 values per metric"
    assert {line["Pool"] for line in emf} == {"video"}
    assert emf[-1]["QueueWaitSeconds"] == [1.5]
