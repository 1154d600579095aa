"""`target-tracking` and `target-tracking-hires`: EC2 Auto Scaling target tracking on backlog per instance.

Modelled on the Amazon EC2 Auto Scaling User Guide ("Target tracking scaling policies", "Scaling
policy based on Amazon SQS", "Create a target tracking policy using high-resolution metrics for
faster response", "Set the default instance warmup for an Auto Scaling group") and the CloudWatch
alarms target tracking creates for itself:
- The metric is backlog per instance, as the SQS guide builds it: a scheduled function reads the
  queues' ApproximateNumberOf* counts (SQS's approximation) and the instances in service and calls
  PutMetricData. Here: the pool's backlog over its targets (so that queues with different targets make
  one metric, target value 1.0) divided by the instances in service. With no instance in service the
  division has no value: the datapoint is missing (INSUFFICIENT_DATA breaks an alarm's streak).
- Two resolutions, as two policies:
  - `target-tracking` (standard): the metric is published every 60 s and each datapoint reaches the
    alarms `cloudwatch_delay_seconds` (scenario `fleet:`, default 60 s: a 1-minute datapoint is
    complete at the end of its minute and alarms evaluate it after that) after it was sampled;
  - `target-tracking-hires`: the metric is published every 10 s with StorageResolution 1 and the
    policy's metric period is 10 s, the lowest target tracking supports; datapoints reach the
    alarms `cloudwatch_hires_delay_seconds` (default 10 s) after they were sampled, and the alarms
    are high-resolution (CloudWatch PutMetricAlarm: a period of 10 s makes a high-resolution alarm).
  The alarms target tracking creates: the high alarm fires after 3 consecutive datapoints above the
  target, the low alarm after 15 consecutive datapoints below 90% of it (standard: 3 x 1 min and
  15 x 1 min, as the alarms AWS creates show). The high-resolution guide says the alarms follow the
  policy's metric period but lists no datapoint counts; this model assumes the same 3 and 15
  datapoints at the 10 s period (3 x 10 s, 15 x 10 s): the one documented shape, at the new period.
- While an alarm is in ALARM, the group runs the policy at each evaluation (every period). The new
  capacity is ceil(capacity * metric / target) with the instances counted in the metric as capacity;
  scale-out only adds what exceeds the current desired capacity (instances still booting or warming
  up already count toward it).
- Scale-in is what AWS calls conservative: only the low alarm (15 datapoints below 90% of the target)
  triggers it, never while the high alarm fires, and never while an instance is warming up
  (`DefaultInstanceWarmup` after it entered service). The warm-up is set as AWS advises ("we strongly
  recommend that you enable and configure the default instance warmup"), to the time an instance
  takes to be ready (scenario `fleet.default_instance_warmup_seconds`, default the longest boot),
  not the 300 s default cooldown an unset warm-up falls back to. One step removes at most what the
  metric justifies, so a fleet comes down gradually as the low alarm keeps firing.
- Target tracking does not scale out from zero on its own (capacity 0 times any metric is 0, and
  per-instance metrics are missing). Min-0 designs pair it with a step scaling policy on the queue's
  visible messages (1 datapoint above 0) that sets the group to 1; this model includes that
  companion, on the same publication and delay, so the peer can wake a pool.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from devkit.sim.engine import Controller, ControllerFactory, PoolSim
from devkit.sim.policies.registry import Role, register
from devkit.sim.scenario import Scenario
from devkit.sim.workload import Workload

SCALE_OUT_DATAPOINTS = 3
SCALE_IN_DATAPOINTS = 15
SCALE_IN_THRESHOLD = 0.9
TARGET = 1.0
_EPSILON = 1e-9


@dataclass(frozen=True)
class Resolution:
    """A target tracking policy's metric period and how late its datapoints reach the alarms."""

    period: float
    delay: float


#: Metric periods: standard 1-minute metrics, and the 10-second high-resolution period.
STANDARD_PERIOD = 60.0
HIRES_PERIOD = 10.0


