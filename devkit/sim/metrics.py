"""The metrics of one run (CONTRACTS.md section 5), and how each is computed.

- `jobs`: jobs that arrived (every arrival lies within `duration_seconds`).
- `completed`: jobs finished by the end of the run. The run goes on past `duration_seconds` until
  every job is done and every fleet is back at its resting size (the policy's minimum; the `fixed`
  fleet's constant size), or until `drain_limit_seconds` more have passed.
- `lost`: `jobs - completed`: work still queued or running when the drain limit cut the run.
- `wait_p50`, `wait_p95`, `wait_p99`, `wait_max`: queue wait over all jobs, pooled across queues (kept
  for continuity; the benchmark's goal reads the pooled `wait_p95`). A job's wait is the time it
  spent visible in its queue: from arrival to the moment a worker takes it, plus, for a job a drain
  released, from the release to the moment a worker takes it again (for a job whose worker pod was
  killed, keda's model: from the kill, through the message's visibility timeout); a job waiting when the run ends
  counts its wait until then. Percentiles interpolate linearly between ranks (numpy's default).
- `queues`: per queue (SQS queue names are unique in a scenario), `jobs`, `wait_p95`, `objective`
  (its wait objective in seconds: the queue's `max_wait_seconds`, else the template's
  `<Pool>WaitObjectiveSeconds` default for a pool the template defines, else null) and
  `objective_ratio` (`wait_p95 / objective`, null without an objective or without jobs).
- `worst_objective_ratio`: the largest `objective_ratio` of the scenario's queues (null when no queue
  has one): the queue a pooled figure would hide.
- `restarted`: jobs started more than once (a drain window ended before the job did: released and
  retried by another worker); `releases`: how many times jobs were released in all.
- `adequate_seconds`, `adequate_max`, `adequate_bursts`: a burst starts when the pool's capacity
  need exceeds the instances in service while they are below max_size, and ends when the instances
  in service cover it, or reach max_size. The capacity need counts each running job as the slot it
  holds and each waiting message as its share of its queue's target (waiting / target + running /
  slots, exact counts), rounded down but at least 1 while there is work: the need of section 1 with
  running jobs counted as slots, the same for every policy (with backlog / target alone, a pool whose
  target is below its slots would look short of capacity while every job runs and none waits), and
  without counting a shortfall of less than one instance (a message or two waiting in a steady
  stream) as a burst; `adequate_seconds` is the median over bursts of that time, `adequate_max` the
  longest (a burst still open when the run ends counts until then). Unlike `reaction_seconds`, a
  request for capacity does not count: only capacity in service does, so a frequent tick cannot
  score it by construction.
- `launch_failures`: launches that never became healthy (replaced by the group).
- `instance_seconds`: the cost every report and the benchmark's goal compare, in seconds of a running
  instance: `running_seconds` + `storage_instance_seconds` (without a warm pool, `running_seconds`).
- `running_seconds`: for every instance, from the launch request to its termination (or the end of
  the run), boot and drain included, less the time it waited Stopped or Hibernated in a warm pool:
  what EC2 bills as running instances (a warm pool's preparation and a Running warm pool count in
  full). A fleet (and a warm pool) in service at time 0 counts from 0.
- `stopped_seconds`: instance-seconds waited Stopped or Hibernated in a warm pool, billed for their
  root volume only; `storage_instance_seconds`: that storage's price in seconds of the pool's own
  instance type (devkit/sim/billing.py: gp3 price times the template's volume size, over the type's
  On-Demand price).
- `warm_starts`: scale-outs served by a warmed instance instead of a cold launch.
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

from devkit.sim import billing
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


def queue_metrics(sim: Simulation, job_waits: list[float]) -> dict[str, dict[str, Any]]:
    """Per queue: jobs, wait p95, its wait objective and their ratio."""
    workload = sim.workload
    grouped: dict[tuple[int, int], list[float]] = {}
    for wait, p, q in zip(job_waits, workload.pool, workload.queue, strict=True):
        grouped.setdefault((p, q), []).append(wait)
    found: dict[str, dict[str, Any]] = {}
    for p, pool in enumerate(sim.pools):
        for q, queue in enumerate(pool.spec.queues):
            waits = sorted(grouped.get((p, q), []))
            p95 = percentile(waits, 95)
            objective = pool.spec.wait_objective(queue)
            found[queue.name] = {
                "jobs": len(waits),
                "wait_p95": _round(p95),
                "objective": objective,
                "objective_ratio": _round(p95 / objective) if objective and waits else None,
            }
    return found


def summarize(sim: Simulation) -> dict[str, Any]:
    """The metrics of a finished run, as a JSON-ready mapping."""
    workload = sim.workload
    end = sim.finished_at
    job_waits = sim.waits()
    waits = sorted(job_waits)
    queues = queue_metrics(sim, job_waits)
    ratios = [m["objective_ratio"] for m in queues.values() if m["objective_ratio"] is not None]
    adequate = sorted(s for pool in sim.pools for s in pool.adequacy.seconds)
    running_seconds = 0.0
    stopped_seconds = 0.0
    storage_seconds = 0.0
    actions = 0
    reversals = 0
    reactions: list[float] = []
    unanswered = 0
    for pool in sim.pools:
        stopped = 0.0
        for instance in pool.instances:
            running_seconds += instance.billed_until(end)
            stopped += instance.stored_until(end)
        stopped_seconds += stopped
        storage_seconds += stopped * billing.storage_share(pool.spec.billed_type)
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
        "instance_seconds": _round(running_seconds + storage_seconds),
        "running_seconds": _round(running_seconds),
        "stopped_seconds": _round(stopped_seconds),
        "storage_instance_seconds": _round(storage_seconds),
        "warm_starts": sum(pool.warm_starts for pool in sim.pools),
        "scale_actions": actions,
        "reversals": reversals,
        "reaction_seconds": _round(percentile(reactions, 50)) if reactions else None,
        "reaction_max": _round(reactions[-1]) if reactions else None,
        "bursts": len(reactions) + unanswered,
        "bursts_unanswered": unanswered,
        "adequate_seconds": _round(percentile(adequate, 50)) if adequate else None,
        "adequate_max": _round(adequate[-1]) if adequate else None,
        "adequate_bursts": len(adequate),
        "restarted": sum(1 for r in sim.restarts if r),
        "releases": sum(sim.restarts),
        "launch_failures": sum(pool.launch_failures for pool in sim.pools),
        "queues": queues,
        "worst_objective_ratio": max(ratios) if ratios else None,
        "simulated_seconds": _round(end),
    }


def _round(value: float) -> float:
    return round(value, 3)
