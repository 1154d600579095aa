"""A discrete-event simulator of SQS-fed EC2 worker fleets under one scaling policy.

What it models, per pool (one Auto Scaling group serving its queues, highest priority first), the same
for every policy (the scenario's `fleet:` block holds each parameter, with documented defaults):
- jobs arrive (from `workload`), wait in their queue, and start as soon as a worker slot is free;
  workers poll the highest-priority non-empty queue first and fill the oldest instance's slots first;
- desired capacity is set by the policy's controller, on its own cadence (`Controller.loops`). The
  group keeps its live instances (pending + in service) at the desired capacity, as Auto Scaling does:
  - launches go to the Availability Zone with the fewest live instances. Launch k of a pool draws its
    boot time (uniform in `boot_seconds`; a `slow_boots.fraction` of launches take `factor` times it:
    the tail) and whether it fails (`launch_failure_rate`: the instance never becomes healthy, is
    abandoned at the end of its boot and the group launches a replacement) from the pool's own seeded
    stream, so the k-th launch behaves the same under every policy;
  - scale-in applies the default termination policy ("Configure termination policies for Amazon EC2
    Auto Scaling", default termination policy) to the instances NOT protected from scale-in: the zone
    with the most instances that has an unprotected one, then instances with an outdated launch
    template or configuration (none here: one template, never updated; one instance type, so no
    allocation-strategy step), then the one closest to its next billing hour, then at random. An
    instance protected from scale-in is never chosen; when too few are unprotected the group stays
    above its desired capacity and takes each one when its protection is removed, as AWS does;
  - workers protect their instance while they hold a job (queue_worker/protection.py: protected when a
    job is received, unprotected `protection_linger_seconds` after the last one ends), so scale-in
    takes idle or booting instances first, by the policy above;
  - a chosen instance goes through the terminate hook's drain (lifecycle/services/lifecycle.py: SIGTERM to the
    worker, which stops receiving and finishes what it holds for the pool's drain window): a job not
    finished when the window ends is released (visible again at once) and retried by another worker,
    counted as restarted; the instance terminates when its worker exits (all done, or the window's end);
- a pool with a warm pool (the scenario's `warm_pool:`, as PutWarmPool configures it) keeps prepared
  instances outside desired capacity: AWS's size (max_size, or `max_prepared_capacity`, minus desired;
  at least `min_size`), each prepared by a cold boot (the pool's next launch: its boot time and failure
  draw) and then left Stopped, Hibernated or Running. A scale-out takes warmed instances first, each in
  service `fleet.warm_start_seconds` later (billing.py cites the figure), and launches the rest cold;
  the pool refills (and drops what exceeds its size, instances still preparing first). With
  `reuse_on_scale_in` a drained instance returns to the warm pool instead of terminating;
- what a controller sees: SQS's ApproximateNumberOf* counts, each off by up to `sqs_relative_error`
  (SQS: "for some metrics, the result is approximate because of the distributed architecture of
  Amazon SQS"), and the group (desired, in service, pending); policies reading CloudWatch add its
  delay themselves (`cloudwatch_delay_seconds`).

The engine records what the metrics need (module `metrics`): each job's start, end, queued time and
restarts, each instance's launch and termination, each change of desired capacity, bursts.
"""

from __future__ import annotations

import heapq
import math
import random
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from devkit.sim.scenario import Fleet, PoolSpec, Scenario
from devkit.sim.workload import Workload
from queue_scaler.scaling.domain.decision import ceil_need
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.domain.signals.backlog import backlog_count

_BOOTED, _DONE, _LOOP, _SAMPLE, _UNPROTECT, _DRAIN_END, _KILL, _RETURN = 0, 1, 2, 3, 4, 5, 6, 7
#: How often the engine records a point of the time series and checks whether the run is over.
SAMPLE_SECONDS = 10.0
#: EC2 bills by the second but the default termination policy still prefers the instance closest
#: to its next billing hour.
BILLING_HOUR = 3600.0


