"""`keda`: KEDA's aws-sqs-queue scaler driving the group through an HPA with default behavior.

Configured as KEDA's docs recommend (keda.sh/docs/latest/scalers/aws-sqs: "queueLength - Target value
for queue length passed to the scaler. Example: if one pod can handle 10 messages, set the queue
length target to 10"): one trigger per queue, each with `queueLength` = the messages one replica
handles at once, the pool's slots per instance (the worker's WORKER_SLOTS), not the pool's backlog
target. "Actual messages" are ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible
(`scaleOnInFlight` default true; `scaleOnDelayed` default false), read from SQS with SQS's approximation.

Pods to nodes: a replica is a worker pod on a node of its own; new pods go Pending until the cluster
autoscaler or Karpenter adds a node, and that node boots as an EC2 instance does. So a new replica is
in service after the same boot-time distribution as every other policy's instances (scenario
`boot_seconds`, with its tail and launch failures), and a removed replica frees its node through the
same group rules (termination choice, scale-in protection, drain window): the fleet is the same for
every policy, only the controller differs.

The algorithm:
- KEDA's loop (keda pkg/scaling/scale_handler.go, executors/scale_scaledobjects.go) polls every
  `pollingInterval` (default 30 s). A trigger is active when its queue's message count exceeds
  `activationQueueLength` (default 0; pkg/scalers/aws_sqs_queue_scaler.go counts
  ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible, `scaleOnInFlight` default
  true, as the pool's `count_in_flight` does). Active at 0 replicas: scale to max(minReplicaCount, 1)
  ("activation"). Inactive for `cooldownPeriod` (default 300 s) since the last active poll, with
  minReplicaCount 0: scale to 0. Between 1 and max, the HPA decides.
- The HPA (kubernetes pkg/controller/podautoscaler/horizontal.go) syncs every 15 s and does nothing
  at 0 replicas. Each trigger is an External metric with an AverageValue target: for one metric,
  usageRatio = value / (target * current); within the 0.1 tolerance it keeps `current`, else it
  wants ceil(value / target) (replica_calculator.go GetExternalPerPodMetricReplicas). With several
  triggers the HPA takes the largest. The default behavior (no `advanced.horizontalPodAutoscalerConfig`)
  then applies: scale-up without stabilization, at most max(4 pods, 100%) per 15 s; scale-down after
  the highest recommendation of the last 300 s, at most 100% per 15 s; clamp to
  [max(minReplicaCount, 1), maxReplicaCount].

The HPA's stabilization and rate rules are the ones `queue_scaler.scaling.domain.behavior` implements from
horizontal.go (stabilizeRecommendationWithBehaviors, calculateScaleUpLimitWithScalingRules,
calculateScaleDownLimitWithBehaviors); the HPA runs them with its own default behavior below.
"""

from __future__ import annotations

import math

from devkit.sim.engine import Controller, PoolSim
from devkit.sim.policies.registry import Role, register
from queue_scaler.scaling.domain.behavior import rate_limit, stabilize
from queue_scaler.scaling.domain.models import Decision, History, LimitedBy
from queue_scaler.scaling.domain.pool import Behavior, RatePolicy, ScaleDownRules, ScaleUpRules

#: KEDA ScaledObject defaults (keda.sh/docs/latest/reference/scaledobject-spec).
POLLING_INTERVAL = 30.0
COOLDOWN_PERIOD = 300.0
ACTIVATION_QUEUE_LENGTH = 0
#: aws-sqs-queue trigger default: in-flight messages count (scaleOnDelayed, false, needs no
#: constant: the simulated queues have no delayed messages).
SCALE_ON_IN_FLIGHT = True
HPA_SYNC_PERIOD = 15.0
HPA_TOLERANCE = 0.1
#: The HPA's default behavior (Kubernetes API reference, HorizontalPodAutoscalerBehavior).
HPA_DEFAULT_BEHAVIOR = Behavior(
    scale_up=ScaleUpRules(
        stabilization_window_seconds=0,
        select_policy="Max",
        policies=[
            RatePolicy(type="Instances", value=4, period_seconds=15),
            RatePolicy(type="Percent", value=100, period_seconds=15),
        ],
    ),
    scale_down=ScaleDownRules(
        stabilization_window_seconds=300,
        select_policy="Max",
        policies=[RatePolicy(type="Percent", value=100, period_seconds=15)],
    ),
)
_EPSILON = 1e-9


def queue_length(pool: PoolSim) -> int:
    """Each trigger's `queueLength`: the messages one replica handles at once (its worker slots)."""
    return pool.slots


class Keda(Controller):
    POLL, HPA = 0, 1

    def __init__(self, pool: PoolSim) -> None:
        super().__init__(pool)
        self.loops = [
            (POLLING_INTERVAL, pool.first_run(POLLING_INTERVAL)),
            (HPA_SYNC_PERIOD, pool.first_run(HPA_SYNC_PERIOD)),
        ]
        self.last_active: float | None = None
        self.history = History()
        self.keep = HPA_DEFAULT_BEHAVIOR.longest_window_seconds()
        self.queue_length = queue_length(pool)

    def on_loop(self, index: int, now: float) -> int | None:
        return self._poll(now) if index == self.POLL else self._hpa_sync(now)

    def _poll(self, now: float) -> int | None:
        pool = self.pool
        active = any(self.messages(q) > ACTIVATION_QUEUE_LENGTH for q in range(len(pool.queues)))
        if active:
            self.last_active = now
            if pool.desired == 0:
                return max(pool.min_size, 1)
            return None
        idle_since = self.last_active if self.last_active is not None else 0.0
        if pool.desired > 0 and pool.min_size == 0 and now - idle_since >= COOLDOWN_PERIOD:
            return 0
        return None

    def messages(self, queue: int) -> int:
        """The trigger's "actual messages": visible + in flight (scaleOnInFlight), delayed left out."""
        visible, in_flight = self.pool.sqs_counts(queue)
        return visible + (in_flight if SCALE_ON_IN_FLIGHT else 0)

    def hpa_recommendation(self, values: list[int]) -> int:
        """The largest of the triggers' replica counts (before behavior and clamps), from each
        trigger's message count."""
        current = self.pool.desired
        target = self.queue_length
        wanted = 0
        for value in values:
            ratio = value / (target * current)
            replicas = current if abs(ratio - 1) <= HPA_TOLERANCE else math.ceil(value / target - _EPSILON)
            wanted = max(wanted, replicas)
        return wanted

    def _hpa_sync(self, now: float) -> int | None:
        pool = self.pool
        current = pool.desired
        if current == 0:
            return None
        values = [self.messages(q) for q in range(len(pool.queues))]
        recommendation = self.hpa_recommendation(values)
        stabilized = stabilize(recommendation, current, now, self.history, HPA_DEFAULT_BEHAVIOR)
        limited = rate_limit(stabilized.value, current, now, self.history, HPA_DEFAULT_BEHAVIOR)
        desired = max(pool.min_size, 1, min(pool.max_size, limited.value))
        decision = Decision(
            pool=pool.name,
            current=current,
            recommendation=recommendation,
            desired=desired,
            limited_by=limited.limited_by or LimitedBy.NONE,
            explanation=[],
            raw_need=sum(values) / self.queue_length,
            backlog=sum(values),
        )
        self.history = self.history.record(decision, now, self.keep)
        return desired

    def rest_size(self) -> int:
        return self.pool.min_size


register(
    "keda",
    lambda scenario, workload: Keda,
    Role.DYNAMIC_PEER,
    "KEDA aws-sqs-queue scaler (keda.sh/docs/latest/scalers/aws-sqs) through a default-behavior HPA",
)
