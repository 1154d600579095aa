"""`target-tracking`: EC2 Auto Scaling target tracking on backlog per instance.

Modelled on the Amazon EC2 Auto Scaling User Guide ("Target tracking scaling policies", "Scaling
policy based on Amazon SQS", "Set the default instance warmup") and the CloudWatch alarms target
tracking creates for itself:
- The metric is backlog per instance, published once a minute as the SQS guide does (a scheduled
  function computes it and calls PutMetricData): here the pool's backlog over its targets (the
  need, so that several queues with different targets make one metric, target value 1.0) divided
  by the instances in service. It reaches the alarms `PUBLICATION_DELAY` after it was sampled. With
  no instance in service the division has no value: the datapoint is missing.
- The high alarm fires after 3 consecutive 1-minute datapoints above the target; the low alarm after
  15 consecutive datapoints below 90% of it. Missing datapoints break a streak (INSUFFICIENT_DATA).
- While an alarm is in ALARM, the group runs the policy at each evaluation (every minute). The new
  capacity is ceil(capacity * metric / target) with the instances counted in the metric as capacity;
  scale-out only adds what exceeds the current desired capacity (instances still booting or warming
  up already count toward it); scale-in waits until no instance is warming up (`INSTANCE_WARMUP`
  after it entered service).
- Target tracking does not scale out from zero on its own (capacity 0 times any metric is 0, and
  per-instance metrics are missing). Min-0 designs pair it with a step scaling policy on the queue's
  own ApproximateNumberOfMessagesVisible (1 datapoint of 1 minute above 0) that sets the group to 1;
  this model includes that companion, with the same publication delay, so the peer can wake a pool.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from devkit.sim.engine import Controller, PoolSim

PERIOD = 60.0
PUBLICATION_DELAY = 60.0
SCALE_OUT_DATAPOINTS = 3
SCALE_IN_DATAPOINTS = 15
SCALE_IN_THRESHOLD = 0.9
INSTANCE_WARMUP = 300.0
TARGET = 1.0
_EPSILON = 1e-9


class TargetTracking(Controller):
    def __init__(self, pool: PoolSim) -> None:
        super().__init__(pool)
        self.loops = [(PERIOD, pool.first_run(PERIOD))]
        # (available at, backlog per instance or None when missing, visible messages)
        self.datapoints: deque[tuple[float, float | None, int]] = deque(maxlen=SCALE_IN_DATAPOINTS + 4)

    def on_loop(self, index: int, now: float) -> int | None:
        desired = self._evaluate(now)
        pool = self.pool
        in_service = len(pool.in_service)
        per_instance = pool.raw_need() / in_service if in_service else None
        self.datapoints.append((now + PUBLICATION_DELAY, per_instance, sum(pool.visible())))
        return desired

    def _evaluate(self, now: float) -> int | None:
        pool = self.pool
        available = [d for d in self.datapoints if d[0] <= now]
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
            if self._warming(now):
                return None
            metric = values[-1]
            assert metric is not None, "a breaching datapoint has a value"
            wanted = math.ceil(capacity * metric / TARGET - _EPSILON)
            return wanted if wanted < pool.desired else None
        return None

    @staticmethod
    def _breaching(values: list[float | None], needed: int, breach: Callable[[float], bool]) -> bool:
        return len(values) == needed and all(v is not None and breach(v) for v in values)

    def _warming(self, now: float) -> bool:
        pool = self.pool
        if pool.booting:
            return True
        return any(i.ready_at + INSTANCE_WARMUP > now for i in pool.in_service.values())
