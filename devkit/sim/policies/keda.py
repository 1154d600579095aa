"""`keda`: KEDA's aws-sqs-queue scaler driving the group through an HPA with default behavior.

Configured as KEDA's docs recommend (keda.sh/docs/latest/scalers/aws-sqs: "queueLength - Target value
for queue length passed to the scaler. Example: if one pod can handle 10 messages, set the queue
length target to 10"): one trigger per queue, each with `queueLength` = the messages one replica
handles at once, the pool's slots per instance (the worker's WORKER_SLOTS), not the pool's backlog
target. "Actual messages" are ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible
(`scaleOnInFlight` default true; `scaleOnDelayed` default false), read from SQS with SQS's approximation.

Pods and nodes, apart, as Kubernetes runs them (the fleet's boot-time draws, launch failures and
zones are the same as every other policy's; what differs is who removes what, and when):
- A replica is a worker pod; each pod needs a node of its own (its requests fill one instance). KEDA
  sets the ReplicaSet's replica count; the ReplicaSet (kube-controller-manager) creates or deletes
  pods at once. A new pod goes to an empty node if there is one (the scheduler), else it is Pending.
- Nodes: the Cluster Autoscaler (CA), the node autoscaler the Kubernetes docs name first ("Node
  autoscaling"; kubernetes/autoscaler cluster-autoscaler FAQ, "What are the parameters to CA?"), with
  its defaults: every `scan-interval` (10 s) it asks the node group (an Auto Scaling group) for one
  node per Pending pod; the node is ready after the scenario's boot time (node provisioning time =
  the same `boot_seconds` draw as every instance). A node with no pod on it is unneeded; the CA
  removes it once it has been unneeded for `scale-down-unneeded-time` (10 min) and no scale-up
  happened in the last `scale-down-delay-after-add` (10 min), at most `max-empty-bulk-delete` (10)
  empty nodes per scan, never below the node group's minimum, through
  TerminateInstanceInAutoScalingGroup (the desired capacity drops by one). A node whose pod runs is
  never underutilized (the pod's requests fill it, above `scale-down-utilization-threshold` 0.5), so
  the CA never drains one. Karpenter's consolidation (empty nodes removed after `consolidateAfter`)
  was not chosen: the CA is what the KEDA + EKS managed node group setup runs by default, and its
  defaults are documented numbers; Karpenter's default consolidateAfter is 0 s, which would make
  KEDA's node side kinder than the CA's 10 minutes, not fairer.
- A warm pool on the node group (a pool's `warm_pool:`; `bench --warm-pool`) serves the CA's scale-ups
  as it serves any SetDesiredCapacity: the group draws warmed instances first (devkit/sim/engine.py).
  A node the CA removes goes through TerminateInstanceInAutoScalingGroup and is terminated (this model
  never returns it to the warm pool, even with reuse on scale-in: the CA names the instance, the group
  does not scale in by its own choice); the warm pool refills to its size.
- Scale-down is NOT protected while busy. A ReplicaSet picks the pods to delete by its own ranking
  (pkg/controller/replicaset ActivePodsWithRanks / getPodsToDelete: unscheduled and not-ready pods
  first, then the pods ready for the shortest time), never by whether a pod is working; KEDA's docs
  say so ("Scaling Deployments", long-running executions: the HPA may delete a pod mid-work) and
  point to two remedies: a `preStop` hook with a long `terminationGracePeriodSeconds`, or ScaledJob.
  A deleted pod gets SIGTERM and is killed (SIGKILL) after `terminationGracePeriodSeconds` (default
  30 s; the grace period counts from the preStop hook's start: Kubernetes "Pod Lifecycle",
  termination of Pods, and "Container Lifecycle Hooks"). The model (`PodTermination`):
  - default (the Deployment as KEDA's SQS example ships it, no preStop): the worker stops taking
    messages (the worker does not know the grace period: it drains for its own window); a job not
    done 30 s after SIGTERM is killed, and its message becomes visible again when the worker's last
    visibility extension runs out: the worker's heartbeat extends it to the visibility timeout VT
    every VT / 3 (workers/queue_worker/settings.py), so between 2/3 VT and VT after the kill; the
    model takes the mean over the kill's phase, 5/6 VT. VT is the queue's VisibilityTimeout, by the
    template's rule 3 x the pool's average job time (3 x its `seconds_per_message`, else 3 x its
    jobs' mean). Then another worker retries it;
  - `PodTermination.prestop(pool)`, KEDA's documented remedy: a preStop hook that waits for the
    worker's drain and terminationGracePeriodSeconds set to the pool's drain window; what is not done
    by then is released by the worker (visible again at once), as the terminate hook's drain does.
  The registered `keda` peer is the default: the remedy is something a scenario would have to model
  (and ScaledJob, one Job per message, is a different workload shape: not modelled).

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

- KEDA's cron scaler, for a pool whose scenario gives queue-scaler schedules (its `schedule` signal: the
  same known busy times, configured the same way): one cron trigger per schedule, `timezone` its time
  zone, `start` its cron expression, `end` the expression firing `window_seconds` later, and
  `desiredReplicas` its minimum (keda.sh/docs/latest/scalers/cron: "Number of replicas to which the
  resource has to be scaled between the start and end of the cron schedule"). As
  pkg/scalers/cron_scaler.go computes it: the trigger is active inside its window, and its External
  metric (AverageValue target 1) is `desiredReplicas` there and 1 outside; so at KEDA's poll an active
  trigger wakes a workload at zero, and the HPA, taking the largest of the triggers, keeps at least
  `desiredReplicas` pods while the window lasts. The cron scaler "does not scale your workloads based on
  a recurring schedule" beyond that window: the SQS triggers do the rest.

Sources: https://keda.sh/docs/latest/concepts/scaling-deployments/ (long-running executions: the
container lifecycle's preStop and terminationGracePeriodSeconds, or ScaledJob),
https://keda.sh/docs/latest/concepts/scaling-jobs/, https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/FAQ.md
(scan-interval 10 s, scale-down-unneeded-time 10 min, scale-down-delay-after-add 10 min,
max-empty-bulk-delete 10, scale-down-utilization-threshold 0.5; AKS's autoscaler profile repeats the
same defaults), https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
(terminationGracePeriodSeconds default 30 s) and
https://kubernetes.io/docs/concepts/containers/container-lifecycle-hooks/ (the grace period's
countdown begins before the preStop hook runs), https://karpenter.sh/docs/concepts/disruption/
(consolidateAfter, not modelled).

The HPA's stabilization and rate rules are the ones `queue_scaler.scaling.domain.behavior` implements from
horizontal.go (stabilizeRecommendationWithBehaviors, calculateScaleUpLimitWithScalingRules,
calculateScaleDownLimitWithBehaviors); the HPA runs them with its own default behavior below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from devkit.sim.engine import Controller, ControllerFactory, Instance, PoolSim, Simulation
from devkit.sim.policies.registry import Role, register
from devkit.sim.scenario import Scenario
from devkit.sim.workload import Workload
from queue_scaler.scaling.domain.behavior import rate_limit, stabilize
from queue_scaler.scaling.domain.models import Decision, History, LimitedBy
from queue_scaler.scaling.domain.pool import Behavior, RatePolicy, ScaleDownRules, ScaleUpRules
from queue_scaler.scaling.domain.signals.schedule import Schedule, ScheduleSettings

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
#: Cluster Autoscaler defaults (cluster-autoscaler FAQ, "What are the parameters to CA?").
CA_SCAN_INTERVAL = 10.0
SCALE_DOWN_UNNEEDED_TIME = 600.0
SCALE_DOWN_DELAY_AFTER_ADD = 600.0
MAX_EMPTY_BULK_DELETE = 10
#: A pod's default terminationGracePeriodSeconds (Kubernetes API reference, PodSpec).
TERMINATION_GRACE_PERIOD = 30.0
#: The template's rule for a queue's VisibilityTimeoutSeconds: at least this many average jobs.
VISIBILITY_TIMEOUT_JOBS = 3
#: A killed job's message is visible again this share of the visibility timeout after the kill, on
#: average: the worker's heartbeat extends it to VT every VT / 3, so what is left is U(2/3, 1) x VT.
VISIBLE_AGAIN_SHARE = 5 / 6


@dataclass(frozen=True)
class PodTermination:
    """What happens to a busy worker pod the ReplicaSet deletes: killed `grace` seconds after SIGTERM,
    each job it still runs visible again `visible_after` seconds after the kill."""

    grace: float
    visible_after: float

    @classmethod
    def default(cls, mean_job_seconds: float) -> PodTermination:
        """No preStop hook: the default grace period, then what is left of the message's visibility."""
        return cls(TERMINATION_GRACE_PERIOD, VISIBLE_AGAIN_SHARE * VISIBILITY_TIMEOUT_JOBS * mean_job_seconds)

    @classmethod
    def prestop(cls, pool: PoolSim) -> PodTermination:
        """KEDA's remedy: a preStop hook and a grace period of the pool's drain window, after which the
        worker releases what it holds (visible again at once)."""
        return cls(pool.drain_seconds, 0.0)


