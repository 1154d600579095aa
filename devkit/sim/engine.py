"""A discrete-event simulator of SQS-fed EC2 worker fleets under one scaling policy.

What it models, per pool (one Auto Scaling group serving its queues, highest priority first):
- jobs arrive (from `workload`), wait in their queue, and start as soon as a worker slot is free;
  workers poll the highest-priority non-empty queue first, and fill the oldest instance's slots
  first, so that scale-in finds idle instances (the same rule for every policy);
- desired capacity is set by the policy's controller, which runs on its own cadence (the
  `Controller.loops`); the group reconciles at once: it launches instances (in service after a boot
  time drawn uniformly from the scenario's range), or removes instances: booting ones first, then
  idle ones, then busy ones, newest first. A busy instance drains: it takes no new job and is
  terminated when the jobs it holds complete, as the lifecycle hook and SIGTERM-aware workers do;
- what a controller sees: SQS-like counters per queue (visible, in flight, delayed) and the group
  (desired, in service, pending), exact at the instant it looks.

The engine records what the metrics need (module `metrics`): each job's start and end, each
instance's launch and termination, each change of desired capacity, and burst reactions.
"""

from __future__ import annotations

import heapq
import math
import random
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from devkit.sim.scenario import PoolSpec, Scenario
from devkit.sim.workload import Workload
from queue_scaler.config import PoolConfig
from queue_scaler.domain.decision import ceil_need
from queue_scaler.domain.signals.backlog import backlog_count

_BOOTED, _DONE, _LOOP, _SAMPLE = 0, 1, 2, 3
#: How often the engine records a point of the time series and checks whether the run is over.
SAMPLE_SECONDS = 10.0


@dataclass(slots=True)
class Instance:
    id: int
    launched: float
    ready_at: float
    state: str = "booting"  # booting | in_service | draining | terminated
    running: int = 0
    terminated: float | None = None


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

    @abstractmethod
    def on_loop(self, index: int, now: float) -> int | None:
        """The new desired capacity, or None to leave it."""


@dataclass
class Reaction:
    """Bursts and how long the policy took to answer each (CONTRACTS.md section 5)."""

    started: float | None = None
    seconds: list[float] = field(default_factory=list)
    unanswered: int = 0