class TargetTracking(Controller):
    def __init__(self, pool: PoolSim, resolution: Resolution, warmup_seconds: float) -> None:
        super().__init__(pool)
        self.resolution = resolution
        self.warmup = warmup_seconds
        self.loops = [(resolution.period, pool.first_run(resolution.period))]
        # (available at, backlog per instance or None when missing, visible messages)
        self.datapoints: deque[tuple[float, float | None, int]] = deque(
            maxlen=SCALE_IN_DATAPOINTS + math.ceil(resolution.delay / resolution.period) + 2
        )

    def on_loop(self, index: int, now: float) -> int | None:
        desired = self._evaluate(now)
        pool = self.pool
        in_service = len(pool.in_service)
        counts = [pool.sqs_counts(q) for q in range(len(pool.queues))]
        per_instance = self._need(counts) / in_service if in_service else None
        self.datapoints.append((now + self.resolution.delay, per_instance, sum(v for v, _ in counts)))
        return desired

    def _need(self, counts: list[tuple[int, int]]) -> float:
        config = self.pool.config
        total = 0.0
        for (visible, in_flight), target in zip(counts, self.pool.targets, strict=True):
            total += (visible + (in_flight if config.count_in_flight else 0)) / target
        return total

    def _evaluate(self, now: float) -> int | None:
        pool = self.pool
        available = [d for d in self.datapoints if d[0] <= now + _EPSILON]
        if not available:
            return None
        latest = available[-1]
        if pool.desired == 0:
            return 1 if latest[2] > 0 else None
        capacity = len(pool.in_service)
        values = [d[1] for d in available]
        if self._breaching(values[-SCALE_OUT_DATAPOINTS:], SCALE_OUT_DATAPOINTS, lambda v: v > TARGET):
            metric = values[-1]
            assert metric is not None, "a breaching datapoint has a value"
            wanted = math.ceil(capacity * metric / TARGET - _EPSILON)
            return wanted if wanted > pool.desired else None
        low = SCALE_IN_THRESHOLD * TARGET
        if self._breaching(values[-SCALE_IN_DATAPOINTS:], SCALE_IN_DATAPOINTS, lambda v: v < low):
            if self.warming(now):
                return None
            metric = values[-1]
            assert metric is not None, "a breaching datapoint has a value"
            wanted = math.ceil(capacity * metric / TARGET - _EPSILON)
            return wanted if wanted < pool.desired else None
        return None

    @staticmethod
    def _breaching(values: list[float | None], needed: int, breach: Callable[[float], bool]) -> bool:
        return len(values) == needed and all(v is not None and breach(v) for v in values)

    def warming(self, now: float) -> bool:
        """An instance is booting or within its warm-up: target tracking does not scale in."""
        pool = self.pool
        if pool.booting:
            return True
        return any(i.ready_at + self.warmup > now for i in pool.in_service.values())


def _standard(scenario: Scenario, workload: Workload) -> ControllerFactory:
    standard = Resolution(STANDARD_PERIOD, scenario.fleet.cloudwatch_delay_seconds)
    return lambda pool: TargetTracking(pool, standard, scenario.warmup_seconds)


def _hires(scenario: Scenario, workload: Workload) -> ControllerFactory:
    hires = Resolution(HIRES_PERIOD, scenario.fleet.cloudwatch_hires_delay_seconds)
    return lambda pool: TargetTracking(pool, hires, scenario.warmup_seconds)


_GUIDE = (
    'Amazon EC2 Auto Scaling User Guide, "Target tracking scaling policies" and "Scaling policy based on Amazon SQS"'
)
register("target-tracking", _standard, Role.DYNAMIC_PEER, f"{_GUIDE}, 1-minute metric")
register("target-tracking-hires", _hires, Role.DYNAMIC_PEER, f"{_GUIDE}, 10-second high-resolution metric")