class SeriesPoint(NamedTuple):
    """One point of a run's time series, summed over the scenario's pools."""

    t: float
    #: Messages waiting in the queues (SQS's ApproximateNumberOfMessages, exact).
    visible: int
    in_service: int
    desired: int
    #: Seconds the oldest waiting job has waited.
    oldest_age: float
    #: Messages being worked on (ApproximateNumberOfMessagesNotVisible, exact): with `visible`, the
    #: backlog every policy scales on.
    in_flight: int = 0
    #: Instances launched and not yet in service.
    booting: int = 0
    #: Instances in service above the desired capacity: every one protected from scale-in (the group
    #: takes any unprotected instance at once), kept until its worker lets go.
    protected_surplus: int = 0


@dataclass(slots=True)
class Instance:
    id: int
    launched: float
    ready_at: float
    state: str = "booting"  # booting | in_service | draining | terminated | warming | warmed
    zone: int = 0
    fails: bool = False  # drawn at launch: never becomes healthy
    running: int = 0
    jobs: set[int] = field(default_factory=set)
    protected: bool = False
    idle_since: float = 0.0
    terminated: float | None = None
    #: A worker runs on it. Always, for an Auto Scaling group's instance; a Kubernetes node (keda's
    #: model) hosts a worker pod only while the ReplicaSet places one there (`stop_worker`).
    worker: bool = True
    #: Seconds spent Stopped or Hibernated in a warm pool (storage billed only), and since when it
    #: waits so now (None: not stopped).
    stored: float = 0.0
    stopped_since: float | None = None
    #: When its current drain window ends.
    drain_ends: float = 0.0

    def stored_until(self, end: float) -> float:
        """Seconds stopped in a warm pool up to `end` (its current stop included)."""
        return self.stored + (0.0 if self.stopped_since is None else end - self.stopped_since)

    def billed_until(self, end: float) -> float:
        """Seconds billed as a running instance: from the launch request to its termination (or `end`),
        less the time it waited stopped in a warm pool."""
        return (self.terminated if self.terminated is not None else end) - self.launched - self.stored_until(end)


class Controller(ABC):
    """A scaling policy for one pool: periodic loops that may set the desired capacity."""

    #: (period, first run) of each loop; `on_loop(index, ...)` runs at first run + k * period.
    loops: list[tuple[float, float]]

    def initial_size(self) -> int:
        """Instances in service at time 0 (an autoscaler starts from the pool's minimum)."""
        return self.pool.min_size

    def rest_size(self) -> int:
        """The size the policy settles at once the work is done: the run ends there."""
        return self.pool.min_size

    def __init__(self, pool: PoolSim) -> None:
        self.pool = pool
        self.loops = []
        #: The simulation running it (set once it is built), for a controller that acts on single
        #: instances (keda's node model); one that only sets the desired capacity never reads it.
        self.sim: Simulation | None = None

    @abstractmethod
    def on_loop(self, index: int, now: float) -> int | None:
        """The new desired capacity, or None to leave it."""

    #: Whether the engine calls `on_arrival` on each of the pool's arrivals (the reactive oracle's
    #: instant view); False keeps every other policy to its own loops at no cost per arrival.
    sees_arrivals = False

    def on_arrival(self, now: float) -> int | None:
        """The new desired capacity the instant a job arrives in the pool, or None to leave it."""
        return None


@dataclass
class Reaction:
    """Bursts and how long the policy took to answer each (CONTRACTS.md section 5)."""

    started: float | None = None
    seconds: list[float] = field(default_factory=list)
    unanswered: int = 0


@dataclass
class Adequacy:
    """Bursts and how long each took until the capacity in service covered the need (or max_size)."""

    started: float | None = None
    seconds: list[float] = field(default_factory=list)


