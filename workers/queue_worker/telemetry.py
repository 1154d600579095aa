"""Structured logs and EMF metrics of the worker, through Powertools.

Log lines are JSON with the `event` and `job_id` keys CONTRACTS.md section 4 requires. Metrics are
Embedded Metric Format lines per pool (JobsCompleted, JobsFailed, JobSeconds, QueueWaitSeconds),
flushed periodically because a worker, unlike a Lambda invocation, has no natural end to flush at.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from queue_scaler.shared.metric_names import Metric

SERVICE = "queue-worker"
#: EMF allows 100 values per metric in one line; flushing well before keeps every line valid.
MAX_PENDING_VALUES = 90


class Telemetry:
    """Thread-safe JSON event logging and per-pool EMF metrics."""

    def __init__(self, pool: str, namespace: str, flush_seconds: float, clock: Callable[[], float]) -> None:
        self.logger = Logger(service=SERVICE)
        self.logger.append_keys(pool=pool)
        self._metrics = Metrics(namespace=namespace, service=SERVICE)
        # Default dimensions survive flushes; add_dimension's would be dropped after the first one.
        self._metrics.set_default_dimensions(Pool=pool)
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pending = 0
        self._last_flush = clock()

    def event(self, event: str, message: str, *, job_id: str | None = None, level: str = "info", **fields: Any) -> None:
        """One JSON log line: `event` names what happened, `job_id` which job it concerns."""
        if job_id is not None:
            fields["job_id"] = job_id
        log = getattr(self.logger, level)
        # stacklevel 3: the log line's `location` names the worker code that called event(), not this.
        log(message, stacklevel=3, event=event, **fields)

    def job_completed(self, seconds: float) -> None:
        """Count a completed job and its run time."""
        self._add((Metric.JOBS_COMPLETED, MetricUnit.Count, 1), (Metric.JOB_SECONDS, MetricUnit.Seconds, seconds))

    def job_failed(self, seconds: float) -> None:
        """Count a failed job and its run time."""
        self._add((Metric.JOBS_FAILED, MetricUnit.Count, 1), (Metric.JOB_SECONDS, MetricUnit.Seconds, seconds))

    def count(self, name: Metric) -> None:
        """Count one event (JobsRefused, DuplicatesSkipped, LeaseConflicts, LeaseErrors)."""
        self._add((name, MetricUnit.Count, 1))

    def queue_wait(self, seconds: float) -> None:
        """Record how long a job waited in its queue before it started."""
        self._add((Metric.QUEUE_WAIT_SECONDS, MetricUnit.Seconds, seconds))

    def flush_if_due(self) -> None:
        """Write the pending EMF line when the flush period has passed."""
        with self._lock:
            if self._clock() - self._last_flush >= self._flush_seconds:
                self._flush()

    def flush(self) -> None:
        """Write the pending EMF line now (at shutdown)."""
        with self._lock:
            self._flush()

    def _write_line(self, line: str) -> None:
        # Powertools' flush_metrics print()s the line and its newline separately, so a log line from
        # another thread could land in between. Writing the whole line through the logger's own
        # handler, under its lock, keeps every stdout line one JSON document.
        handler = self.logger.registered_handler
        stream = getattr(handler, "stream", sys.stdout)
        handler.acquire()
        try:
            stream.write(line + "\n")
            stream.flush()
        finally:
            handler.release()

    def _add(self, *values: tuple[Metric, MetricUnit, float]) -> None:
        with self._lock:
            for name, unit, value in values:
                self._metrics.add_metric(name=name, unit=unit, value=value)
            self._pending += 1
            if self._pending >= MAX_PENDING_VALUES:
                self._flush()

    def _flush(self) -> None:
        # Powertools warns on an empty flush; a quiet worker has nothing to say.
        if self._pending:
            blob = self._metrics.serialize_metric_set()
            self._metrics.clear_metrics()
            self._write_line(json.dumps(blob, separators=(",", ":")))
        self._pending = 0
        self._last_flush = self._clock()