#: The cron trigger's metric target (cron_scaler.go: an AverageValue of 1, so its replicas are its value)
#: and its value outside the window (defaultDesiredReplicas).
CRON_TARGET = 1
CRON_OUTSIDE_WINDOW = 1


def cron_triggers(pool: PoolSim) -> list[Schedule]:
    """The pool's cron triggers: one per schedule its queue-scaler configuration lists (none without)."""
    settings = pool.config.signals.get("schedule")
    return list(settings.schedules) if isinstance(settings, ScheduleSettings) else []


def cron_value(schedule: Schedule, now: float) -> int:
    """The cron trigger's metric: `desiredReplicas` (the schedule's minimum) in its window, else 1."""
    return schedule.minimum if schedule.in_force(now) is not None else CRON_OUTSIDE_WINDOW


def queue_length(pool: PoolSim) -> int:
    """Each trigger's `queueLength`: the messages one replica handles at once (its worker slots)."""
    return pool.slots


class Keda(Controller):
    POLL, HPA, CA = 0, 1, 2

    def __init__(self, pool: PoolSim, termination: PodTermination) -> None:
        super().__init__(pool)
        self.loops = [
            (POLLING_INTERVAL, pool.first_run(POLLING_INTERVAL)),
            (HPA_SYNC_PERIOD, pool.first_run(HPA_SYNC_PERIOD)),
            (CA_SCAN_INTERVAL, pool.first_run(CA_SCAN_INTERVAL)),
        ]
        self.termination = termination
        self.last_active: float | None = None
        self.history = History()
        self.keep = HPA_DEFAULT_BEHAVIOR.longest_window_seconds()
        self.queue_length = queue_length(pool)
        self.crons = cron_triggers(pool)
        #: The ReplicaSet's replica count (KEDA and the HPA set it); the pool's desired capacity is
        #: the node group's, set by the Cluster Autoscaler. The initial fleet: one pod per node.
        self.replicas = pool.min_size
        #: (time, change) of each change of the replica count.
        self.replica_actions: list[tuple[float, int]] = []
        self.last_scale_up = -math.inf

    def on_loop(self, index: int, now: float) -> int | None:
        if index == self.CA:
            self._autoscale_nodes(now)
        else:
            self._set_replicas(self._poll(now) if index == self.POLL else self._hpa_sync(now), now)
        return None  # the node group's size is the Cluster Autoscaler's, set in _autoscale_nodes

    def _poll(self, now: float) -> int | None:
        pool = self.pool
        active = any(self.messages(q) > ACTIVATION_QUEUE_LENGTH for q in range(len(pool.queues))) or any(
            cron.in_force(now) is not None for cron in self.crons
        )
        if active:
            self.last_active = now
            if self.replicas == 0:
                return max(pool.min_size, 1)
            return None
        idle_since = self.last_active if self.last_active is not None else 0.0
        if self.replicas > 0 and pool.min_size == 0 and now - idle_since >= COOLDOWN_PERIOD:
            return 0
        return None

    def messages(self, queue: int) -> int:
        """The trigger's "actual messages": visible + in flight (scaleOnInFlight), delayed left out."""
        visible, in_flight = self.pool.sqs_counts(queue)
        return visible + (in_flight if SCALE_ON_IN_FLIGHT else 0)

    def hpa_recommendation(self, values: list[int], crons: tuple[int, ...] = ()) -> int:
        """The largest of the triggers' replica counts (before behavior and clamps), from each SQS
        trigger's message count (target `queueLength`) and each cron trigger's value (target 1)."""
        current = self.replicas
        wanted = 0
        for value, target in [*((v, self.queue_length) for v in values), *((c, CRON_TARGET) for c in crons)]:
            ratio = value / (target * current)
            replicas = current if abs(ratio - 1) <= HPA_TOLERANCE else math.ceil(value / target - _EPSILON)
            wanted = max(wanted, replicas)
        return wanted

    def _hpa_sync(self, now: float) -> int | None:
        pool = self.pool
        current = self.replicas
        if current == 0:
            return None
        values = [self.messages(q) for q in range(len(pool.queues))]
        recommendation = self.hpa_recommendation(values, tuple(cron_value(c, now) for c in self.crons))
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

    # The ReplicaSet and the scheduler.
    def _set_replicas(self, replicas: int | None, now: float) -> None:
        if replicas is None or replicas == self.replicas:
            return
        self.replica_actions.append((now, replicas - self.replicas))
        self.replicas = replicas
        self._reconcile_pods()

    def pods(self) -> list[Instance]:
        """The nodes a worker pod is on (or bound to, while the node boots)."""
        pool = self.pool
        return [i for i in (*pool.booting.values(), *pool.in_service.values()) if i.worker]

    def empty_nodes(self) -> list[Instance]:
        """Nodes in service with no pod and no job left running (a deleted pod's jobs still count)."""
        return [i for i in self.pool.in_service.values() if not i.worker and not i.jobs]

    def _reconcile_pods(self) -> None:
        """Delete pods above the replica count (ReplicaSet ranking, busy or not); place pods below it
        on empty nodes (the rest stay Pending for the Cluster Autoscaler)."""
        sim, pool = self._sim(), self.pool
        pods = self.pods()
        extra = len(pods) - self.replicas
        if extra > 0:
            # Pending (node still booting) first, then the pod ready for the shortest time.
            ranked = sorted(pods, key=lambda i: (i.state == "in_service", -i.ready_at, -i.id))
            for instance in ranked[:extra]:
                sim.stop_worker(pool, instance, self.termination.grace, self.termination.visible_after)
        for instance in sorted(self.empty_nodes(), key=lambda i: i.id)[: max(0, -extra)]:
            sim.start_worker(pool, instance)

    # The Cluster Autoscaler.
    def _autoscale_nodes(self, now: float) -> None:
        sim, pool = self._sim(), self.pool
        self._reconcile_pods()  # the scheduler places Pending pods on nodes freed since
        pending = self.replicas - len(self.pods())
        if pending > 0:
            before = pool.desired
            sim.set_desired(pool, pool.desired + pending)
            if pool.desired > before:
                self.last_scale_up = now
            return
        if now - self.last_scale_up < SCALE_DOWN_DELAY_AFTER_ADD - _EPSILON:
            return
        unneeded = [i for i in self.empty_nodes() if now - self.empty_since(i) >= SCALE_DOWN_UNNEEDED_TIME - _EPSILON]
        room = min(MAX_EMPTY_BULK_DELETE, pool.desired - pool.min_size)
        for instance in sorted(unneeded, key=lambda i: i.id)[: max(0, room)]:
            sim.remove_instance(pool, instance)

    @staticmethod
    def empty_since(instance: Instance) -> float:
        """When the node last became empty: its last job's end, its pod's deletion, or its boot."""
        return max(instance.idle_since, instance.ready_at)

    def _sim(self) -> Simulation:
        assert self.sim is not None, "the simulation sets itself on its controllers before running them"
        return self.sim

    def rest_size(self) -> int:
        return self.pool.min_size


def mean_job_seconds(pool: PoolSim, workload: Workload) -> float:
    """The pool's average job time: its `seconds_per_message`, else its jobs' mean (1 s without jobs)."""
    if pool.config.seconds_per_message is not None:
        return pool.config.seconds_per_message
    jobs = [s for s, p in zip(workload.service, workload.pool, strict=True) if p == pool.index]
    return sum(jobs) / len(jobs) if jobs else 1.0


def _build(scenario: Scenario, workload: Workload) -> ControllerFactory:
    return lambda pool: Keda(pool, PodTermination.default(mean_job_seconds(pool, workload)))


register(
    "keda",
    _build,
    Role.DYNAMIC_PEER,
    "KEDA aws-sqs-queue scaler (keda.sh/docs/latest/scalers/aws-sqs), and a cron trigger per schedule the "
    "pool lists (keda.sh/docs/latest/scalers/cron), through a default-behavior HPA, its pods on nodes the "
    "Cluster Autoscaler adds and removes with its defaults",
)