class PoolSim:
    """One pool's queues, instances and desired capacity, as a controller observes them."""

    def __init__(self, index: int, spec: PoolSpec, seed: int, boot_min: float, boot_max: float):
        self.index = index
        self.spec = spec
        self.config: PoolConfig = spec.pool_config()
        self.name = spec.name
        self.min_size = spec.min_size
        self.max_size = spec.max_size
        self.slots = spec.slots_per_instance
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
        # The k-th instance a pool launches boots in the same time under every policy.
        self._boot_rng = random.Random(f"{seed}:boot:{spec.name}")
        self._boot = (boot_min, boot_max)
        # Where in its period each periodic loop first runs: one draw per pool, shared by every
        # policy, so that no policy is luckier than another in when it first looks at a burst.
        self.phase = random.Random(f"{seed}:phase:{spec.name}").random()

    # What a controller observes.
    def visible(self) -> list[int]:
        return [len(q) for q in self.queues]

    def backlog(self, queue: int) -> int:
        """The queue's backlog as the pool's configuration counts it: the domain's backlog rule."""
        return backlog_count(self.config, len(self.queues[queue]), self.in_flight[queue], 0)

    def raw_need(self) -> float:
        """Backlog over targets (CONTRACTS.md section 1), as every policy reads the pool: the refinements
        only queue-scaler is configured with (`count_in_flight_as_slots`) are its signal's own."""
        return sum(self.backlog(i) / t for i, t in enumerate(self.targets))

    def need(self) -> int:
        return ceil_need(self.raw_need())

    @property
    def pending(self) -> int:
        return len(self.booting)

    @property
    def live(self) -> int:
        return len(self.booting) + len(self.in_service)

    def first_run(self, period: float) -> float:
        """When a loop of this period first runs."""
        return self.phase * period

    def next_boot_seconds(self) -> float:
        low, high = self._boot
        return low + self._boot_rng.random() * (high - low)


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
        self.pools = [
            PoolSim(i, spec, scenario.seed, scenario.boot_seconds.min, scenario.boot_seconds.max)
            for i, spec in enumerate(scenario.pools)
        ]
        self.controllers = [make_controller(pool) for pool in self.pools]
        self.start = [math.nan] * len(workload)
        self.end = [math.nan] * len(workload)
        self.completed = 0
        self.now = 0.0
        self.finished_at = 0.0
        self.series: list[tuple[float, int, int, int, float]] = []
        self._record_series = record_series
        self._heap: list[tuple[float, int, int, int, int]] = []
        self._seq = 0
        self._running_on: dict[int, Instance] = {}

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
                instance = Instance(len(pool.instances), 0.0, 0.0, "in_service")
                pool.instances.append(instance)
                pool.in_service[instance.id] = instance
                pool.free.add(instance.id)
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
                self._complete(a)
            elif kind == _BOOTED:
                self._booted(self.pools[a], b)
            elif kind == _LOOP:
                self._loop(a, b)
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
        return self

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
            not p.booting and not p.draining and len(p.in_service) == c.rest_size() and p.desired == c.rest_size()
            for p, c in zip(self.pools, self.controllers, strict=True)
        )

    # Jobs.
    def _arrive(self, job: int, pool: PoolSim) -> None:
        pool.queues[self.workload.queue[job]].append(job)
        if pool.reaction.started is None and pool.desired < pool.max_size and pool.need() > pool.desired:
            pool.reaction.started = self.now
        if pool.free:
            self._dispatch(pool)

    def _dispatch(self, pool: PoolSim) -> None:
        queues = pool.queues
        while pool.free:
            q = next((i for i, waiting in enumerate(queues) if waiting), None)
            if q is None:
                return
            job = queues[q].popleft()
            instance = pool.in_service[min(pool.free)]
            instance.running += 1
            if instance.running == pool.slots:
                pool.free.discard(instance.id)
            pool.in_flight[q] += 1
            self.start[job] = self.now
            self._running_on[job] = instance
            self._push(self.now + self.workload.service[job], _DONE, job)

    def _complete(self, job: int) -> None:
        pool = self.pools[self.workload.pool[job]]
        instance = self._running_on.pop(job)
        self.end[job] = self.now
        self.completed += 1
        pool.in_flight[self.workload.queue[job]] -= 1
        instance.running -= 1
        if instance.state == "draining":
            if instance.running == 0:
                del pool.draining[instance.id]
                self._terminate(instance)
            return
        pool.free.add(instance.id)
        self._dispatch(pool)

    # The Auto Scaling group.
    def set_desired(self, pool: PoolSim, desired: int) -> None:
        """SetDesiredCapacity: record the action and reconcile the group at once."""
        desired = max(pool.min_size, min(pool.max_size, desired))
        if desired == pool.desired:
            return
        if desired > pool.desired and pool.reaction.started is not None:
            pool.reaction.seconds.append(self.now - pool.reaction.started)
            pool.reaction.started = None
        pool.actions.append((self.now, desired - pool.desired))
        pool.desired = desired
        while pool.live < desired:
            boot = pool.next_boot_seconds()
            instance = Instance(len(pool.instances), self.now, self.now + boot)
            pool.instances.append(instance)
            pool.booting[instance.id] = instance
            self._push(instance.ready_at, _BOOTED, pool.index, instance.id)
        excess = pool.live - desired
        if excess > 0:
            self._scale_in(pool, excess)

    def _scale_in(self, pool: PoolSim, count: int) -> None:
        booting = sorted(pool.booting.values(), key=lambda i: -i.id)
        idle = sorted((i for i in pool.in_service.values() if i.running == 0), key=lambda i: -i.id)
        busy = sorted((i for i in pool.in_service.values() if i.running > 0), key=lambda i: (i.running, -i.id))
        for instance in (booting + idle + busy)[:count]:
            if instance.state == "booting":
                del pool.booting[instance.id]
                self._terminate(instance)
                continue
            del pool.in_service[instance.id]
            pool.free.discard(instance.id)
            if instance.running == 0:
                self._terminate(instance)
            else:
                instance.state = "draining"
                pool.draining[instance.id] = instance

    def _booted(self, pool: PoolSim, instance_id: int) -> None:
        instance = pool.booting.pop(instance_id, None)
        if instance is None:  # terminated while booting
            return
        instance.state = "in_service"
        pool.in_service[instance.id] = instance
        pool.free.add(instance.id)
        self._dispatch(pool)

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
                    oldest = min(oldest, self.workload.arrival[waiting[0]])
            capacity += len(pool.in_service)
        if self._record_series:
            age = self.now - oldest if oldest != math.inf else 0.0
            desired = sum(p.desired for p in self.pools)
            self.series.append((self.now, visible, capacity, desired, age))


#: Builds one pool's controller; policies that need the scenario or workload close over them.
ControllerFactory = Callable[[PoolSim], Controller]
