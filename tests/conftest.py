"""Shared by every suite: keep in-process workers' log lines writable across pytest sessions, and check
the lifecycle service's log records against their documentation."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from queue_worker.telemetry import SERVICE
from tests.lifecycle_events import LOGGER, Recorder, undocumented


@pytest.fixture(autouse=True)
def _worker_log_stream_open() -> None:
    """Point the worker's log handler at this session's stdout when the one it holds is closed.

    Powertools creates the handler once per process, bound to the stdout of that moment. A process
    that runs several pytest sessions (mutmut runs its stats, its clean run and its mutants so) would
    otherwise hand every later in-process worker the closed stdout of an earlier session, and its
    metric flush would fail in the worker's thread.
    """
    for handler in logging.getLogger(SERVICE).handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "closed", False):
            handler.stream = sys.stdout


@pytest.fixture(autouse=True)
def _lifecycle_records_documented() -> Iterator[None]:
    """Every record the lifecycle service writes in any test has its documented level and fields.

    Operators query these fields (docs/lifecycle-events.md); a renamed or missing one would break
    their queries without failing anything else.
    """
    logger = logging.getLogger(LOGGER)
    recorder, level = Recorder(), logger.level
    logger.addHandler(recorder)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(level)
    assert undocumented(recorder.records) == []
