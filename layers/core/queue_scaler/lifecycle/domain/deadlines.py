"""Stop deadlines: when a stopping worker must have released what it cannot finish, and when it is killed.

One setting per pool, its DrainSeconds (the drain window: how long the jobs in hand may keep running
after SIGTERM), and every other figure derived from it here:

- the worker lets its jobs run for the window (DRAIN_SECONDS), then releases what still runs: each
  such message is made visible again and its attempt recorded `released`, so that another worker
  retries it and the refund logic never counts it as a failure;
- Docker's SIGKILL (`docker run --stop-timeout`, the drain's `docker stop --time`) comes
  `RELEASE_MARGIN_SECONDS` after the window (`stop_timeout_seconds`): the release's calls (one
  ChangeMessageVisibilityBatch, one ledger write per job) have that long, and a SIGTERM that arrives
  late moves the window and the SIGKILL together;
- the terminate hook outlasts the SIGKILL by the lifecycle function's drain grace (`hook_floor_seconds`),
  so that neither the hook's timeout nor a forced completion terminates the instance first.

A Spot interruption has its own deadline: EC2 reclaims the instance two minutes after the warning,
whatever Docker does. The Spot drain writes that moment into the worker's stop-notice file before
its SIGTERM; the worker then releases, at once, every running job that cannot finish
`RELEASE_MARGIN_SECONDS` before it, lets the rest finish, and releases whatever still runs at that
point (`stop_deadline`). Whether a job can finish is judged by its bound (`job_bound`): the
configured maximum run time of its kind, else the pool's, else the drain window (DrainSeconds is at
least the pool's p99 job length), counted from when the job started on this worker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: Seconds between the moment a stopping worker has released what still runs and the earliest SIGKILL
#: (Docker's stop timeout, the end of a Spot notice). At least 10 s: a release is one
#: ChangeMessageVisibilityBatch and one ledger write per job, each bounded by its client's timeouts.
RELEASE_MARGIN_SECONDS = 15
#: EC2 reclaims a Spot instance two minutes after its interruption warning.
SPOT_NOTICE_SECONDS = 120


def stop_timeout_seconds(drain_seconds: float) -> int:
    """Docker's stop timeout for a drain window: SIGKILL comes the release margin after the window."""
    return math.ceil(drain_seconds) + RELEASE_MARGIN_SECONDS


def hook_floor_seconds(drain_seconds: float, grace_seconds: float) -> float:
    """The least terminate-hook timeout for a drain: the SIGKILL, plus the grace for the drain's delivery."""
    return stop_timeout_seconds(drain_seconds) + grace_seconds


def stop_deadline(signalled_at: float, drain_seconds: float, notice_ends_at: float | None) -> float:
    """When a worker signalled at `signalled_at` releases what still runs (all times on one clock).

    The end of its drain window, or earlier, the release margin before a notice's end (a Spot
    interruption) when there is one.
    """
    window_end = signalled_at + drain_seconds
    if notice_ends_at is None:
        return window_end
    return min(window_end, notice_ends_at - RELEASE_MARGIN_SECONDS)


def gone_by(signalled_at: float, stop_timeout: float | None, notice_ends_at: float | None) -> float | None:
    """When a worker signalled at `signalled_at` is certainly gone (all times on one clock), or None.

    Docker's SIGKILL at the container's stop timeout, or the end of a notice (the instance reclaimed),
    whichever comes first; None when neither is known. A job released while it still runs keeps its
    run lease until then: it cannot run anywhere else while this process may still be running it.
    """
    ends = [t for t in (None if stop_timeout is None else signalled_at + stop_timeout, notice_ends_at) if t is not None]
    return min(ends) if ends else None


def job_bound(kind: str, by_kind: Mapping[str, float], default: float | None, drain_seconds: float) -> float:
    """The most seconds a job of `kind` is expected to run: its kind's maximum, the pool's, or the drain window."""
    if kind in by_kind:
        return by_kind[kind]
    return default if default is not None else drain_seconds


def cannot_finish(started_at: float, bound: float, deadline: float) -> bool:
    """A job started at `started_at` and bounded by `bound` seconds may still run at `deadline`."""
    return started_at + bound > deadline
