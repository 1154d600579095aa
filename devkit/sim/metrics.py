"""The metrics of one run (CONTRACTS.md section 5), and how each is computed.

- `jobs`: jobs that arrived (every arrival lies within `duration_seconds`).
- `completed`: jobs finished by the end of the run. The run goes on past `duration_seconds` until
  every job is done and every fleet is back at its resting size (the policy's minimum; the `fixed`
  fleet's constant size), or until `drain_limit_seconds` more have passed.
- `lost`: `jobs - completed`: work still queued or running when the drain limit cut the run.
- `wait_p50`, `wait_p95`, `wait_p99`, `wait_max`: queue wait, from arrival to the moment a worker
  takes the job, over all jobs (a job never started counts its wait until the end of the run).
  Percentiles interpolate linearly between ranks (numpy's default).
- `instance_seconds`: for every instance, from the launch request to its termination (or the end of
  the run), boot and drain included: what EC2 bills. A fleet in service at time 0 counts from 0.
- `scale_actions`: changes of desired capacity.
- `reversals`: scale actions in the opposite direction of the previous one within
  `REVERSAL_WINDOW` seconds of it: flapping, not the normal rise and fall around a burst.
- `reaction_seconds`: median over bursts of the time from a burst's first arrival to the first
  capacity request (a rise of desired capacity) after it. A burst starts at an arrival that makes
  the pool's need (its backlog over its targets, rounded up, CONTRACTS.md section 1) exceed the
  desired capacity while that is below max_size; a burst whose need falls back before any request
  is counted in `bursts_unanswered`. None when no burst was answered (e.g. the fixed fleet).
"""

from __future__ import annotations

import math
from typing import Any

from devkit.sim.engine import Simulation

REVERSAL_WINDOW = 600.0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, sorted ascending, linearly interpolated."""
    if not values:
        return 0.0
    rank = (len(values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


def summarize(sim: Simulation) -> dict[str, Any]:
    """The metrics of a finished run, as a JSON-ready mapping."""
    workload = sim.workload
    end = sim.finished_at
    waits = sorted((s if not math.isnan(s) else end) - a for s, a in zip(sim.start, workload.arrival, strict=True))
    instance_seconds = 0.0
    actions = 0
    reversals = 0
    reactions: list[float] = []
    unanswered = 0
    for pool in sim.pools:
        for instance in pool.instances:
            instance_seconds += (instance.terminated if instance.terminated is not None else end) - instance.launched
        actions += len(pool.actions)
        for (t0, c0), (t1, c1) in zip(pool.actions, pool.actions[1:], strict=False):
            if (c0 > 0) != (c1 > 0) and t1 - t0 <= REVERSAL_WINDOW:
                reversals += 1
        reactions.extend(pool.reaction.seconds)
        unanswered += pool.reaction.unanswered
    reactions.sort()
    return {
        "jobs": len(workload),
        "completed": sim.completed,
        "lost": len(workload) - sim.completed,
        "wait_p50": _round(percentile(waits, 50)),
        "wait_p95": _round(percentile(waits, 95)),
        "wait_p99": _round(percentile(waits, 99)),
        "wait_max": _round(waits[-1] if waits else 0.0),
        "wait_mean": _round(sum(waits) / len(waits) if waits else 0.0),
        "instance_seconds": _round(instance_seconds),
        "scale_actions": actions,
        "reversals": reversals,
        "reaction_seconds": _round(percentile(reactions, 50)) if reactions else None,
        "reaction_max": _round(reactions[-1]) if reactions else None,
        "bursts": len(reactions) + unanswered,
        "bursts_unanswered": unanswered,
        "simulated_seconds": _round(end),
    }


def _round(value: float) -> float:
    return round(value, 3)
