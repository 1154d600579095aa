"""Demo job handlers (CONTRACTS.md section 4), used by the demo, the tests and the benchmark."""

from __future__ import annotations

import time

from queue_scaler.shared.jobs import JobEnvelope


class DemoJobError(RuntimeError):
    """Raised by a demo job asked to fail, so that its message ends in the DLQ."""


def sleep_job(job: JobEnvelope) -> None:
    """Sleep `payload.seconds` (default 0), then raise when `payload.fail` is true."""
    time.sleep(float(job.payload.get("seconds", 0)))
    if job.payload.get("fail") is True:
        raise DemoJobError(f"job {job.job_id} failed on purpose (payload.fail)")