class PoolSim:
    """One pool's queues, instances and desired capacity, as a controller observes them."""

    def __init__(self, index: int, spec: PoolSpec, scenario: Scenario, service_seconds: list[float]) -> None:
        seed = scenario.seed
        self.index = index
        self.spec = spec
        self.fleet: Fleet = scenario.fleet
        self.config: PoolConfig = spec.pool_config()
        self.name = spec.name
        self.min_size = spec.min_size
        self.max_size = spec.max_size
        self.slots = spec.slots_per_instance
        self.drain_seconds = spec.drain_window(service_seconds)
        self.targets = [self.config.target_for(q) for q in self.config.queues]
        self.queues: list[deque[int]] = [deque() for _ in spec.queues]
        self.in_flight = [0] * len(spec.queues)
        self.instances: list[Instance] = []
        self.booting: dict[int, Instance] = {}
        self.in_service: dict[int, Instance] = {}
        self.draining: dict[int, Instance] = {}
        self.free: set[int] = set()
        self.desired = 0
        self.actions: list[tuple[float, int]] = []
        self.reaction = Reaction()
        self.adequacy = Adequacy()
        self.launch_failures = 0
        self.warm_pool = spec.warm_pool
        #: Warm-pool instances being prepared (a cold boot), and those prepared and waiting.
        self.warming: dict[int, Instance] = {}
        self.warmed: dict[int, Instance] = {}
        #: Whether warmed instances wait stopped (Stopped, Hibernated: storage billed only).
        self.stores = self.warm_pool is not None and self.warm_pool.state != "Running"
        #: Scale-outs served by a warmed instance.
        self.warm_starts = 0
        # The k-th instance a pool launches boots (and fails) the same under every policy.
        self._boot_rng = random.Random(f"{seed}:boot:{spec.name}")
        self._boot = (scenario.boot_seconds.min, scenario.boot_seconds.max)
        self._count_rng = random.Random(f"{seed}:sqs:{spec.name}")
        self._tie_rng = random.Random(f"{seed}:termination:{spec.name}")
        # Where in its period each periodic loop first runs: one draw per pool, shared by every
        # policy, so that no policy is luckier than another in when it first looks at a burst.
        self.phase = random.Random(f"{seed}:phase:{spec.name}").random()

    # What a controller observes: SQS's approximate counts.
    def _approximate(self, count: int) -> int:
        error = self.fleet.sqs_relative_error
        if count == 0 or error == 0:
            return count
        return max(0, round(count * (1 + error * (2 * self._count_rng.random() - 1))))

    def sqs_counts(self, queue: int) -> tuple[int, int]:
        """(ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible) of a queue, as SQS
        answers GetQueueAttributes: each within `sqs_relative_error` of the true count."""
        return self._approximate(len(self.queues[queue])), self._approximate(self.in_flight[queue])

    def backlog(self, queue: int) -> int:
        """The queue's exact backlog as the pool's configuration counts it: the domain's backlog rule."""
        return backlog_count(self.config, len(self.queues[queue]), self.in_flight[queue], 0)

    def raw_need(self) -> float:
        """Exact backlog over targets (CONTRACTS.md section 1): what the metrics call the need."""
        return sum(self.backlog(i) / t for i, t in enumerate(self.targets))

    def need(self) -> int:
        return ceil_need(self.raw_need())

    def capacity_need(self) -> int:
        """Whole instances the work in the pool needs, whatever the policy: each running job its slot,
        each waiting message its share of its queue's target (exact counts). Rounded down: a shortfall
        of less than one instance (a message or two waiting in a steady stream) is not a burst; but
        any work needs at least one instance."""
        raw = sum(len(q) / t for q, t in zip(self.queues, self.targets, strict=True)) + sum(self.in_flight) / self.slots
        return max(math.floor(raw + 1e-9), 1 if raw > 0 else 0)

    @property
    def pending(self) -> int:
        return len(self.booting)

    @property
    def live(self) -> int:
        return len(self.booting) + len(self.in_service)

    def first_run(self, period: float) -> float:
        """When a loop of this period first runs."""
        return self.phase * period

    def next_launch(self) -> tuple[float, bool]:
        """(boot seconds, fails) of the pool's next launch: three draws per launch, always."""
        low, high = self._boot
        boot = low + self._boot_rng.random() * (high - low)
        slow = self._boot_rng.random() < self.fleet.slow_boots.fraction
        fails = self._boot_rng.random() < self.fleet.launch_failure_rate
        return boot * (self.fleet.slow_boots.factor if slow else 1.0), fails

    def launch_zone(self, warm: bool = False) -> int:
        """Auto Scaling balances launches: the zone with the fewest live instances (lowest first); a
        launch into the warm pool, the zone with the fewest warm-pool instances."""
        counts = [0] * self.fleet.availability_zones
        group = (self.warming, self.warmed) if warm else (self.booting, self.in_service)
        for instance in (*group[0].values(), *group[1].values()):
            counts[instance.zone] += 1
        return min(range(len(counts)), key=lambda z: counts[z])

    def warm_size(self) -> int:
        """The instances the warm pool holds at the current desired capacity (0 without one)."""
        return 0 if self.warm_pool is None else self.warm_pool.size(self.desired, self.max_size)

    def take_warmed(self) -> Instance:
        """The warmed instance a scale-out starts: one in the zone a launch would go to, else the oldest."""
        zone = self.launch_zone()
        return min(self.warmed.values(), key=lambda i: (i.zone != zone, i.id))

    def termination_choice(self, count: int, now: float) -> list[Instance]:
        """Up to `count` instances the default termination policy picks, unprotected ones only.

        Each pick: among the zones with an unprotected instance, those with the most live instances
        (all of them when the zones are balanced); there, the unprotected instance closest to its
        next billing hour; ties at random (the pool's seeded stream)."""
        per_zone = [0] * self.fleet.availability_zones
        candidates: list[tuple[float, float, Instance]] = []
        for instance in (*self.booting.values(), *self.in_service.values()):
            per_zone[instance.zone] += 1
            if not instance.protected:
                to_next_hour = BILLING_HOUR - (now - instance.launched) % BILLING_HOUR
                candidates.append((to_next_hour, self._tie_rng.random(), instance))
        candidates.sort(key=lambda c: (c[0], c[1]))
        chosen: list[Instance] = []
        while len(chosen) < count and candidates:
            most = max(per_zone[c[2].zone] for c in candidates)
            pick = next(i for i, c in enumerate(candidates) if per_zone[c[2].zone] == most)
            instance = candidates.pop(pick)[2]
            per_zone[instance.zone] -= 1
            chosen.append(instance)
        return chosen


