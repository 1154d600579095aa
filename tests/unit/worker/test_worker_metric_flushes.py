"""When the worker's EMF lines are written, and what they carry: by a fake clock, no sleeps."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from queue_worker.telemetry import MAX_PENDING_VALUES, Telemetry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def telemetry(clock: Clock) -> Iterator[tuple[Telemetry, io.StringIO]]:
    """A Telemetry flushing every 60 s of `clock`, its output in a buffer (the handler's stream restored after)."""
    telemetry = Telemetry("video", "Test", flush_seconds=60, clock=clock)
    handler = telemetry.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    previous, handler.stream = handler.stream, out
    yield telemetry, out
    handler.stream = previous


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def emf(out: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in lines(out) if "_aws" in line]


def test_given_values_when_the_period_has_not_passed_then_nothing_is_written_and_at_the_period_one_line(
    telemetry: tuple[Telemetry, io.StringIO], clock: Clock
) -> None:
    metrics, out = telemetry
    metrics.job_completed(2.5)
    clock.now += 59
    metrics.flush_if_due()
    assert emf(out) == []
    clock.now += 1  # exactly the period
    metrics.flush_if_due()
    [line] = emf(out)
    assert (line["JobsCompleted"], line["JobSeconds"], line["Pool"]) == ([1.0], [2.5], "video")
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Test"


def test_given_a_flush_then_the_next_period_starts_from_it(
    telemetry: tuple[Telemetry, io.StringIO], clock: Clock
) -> None:
    metrics, out = telemetry
    metrics.job_failed(1.0)
    clock.now += 60
    metrics.flush_if_due()
    metrics.job_failed(3.0)
    clock.now += 30
    metrics.flush_if_due()
    assert len(emf(out)) == 1, "30 s after the last flush"
    clock.now += 30
    metrics.flush_if_due()
    second = emf(out)[1]
    assert (second["JobsFailed"], second["JobSeconds"]) == ([1.0], [3.0])


def test_given_a_quiet_worker_when_flushed_then_no_line_is_written(telemetry: tuple[Telemetry, io.StringIO]) -> None:
    metrics, out = telemetry
    metrics.flush()
    assert out.getvalue() == ""


def test_given_values_up_to_the_emf_limit_then_the_line_is_written_at_once_at_90(
    telemetry: tuple[Telemetry, io.StringIO],
) -> None:
    metrics, out = telemetry
    assert MAX_PENDING_VALUES == 90
    for _ in range(MAX_PENDING_VALUES - 1):
        metrics.queue_wait(0.5)
    assert emf(out) == []
    metrics.queue_wait(0.5)
    [line] = emf(out)
    assert line["QueueWaitSeconds"] == [0.5] * MAX_PENDING_VALUES
    metrics.flush()
    assert len(emf(out)) == 1, "nothing was left pending"


def test_given_an_event_then_one_json_line_names_it_its_job_its_level_and_its_fields(
    telemetry: tuple[Telemetry, io.StringIO],
) -> None:
    metrics, out = telemetry
    metrics.event("job_failed", "job failed", job_id="j-1", level="error", attempt=2)
    metrics.event("worker_started", "worker started")
    first, second = lines(out)
    assert (first["event"], first["job_id"], first["level"], first["attempt"]) == ("job_failed", "j-1", "ERROR", 2)
    assert first["message"] == "job failed" and first["pool"] == "video" and first["service"] == "queue-worker"
    assert "job_id" not in second and second["level"] == "INFO"
