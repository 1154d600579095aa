"""Job handlers for the worker tests (JOB_HANDLER=tests.functional.worker_jobs:<name>)."""

from __future__ import annotations

import os
import threading

from queue_scaler.shared.jobs import JobEnvelope

#: Jobs that finish together: each waits until TOGETHER_JOBS of them are running, then all return.
_together = threading.Barrier(int(os.environ.get("TOGETHER_JOBS", "1")))


def together(_job: JobEnvelope) -> None:
    """Return once TOGETHER_JOBS jobs of this process have reached this point (at most 30 s)."""
    _together.wait(timeout=30)
