"""Wiring of one worker process: settings, SQS client, handler, telemetry and signal handlers."""

from __future__ import annotations

import signal
import sys
import time

from botocore.exceptions import BotoCoreError
from pydantic import ValidationError

from queue_worker.attempts import AttemptRecorder
from queue_worker.health import HealthFile
from queue_worker.protection import protect_instance
from queue_worker.settings import WorkerSettings
from queue_worker.sqs import Queues, make_client
from queue_worker.telemetry import Telemetry
from queue_worker.warm import WarmStandby, target_lifecycle_state
from queue_worker.worker import Worker, load_handler

#: Exit code of a worker that cannot start: its configuration or handler is wrong.
EXIT_CONFIG = 2
#: `docker stop` (and a terminal's Ctrl-C): each asks for a drain.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def main() -> int:
    """Run a worker until SIGTERM or SIGINT; 0 after a drain, 2 when it cannot start."""
    # Caught from the first line: a drain can reach a container still starting (an instance refresh or
    # scale-in of one just launched). Kept, it drains the worker as soon as it runs, which then exits 0
    # holding nothing, instead of Python's default of dying by the signal.
    early: list[int] = []
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda number, _frame: early.append(number))
    try:
        settings = WorkerSettings()
    except ValidationError as error:
        print(f"queue_worker: invalid configuration: {error}", file=sys.stderr)
        return EXIT_CONFIG
    telemetry = Telemetry(
        settings.pool_name, settings.metrics_namespace, settings.metrics_flush_seconds, time.monotonic
    )
    try:
        handler = load_handler(settings.job_handler)
    except (ImportError, AttributeError, TypeError) as error:
        telemetry.event(
            "worker_failed",
            "cannot load JOB_HANDLER",
            level="error",
            handler=settings.job_handler,
            error=repr(error),
        )
        return EXIT_CONFIG
    standby = WarmStandby(target_lifecycle_state, telemetry) if settings.warm_pool_standby else None
    try:
        protection = protect_instance(settings, telemetry, standby.serving if standby is not None else None)
    except (OSError, BotoCoreError) as error:
        telemetry.event("worker_failed", "cannot set up scale-in protection", level="error", error=repr(error))
        return EXIT_CONFIG
    worker = Worker(
        settings,
        Queues(make_client(settings), settings.queue_urls),
        handler,
        telemetry,
        HealthFile(settings.health_file),
        protection=protection,
        attempts=AttemptRecorder.for_settings(settings, telemetry),
        standby=standby,
    )
    for signum in STOP_SIGNALS:
        signal.signal(signum, worker.request_stop)
    for number in early:
        worker.request_stop(number)
    return worker.run()