class Simulation:
    """One scenario under one policy; `run()` returns the raw record the metrics are computed from."""

    def __init__(
        self,
        scenario: Scenario,
        workload: Workload,
        make_controller: ControllerFactory,
        record_series: bool = True,
    ) -> None:
        self.scenario = scenario
        self.workload = workload
        self.fleet = scenario.fleet
        services: list[list[float]] = [[] for _ in scenario.pools]
        for service, pool in zip(workload.service, workload.pool, strict=True):
            services[pool].append(service)
        self.pools = [PoolSim(i, spec, scenario, services[i]) for i, spec in enumerate(scenario.pools)]
        self.controllers = [make_controller(pool) for pool in self.pools]
        for controller in self.controllers:
            controller.sim = self
        jobs = len(workload)
        self.start = [math.nan] * jobs
        self.end = [math.nan] * jobs
        #: Seconds each job spent waiting in its queue, over all its attempts.
        self.queued = [0.0] * jobs
        self.restarts = [0] * jobs
        self._attempt = [0] * jobs
        self._queued_since = list(workload.arrival)
        self.completed = 0
        self.now = 0.0
        self.finished_at = 0.0
        self.series: list[SeriesPoint] = []
        self._record_series = record_series
        self._heap: list[tuple[float, int, int, int, int]] = []
        self._seq = 0
        self._running_on: dict[int, Instance] = {}
        #: (pool, instance) -> (when the deleted pod's jobs are killed, seconds until each killed
        #: job's message is visible again).
        self._kills: dict[tuple[int, int], tuple[float, float]] = {}

    def waits(self) -> list[float]:
        """Each job's time in its queue over all its attempts; a job waiting when the run ended counts
        its wait until then."""
        end = self.finished_at
        return [
            queued if done or job in self._running_on else queued + end - since
            for job, (queued, since, done) in enumerate(
                zip(self.queued, self._queued_since, (not math.isnan(e) for e in self.end), strict=True)
            )
        ]

    # Event plumbing.
    def _push(self, at: float, kind: int, a: int, b: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, a, b))

    def _begin(self) -> None:
        """Each pool's initial fleet, in service at time 0, and the first run of each loop."""
        for pool, controller in zip(self.pools, self.controllers, strict=True):
            size = controller.initial_size()
            pool.desired = size
            for _ in range(size):
                instance = Instance(len(pool.instances), 0.0, 0.0, "in_service", zone=pool.launch_zone())
                pool.instances.append(instance)
                pool.in_service[instance.id] = instance
                pool.free.add(instance.id)
            # The warm pool was prepared before the run, as the fleet in service was started.
            for _ in range(pool.warm_size()):
                instance = Instance(len(pool.instances), 0.0, 0.0, "warmed", zone=pool.launch_zone(warm=True))
                pool.instances.append(instance)
                self._wait_warmed(pool, instance)
            for index, (_, first) in enumerate(controller.loops):
                self._push(first, _LOOP, pool.index, index)
        self._push(0.0, _SAMPLE, 0)

    def run(self) -> Simulation:
        """Simulate until the work is done and every fleet is at rest, or the drain limit."""
        self._begin()
        arrival, pool_of, total = self.workload.arrival, self.workload.pool, len(self.workload)
        horizon = self.scenario.duration_seconds + self.scenario.drain_limit_seconds
        next_job = 0
        heap = self._heap
        while True:
            if next_job < total and arrival[next_job] <= heap[0][0]:
                self.now = arrival[next_job]
                self._arrive(next_job, self.pools[pool_of[next_job]])
                next_job += 1
                continue
            at, _, kind, a, b = heapq.heappop(heap)
            self.now = at
            if kind == _DONE:
                self._complete(a, b)
            elif kind == _BOOTED:
                self._booted(self.pools[a], b)
            elif kind == _LOOP:
                self._loop(a, b)
            elif kind == _RETURN:
                self._return(a)
            elif kind != _SAMPLE:
                self._instance_event(kind, self.pools[a], b)
            else:
                self._sample()
                if at >= horizon or (next_job == total and self._at_rest()):
                    self.finished_at = at
                    break
                self._push(at + SAMPLE_SECONDS, _SAMPLE, 0)
        for pool in self.pools:
            if pool.reaction.started is not None:
                pool.reaction.unanswered += 1
                pool.reaction.started = None
            if pool.adequacy.started is not None:
                pool.adequacy.seconds.append(self.now - pool.adequacy.started)
                pool.adequacy.started = None
        return self

    def _instance_event(self, kind: int, pool: PoolSim, instance_id: int) -> None:
        if kind == _UNPROTECT:
            self._unprotect(pool, instance_id)
        elif kind == _DRAIN_END:
            self._drain_end(pool, instance_id)
        else:
            self._kill(pool, instance_id)

    def _loop(self, pool_index: int, loop: int) -> None:
        controller = self.controllers[pool_index]
        self._push(self.now + controller.loops[loop][0], _LOOP, pool_index, loop)
        desired = controller.on_loop(loop, self.now)
        if desired is not None:
            self.set_desired(self.pools[pool_index], desired)

    def _at_rest(self) -> bool:
        if self.now < self.scenario.duration_seconds or self.completed < len(self.workload):
            return False
        return all(
            not p.booting
            and not p.draining
            and not p.warming
            and len(p.in_service) == c.rest_size()
            and p.desired == c.rest_size()
            for p, c in zip(self.pools, self.controllers, strict=True)
        )

    # Jobs.
    def _arrive(self, job: int, pool: PoolSim) -> None:
        pool.queues[self.workload.queue[job]].append(job)
        controller = self.controllers[pool.index]
        if controller.sees_arrivals:
            desired = controller.on_arrival(self.now)
            if desired is not None:
                self.set_desired(pool, desired)
        if pool.reaction.started is None and pool.desired < pool.max_size and pool.need() > pool.desired:
            pool.reaction.started = self.now
        if pool.free:
            self._dispatch(pool)
        self._check_adequacy(pool)

    def _check_adequacy(self, pool: PoolSim) -> None:
        """Open a burst when the capacity need exceeds the capacity in service (below max_size);
        close it once that capacity covers the need or reaches max_size."""
        capacity = len(pool.in_service)
        covered = capacity >= min(pool.capacity_need(), pool.max_size)
        if pool.adequacy.started is None:
            if not covered:
                pool.adequacy.started = self.now
        elif covered:
            pool.adequacy.seconds.append(self.now - pool.adequacy.started)
            pool.adequacy.started = None

    def _dispatch(self, pool: PoolSim) -> None:
        queues = pool.queues
        protect = self.fleet.scale_in_protection
        while pool.free:
            q = next((i for i, waiting in enumerate(queues) if waiting), None)
            if q is None:
                return
            job = queues[q].popleft()
            instance = pool.in_service[min(pool.free)]
            instance.running += 1
            instance.jobs.add(job)
            # The worker protects its instance before the job starts (ScaleInProtection.busy).
            instance.protected = instance.protected or protect
            if instance.running == pool.slots:
                pool.free.discard(instance.id)
            pool.in_flight[q] += 1
            if math.isnan(self.start[job]):
                self.start[job] = self.now
            self.queued[job] += self.now - self._queued_since[job]
            self._running_on[job] = instance
            self._push(self.now + self.workload.service[job], _DONE, job, self._attempt[job])

    def _complete(self, job: int, attempt: int) -> None:
        if attempt != self._attempt[job]:
            return  # that attempt was released by a drain; the job runs again elsewhere
        pool = self.pools[self.workload.pool[job]]
        instance = self._running_on.pop(job)
        self.end[job] = self.now
        self.completed += 1
        pool.in_flight[self.workload.queue[job]] -= 1
        instance.running -= 1
        instance.jobs.discard(job)
        if instance.state == "draining":
            if instance.running == 0:
                del pool.draining[instance.id]
                self._retire(pool, instance)
            self._check_adequacy(pool)
            return
        if instance.running == 0:
            instance.idle_since = self.now
        if not instance.worker:  # its worker was stopped: it takes no more jobs
            self._check_adequacy(pool)
            return
        pool.free.add(instance.id)
        if instance.running == 0 and instance.protected:
            self._push(self.now + self.fleet.protection_linger_seconds, _UNPROTECT, pool.index, instance.id)
        self._dispatch(pool)
        self._check_adequacy(pool)

    def _release(self, pool: PoolSim, job: int) -> None:
        """A drain's deadline: the message is visible again at once and another worker retries it."""
        q = self.workload.queue[job]
        del self._running_on[job]
        pool.in_flight[q] -= 1
        pool.queues[q].appendleft(job)
        self._attempt[job] += 1
        self.restarts[job] += 1
        self._queued_since[job] = self.now

    # The Auto Scaling group.
    def set_desired(self, pool: PoolSim, desired: int) -> None:
        """SetDesiredCapacity: record the action and let the group reconcile at once."""
        desired = max(pool.min_size, min(pool.max_size, desired))
        if desired == pool.desired:
            return
        if desired > pool.desired and pool.reaction.started is not None:
            pool.reaction.seconds.append(self.now - pool.reaction.started)
            pool.reaction.started = None
        pool.actions.append((self.now, desired - pool.desired))
        pool.desired = desired
        self._reconcile(pool)

    def _reconcile(self, pool: PoolSim) -> None:
        """Launch up to the desired capacity, or terminate what the termination policy may take."""
        while pool.live < pool.desired:
            if pool.warmed:
                self._warm_start(pool, pool.take_warmed())
                continue
            boot, fails = pool.next_launch()
            instance = Instance(len(pool.instances), self.now, self.now + boot, zone=pool.launch_zone(), fails=fails)
            pool.instances.append(instance)
            pool.booting[instance.id] = instance
            self._push(instance.ready_at, _BOOTED, pool.index, instance.id)
        excess = pool.live - pool.desired
        if excess > 0:
            for instance in pool.termination_choice(excess, self.now):
                self._leave(pool, instance)
        self._refill(pool)

    # The warm pool.
    def _warm_start(self, pool: PoolSim, instance: Instance) -> None:
        """A warmed instance leaves the warm pool for the group: in service after the warm start."""
        del pool.warmed[instance.id]
        self._wake(instance)
        instance.state = "booting"
        instance.ready_at = self.now + self.fleet.warm_start_seconds
        pool.booting[instance.id] = instance
        pool.warm_starts += 1
        self._push(instance.ready_at, _BOOTED, pool.index, instance.id)

    def _wake(self, instance: Instance) -> None:
        """A stopped warm-pool instance starts (or terminates): its storage-only time ends."""
        if instance.stopped_since is not None:
            instance.stored += self.now - instance.stopped_since
            instance.stopped_since = None

    def _wait_warmed(self, pool: PoolSim, instance: Instance) -> None:
        """A prepared (or reused) instance waits in the warm pool, stopped unless the pool runs its instances."""
        instance.state = "warmed"
        instance.protected = False
        if pool.stores:
            instance.stopped_since = self.now
        pool.warmed[instance.id] = instance

    def _refill(self, pool: PoolSim) -> None:
        """Keep the warm pool at its size: prepare the missing instances (a cold boot each), or terminate
        the extra ones, those still being prepared first (the newest first)."""
        if pool.warm_pool is None:
            return
        size = pool.warm_size()
        while len(pool.warming) + len(pool.warmed) < size:
            boot, fails = pool.next_launch()
            zone = pool.launch_zone(warm=True)
            instance = Instance(len(pool.instances), self.now, self.now + boot, "warming", zone=zone, fails=fails)
            pool.instances.append(instance)
            pool.warming[instance.id] = instance
            self._push(instance.ready_at, _BOOTED, pool.index, instance.id)
        while len(pool.warming) + len(pool.warmed) > size:
            extra = pool.warming or pool.warmed
            instance = extra.pop(max(extra))
            self._wake(instance)
            self._terminate(instance)

    def _retire(self, pool: PoolSim, instance: Instance) -> None:
        """An instance leaving the group after its drain: back to the warm pool when the pool reuses
        instances on scale-in (AWS's InstanceReusePolicy), else terminated."""
        if pool.warm_pool is None or not pool.warm_pool.reuse_on_scale_in:
            self._terminate(instance)
            return
        instance.running = 0
        instance.jobs.clear()
        self._wait_warmed(pool, instance)
        self._refill(pool)

    def _leave(self, pool: PoolSim, instance: Instance) -> None:
        """A chosen instance: a booting one terminates; one in service drains through the hook."""
        if instance.state == "booting":
            del pool.booting[instance.id]
            self._terminate(instance)
            return
        del pool.in_service[instance.id]
        pool.free.discard(instance.id)
        if instance.running == 0:
            self._retire(pool, instance)
            return
        instance.state = "draining"
        instance.drain_ends = self.now + pool.drain_seconds
        pool.draining[instance.id] = instance
        self._push(instance.drain_ends, _DRAIN_END, pool.index, instance.id)

    def _drain_end(self, pool: PoolSim, instance_id: int) -> None:
        instance = pool.draining.get(instance_id)
        # Its jobs finished within the window; or the window is a previous trip's (an instance the warm
        # pool reused drains again, until its own window's end).
        if instance is None or self.now < instance.drain_ends - 1e-9:
            return
        del pool.draining[instance_id]
        for job in sorted(instance.jobs):
            self._release(pool, job)
        instance.jobs.clear()
        instance.running = 0
        self._retire(pool, instance)
        self._dispatch(pool)
        self._check_adequacy(pool)

    # A node and its worker pod, apart (keda's model): the pod is deleted and the node removed by
    # different actors (the ReplicaSet, the Cluster Autoscaler).
    def start_worker(self, pool: PoolSim, instance: Instance) -> None:
        """A worker pod placed on an instance without one: in service, it takes jobs at once."""
        instance.worker = True
        self._kills.pop((pool.index, instance.id), None)  # the last pod's jobs have all ended
        if instance.state == "in_service":
            pool.free.add(instance.id)
            self._dispatch(pool)

    def stop_worker(self, pool: PoolSim, instance: Instance, grace: float, visible_after: float) -> None:
        """The worker pod is deleted (SIGTERM): it takes no more jobs; jobs still running `grace`
        seconds later are killed (SIGKILL) and each message is visible again `visible_after` seconds
        after the kill, when another worker may take it."""
        instance.worker = False
        pool.free.discard(instance.id)
        if instance.running == 0:
            instance.idle_since = self.now
            return
        self._kills[pool.index, instance.id] = (self.now + grace, visible_after)
        self._push(self.now + grace, _KILL, pool.index, instance.id)

    def _kill(self, pool: PoolSim, instance_id: int) -> None:
        deadline, visible_after = self._kills.get((pool.index, instance_id), (math.inf, 0.0))
        if self.now < deadline - 1e-9:  # an earlier pod's deadline: a later deletion set its own
            return
        del self._kills[pool.index, instance_id]
        instance = pool.instances[instance_id]
        if not instance.jobs:  # its jobs ended within the grace period
            return
        for job in sorted(instance.jobs):
            del self._running_on[job]
            self._attempt[job] += 1
            self.restarts[job] += 1
            # The job waits again from the kill: invisible, then visible, until a worker takes it.
            self._queued_since[job] = self.now
            self._push(self.now + visible_after, _RETURN, job)
        instance.jobs.clear()
        instance.running = 0
        instance.idle_since = self.now
        self._check_adequacy(pool)

    def _return(self, job: int) -> None:
        """A killed job's message is visible again (its visibility timeout ran out)."""
        pool = self.pools[self.workload.pool[job]]
        q = self.workload.queue[job]
        pool.in_flight[q] -= 1
        pool.queues[q].appendleft(job)
        if pool.free:
            self._dispatch(pool)
        self._check_adequacy(pool)

    def remove_instance(self, pool: PoolSim, instance: Instance) -> None:
        """TerminateInstanceInAutoScalingGroup with ShouldDecrementDesiredCapacity: this instance
        (in service, no job running) leaves and the desired capacity drops by one (a scale action)."""
        del pool.in_service[instance.id]
        pool.free.discard(instance.id)
        pool.desired -= 1
        pool.actions.append((self.now, -1))
        self._terminate(instance)
        self._refill(pool)  # a lower desired capacity makes room in a warm pool of AWS's default size

    def _unprotect(self, pool: PoolSim, instance_id: int) -> None:
        instance = pool.in_service.get(instance_id)
        if instance is None or instance.running or not instance.protected:
            return
        if self.now < instance.idle_since + self.fleet.protection_linger_seconds - 1e-9:
            return  # it worked again since; a later event unprotects it
        instance.protected = False
        if pool.live > pool.desired:
            self._reconcile(pool)

    def _booted(self, pool: PoolSim, instance_id: int) -> None:
        instance = pool.booting.pop(instance_id, None)
        if instance is None:
            self._prepared(pool, instance_id)
            return
        if instance.fails:
            # Never healthy: the launch is abandoned and the group launches a replacement.
            pool.launch_failures += 1
            self._terminate(instance)
            self._reconcile(pool)
            return
        instance.state = "in_service"
        pool.in_service[instance.id] = instance
        if not instance.worker:  # a node whose pod was deleted while it booted: it comes up empty
            instance.idle_since = self.now
            return
        pool.free.add(instance.id)
        self._dispatch(pool)
        self._check_adequacy(pool)

    def _prepared(self, pool: PoolSim, instance_id: int) -> None:
        """A warm-pool instance's preparation ends: it waits warmed, or (never healthy) is replaced."""
        instance = pool.warming.pop(instance_id, None)
        if instance is None:  # terminated while booting or being prepared
            return
        if instance.fails:
            pool.launch_failures += 1
            self._terminate(instance)
            self._refill(pool)
            return
        self._wait_warmed(pool, instance)

    def _terminate(self, instance: Instance) -> None:
        instance.state = "terminated"
        instance.terminated = self.now

    # Time series and burst bookkeeping.
    def _sample(self) -> None:
        visible = 0
        capacity = 0
        oldest = math.inf
        for pool in self.pools:
            if pool.reaction.started is not None and pool.need() <= pool.desired:
                pool.reaction.unanswered += 1
                pool.reaction.started = None
            for waiting in pool.queues:
                visible += len(waiting)
                if waiting:
                    oldest = min(oldest, self._queued_since[waiting[0]])
            capacity += len(pool.in_service)
        if self._record_series:
            age = self.now - oldest if oldest != math.inf else 0.0
            pools = self.pools
            self.series.append(
                SeriesPoint(
                    self.now,
                    visible,
                    capacity,
                    sum(p.desired for p in pools),
                    age,
                    sum(sum(p.in_flight) for p in pools),
                    sum(len(p.booting) for p in pools),
                    sum(max(0, len(p.in_service) - p.desired) for p in pools),
                )
            )


#: Builds one pool's controller; policies that need the scenario or workload close over them.
ControllerFactory = Callable[[PoolSim], Controller]
