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
  capacity is the metric's own denominator times metric / target: ceil(n * metric / target), with n
  the instances the datapoint was computed over, never the instances in service by the time the
  alarm acts (a datapoint sampled when 1 instance served, read when 21 do, sizes from 1). The SQS
  guide's worked example does exactly this ("If the backlog per instance is currently at 150 (1500 /
  10), your fleet scales out, and it scales out by five instances", target 100: 10 x 150 / 100 = 15),
  and the
  default instance warmup page says instances still warming do not contribute to the metric ("how
  long after an instance reaches the InService state it waits before contributing usage data to the
  aggregated metrics"; "dynamic scaling policies scale out only if the metric value from instances
  that are not warming up is greater than the policy's target"). So n counts the instances in
  service and past their warm-up when the datapoint is sampled; with none, the datapoint is missing.
  Scale-out only adds what exceeds the current desired capacity ("Amazon EC2 Auto Scaling considers
  instances that are warming up as part of the current capacity of the group when determining how
  many instances to add"; booting instances count the same way). The initial fleet (in service at
  time 0) has served before the run: it is warm.
- Scale-in is what AWS calls conservative: only the low alarm (15 datapoints below 90% of the target)
  triggers it, never while the high alarm fires, and never while an instance is warming up
  (`DefaultInstanceWarmup` after it entered service: "This blocks scale-in activities ... until the
  instance warmup period is over"). The warm-up is set as AWS advises ("we strongly recommend that
  you enable and configure the default instance warmup"), to the time an instance takes to be ready
  (scenario `fleet.default_instance_warmup_seconds`, default the longest boot), not the 300 s default
  cooldown an unset warm-up falls back to. One step removes at most what the metric justifies, so a
  fleet comes down gradually as the low alarm keeps firing.
- Target tracking does not scale out from zero on its own (capacity 0 times any metric is 0, and
  per-instance metrics are missing). Min-0 designs pair it with a step scaling policy on the queue's
  visible messages; this model's companion alarms on a metric math expression that is the visible
  messages while the group's desired capacity is 0 (`IF(GroupDesiredCapacity == 0, visible, 0) > 0`,
  1 datapoint; GroupDesiredCapacity is a group metric), at the same publication and delay, with
  ExactCapacity step adjustments (PutScalingPolicy, `AdjustmentType: ExactCapacity`) at powers of
  two: visible >= k x target sets k instances (k = 1, 2, 4, ... below max_size), and visible >=
  max_size x target sets max_size (a step policy takes at most 20 step adjustments; powers of two
  reach a max_size of 10,000 in 14). So a burst that
  finds the pool at zero wakes it with the capacity its first datapoint justifies, not one instance.
- Two recipes (`Recipe`), both documented; the better one per scenario counts as the peer
  (`better_run`: lower wait p95, then fewer instance-seconds), since an operator would tune toward
  it. Each policy registers both as its variants (registry.Policy.variants): the runner simulates
  both and records the chosen one in the run's metrics (`variant`), which the report shows:
  - `pool-target`: the pool's own targets on visible + in-flight messages (the backlog the other
    autoscalers see);
  - `sqs-guide`: the SQS guide as written: `ApproximateNumberOfMessages` (visible messages only)
    over the instances, with the target "acceptable backlog per instance" = acceptable latency /
    average processing time per message ("If the average processing time is 0.1 seconds for each
    message and the longest acceptable latency is 10 seconds, then the acceptable backlog per
    instance is 10 / 0.1, which equals 100"). Here the acceptable latency is the queue's wait
    objective and the processing time per message on one instance is seconds_per_message /
    slots_per_instance; a queue without a wait objective (or a pool without a mean job time) keeps
    its pool target.
  Several queues make one metric as before: each queue's messages over its own target, summed
  (target value 1.0).

- With a warm pool (a pool's `warm_pool:`; `bench --warm-pool` gives every pool one of AWS's default
  size) the policy is unchanged: it sets the desired capacity and the group draws on its warm pool to
  meet it (PutWarmPool: "Whenever your application needs to scale out, the Auto Scaling group can draw
  on the warm pool to meet its new desired capacity"). AWS's default size is the one PutWarmPool
  documents for an unset MaxGroupPreparedCapacity ("Amazon EC2 Auto Scaling launches and maintains the
  difference between the group's maximum capacity and its desired capacity"), MinSize 0, and no reuse
  on scale-in ("The default is to terminate instances in the Auto Scaling group when the group scales
  in"). Warmed instances are not InService: they neither feed the metric nor count in its denominator.
  Source: https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutWarmPool.html and the user
  guide's "Decrease latency for applications with long boot times using warm pools".

- Scheduled actions and predictive scaling (devkit/sim/policies/predictive.py): where the pool gives
  queue-scaler schedules, the group gets a scheduled action per schedule raising its minimum capacity
  for the window (and lowering its MaxSize to the schedule's maximum, if any); where it turns
  queue-scaler's forecast on in forecast_and_scale, a predictive scaling policy in ForecastAndScale.
  Both act as AWS's do, on the group's minimum capacity: at each evaluation the desired capacity is at
  least that minimum, and scale-in never goes below it.

Sources (Amazon EC2 Auto Scaling User Guide):
https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-using-sqs-queue.html (Scaling policy based
on Amazon SQS), https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-default-instance-warmup.html
(Set the default instance warmup), https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scaling-target-tracking.html
(Target tracking scaling policies), https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scaling-simple-step.html
(Step and simple scaling policies).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from devkit.sim.engine import Controller, ControllerFactory, Instance, PoolSim
from devkit.sim.policies.predictive import CapacityFloor, capacity_floor
from devkit.sim.policies.registry import Builder, Role, register
from devkit.sim.scenario import Scenario
from devkit.sim.workload import Workload

SCALE_OUT_DATAPOINTS = 3
SCALE_IN_DATAPOINTS = 15
SCALE_IN_THRESHOLD = 0.9
TARGET = 1.0
_EPSILON = 1e-9


class Recipe(StrEnum):
    """What the backlog-per-instance metric counts and its target (module docstring)."""

    POOL_TARGET = "pool-target"
    SQS_GUIDE = "sqs-guide"


@dataclass(frozen=True)
class Resolution:
    """A target tracking policy's metric period and how late its datapoints reach the alarms."""

    period: float
    delay: float


#: Metric periods: standard 1-minute metrics, and the 10-second high-resolution period.
STANDARD_PERIOD = 60.0
HIRES_PERIOD = 10.0


@dataclass(frozen=True)
class Datapoint:
    """One published datapoint: when the alarms can see it, its value (None: missing), the
    instances it was computed over, and the wake-up alarm's value (visible messages while the
    group's desired capacity is 0, over the target; 0 otherwise)."""

    available_at: float
    value: float | None
    denominator: int
    wake: float


def recipe_targets(pool: PoolSim, recipe: Recipe) -> list[float]:
    """Each queue's target (messages per instance) under `recipe`."""
    if recipe is Recipe.POOL_TARGET:
        return list(pool.targets)
    seconds = pool.config.seconds_per_message
    targets = []
    for queue, pool_target in zip(pool.spec.queues, pool.targets, strict=True):
        latency = pool.spec.wait_objective(queue)
        if latency is None or seconds is None:
            targets.append(pool_target)
        else:
            # Acceptable latency / processing time per message, one instance working `slots` at once.
            targets.append(latency / (seconds / pool.slots))
    return targets


def wake_capacity(units: float, max_size: int) -> int:
    """The wake-up step policy's ExactCapacity for `units` = visible messages over the target: the
    largest power of two k with units >= k (1 for any message), or max_size once units reach it."""
    if units <= 0:
        return 0
    if units >= max_size - _EPSILON:
        return max_size
    k = 1
    while 2 * k <= units + _EPSILON:
        k *= 2
    return k


def capacity(denominator: int, metric: float) -> int:
    """Target tracking's new capacity: the datapoint's own instances times metric / target."""
    return math.ceil(denominator * metric / TARGET - _EPSILON)


class TargetTracking(Controller):
    def __init__(
        self,
        pool: PoolSim,
        resolution: Resolution,
        warmup_seconds: float,
        recipe: Recipe = Recipe.POOL_TARGET,
        floor: CapacityFloor | None = None,
    ) -> None:
        super().__init__(pool)
        self.floor = floor if floor else None
        self.resolution = resolution
        self.warmup = warmup_seconds
        self.recipe = recipe
        self.recipe_targets = recipe_targets(pool, recipe)
        self.loops = [(resolution.period, pool.first_run(resolution.period))]
        self.datapoints: deque[Datapoint] = deque(
            maxlen=SCALE_IN_DATAPOINTS + math.ceil(resolution.delay / resolution.period) + 2
        )

    def on_loop(self, index: int, now: float) -> int | None:
        desired = self._evaluate(now)
        pool = self.pool
        if self.floor is not None:
            # The group's minimum capacity (scheduled actions, predictive scaling): nothing goes below it.
            minimum = min(pool.max_size, self.floor(now))
            if (pool.desired if desired is None else desired) < minimum:
                desired = minimum
            # A scheduled action's MaxSize (a schedule's maximum) while in force: nothing goes above it.
            cap = self.floor.cap(now)
            if cap is not None and (pool.desired if desired is None else desired) > cap:
                desired = cap
        counts = [pool.sqs_counts(q) for q in range(len(pool.queues))]
        warm = sum(1 for i in pool.in_service.values() if self._warm(i, now))
        need = self._need(counts)
        visible = sum(v / t for (v, _), t in zip(counts, self.recipe_targets, strict=True))
        wake = visible if pool.desired == 0 else 0.0
        self.datapoints.append(Datapoint(now + self.resolution.delay, need / warm if warm else None, warm, wake))
        return desired

    def _need(self, counts: list[tuple[int, int]]) -> float:
        """The metric's numerator: messages over their targets, in-flight counted by `pool-target`."""
        in_flight = self.recipe is Recipe.POOL_TARGET
        return sum(
            (visible + (busy if in_flight else 0)) / target
            for (visible, busy), target in zip(counts, self.recipe_targets, strict=True)
        )

    def _evaluate(self, now: float) -> int | None:
        pool = self.pool
        available = [d for d in self.datapoints if d.available_at <= now + _EPSILON]
        if not available:
            return None
        latest = available[-1]
        if pool.desired == 0:
            woken = wake_capacity(latest.wake, pool.max_size)
            return woken if woken > 0 else None
        values = [d.value for d in available]
        if self._breaching(values[-SCALE_OUT_DATAPOINTS:], SCALE_OUT_DATAPOINTS, lambda v: v > TARGET):
            assert latest.value is not None, "a breaching datapoint has a value"
            wanted = capacity(latest.denominator, latest.value)
            return wanted if wanted > pool.desired else None
        low = SCALE_IN_THRESHOLD * TARGET
        if self._breaching(values[-SCALE_IN_DATAPOINTS:], SCALE_IN_DATAPOINTS, lambda v: v < low):
            if self.warming(now):
                return None
            assert latest.value is not None, "a breaching datapoint has a value"
            wanted = capacity(latest.denominator, latest.value)
            return wanted if wanted < pool.desired else None
        return None

    @staticmethod
    def _breaching(values: list[float | None], needed: int, breach: Callable[[float], bool]) -> bool:
        return len(values) == needed and all(v is not None and breach(v) for v in values)

    def _warm(self, instance: Instance, now: float) -> bool:
        """Past its warm-up; the initial fleet (in service at time 0, launched before the run) is warm."""
        initial = instance.launched == 0.0 and instance.ready_at == 0.0
        return initial or instance.ready_at + self.warmup <= now

    def warming(self, now: float) -> bool:
        """An instance is booting or within its warm-up: target tracking does not scale in."""
        pool = self.pool
        if pool.booting:
            return True
        return any(not self._warm(i, now) for i in pool.in_service.values())


class _Scored(Protocol):
    @property
    def metrics(self) -> Mapping[str, Any]: ...


def better_run[Run: _Scored](runs: Mapping[Recipe, Run]) -> tuple[Recipe, Run]:
    """The recipe that counts as the peer: the lower wait p95, then the fewer instance-seconds (then
    the first recipe, for a deterministic choice)."""
    order = list(Recipe)
    recipe = min(runs, key=lambda r: (runs[r].metrics["wait_p95"], runs[r].metrics["instance_seconds"], order.index(r)))
    return recipe, runs[recipe]


@dataclass(frozen=True)
class _Metrics:
    metrics: Mapping[str, Any]


def choose_recipe(runs: Mapping[str, Mapping[str, Any]]) -> str:
    """The registry's chooser: `better_run` over each recipe's run metrics (keyed by recipe name)."""
    return better_run({Recipe(name): _Metrics(metrics) for name, metrics in runs.items()})[0].value


def pool_arrivals(workload: Workload, pool: int) -> list[float]:
    """The arrival times of pool `pool`'s jobs (what CloudWatch's NumberOfMessagesSent counts)."""
    return [at for at, p in zip(workload.arrival, workload.pool, strict=True) if p == pool]


def _builder(period: float, delay: Callable[[Scenario], float], recipe: Recipe) -> Builder:
    def build(scenario: Scenario, workload: Workload) -> ControllerFactory:
        resolution = Resolution(period, delay(scenario))

        def factory(pool: PoolSim) -> TargetTracking:
            floor = capacity_floor(pool.config, pool_arrivals(workload, pool.index))
            return TargetTracking(pool, resolution, scenario.warmup_seconds, recipe, floor)

        return factory

    return build


def _register(name: str, period: float, delay: Callable[[Scenario], float], citation: str) -> None:
    """One target tracking policy: both recipes as its variants, the better one counting as the peer;
    `build` alone (a single simulation) is the pool-target recipe."""
    variants = {recipe.value: _builder(period, delay, recipe) for recipe in Recipe}
    build = variants[Recipe.POOL_TARGET.value]
    register(name, build, Role.DYNAMIC_PEER, citation, variants=variants, choose=choose_recipe)


_GUIDE = (
    'Amazon EC2 Auto Scaling User Guide, "Target tracking scaling policies" and "Scaling policy based on Amazon SQS" '
    "(with scheduled actions and predictive scaling where the pool has schedules or a forecast)"
)
_register("target-tracking", STANDARD_PERIOD, lambda s: s.fleet.cloudwatch_delay_seconds, f"{_GUIDE}, 1-minute metric")
_register(
    "target-tracking-hires",
    HIRES_PERIOD,
    lambda s: s.fleet.cloudwatch_hires_delay_seconds,
    f"{_GUIDE}, 10-second high-resolution metric",
)
