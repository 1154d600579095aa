"""`oracle`: a clairvoyant lower bound on wait, not a deployable policy.

It knows every arrival and service time in advance. It first plans the pool as if all `max_size`
instances were always in service (the least wait any policy within max_size can give: jobs start in
priority, first-come order on the first free slot), and counts the instances that plan keeps busy
at each moment (busy slots / slots per instance, rounded up). It then holds, at every tick, the
most instances the plan needs over the next boot time plus one tick, so that each instance is
launched at least one (longest) boot ahead of the work that needs it, and the fleet at time 0 is
already in service. Its instance-seconds are a reference, not a minimum: it buys wait first.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

from devkit.sim.engine import Controller, ControllerFactory, PoolSim
from devkit.sim.policies.registry import Role, register
from devkit.sim.scenario import Scenario
from devkit.sim.workload import Workload

TICK_SECONDS = 10.0


def planned_busy(pool: PoolSim, workload: Workload) -> list[tuple[float, int]]:
    """(time, +1/-1) changes of busy slots when max_size instances serve the pool from time 0."""
    jobs = [j for j in range(len(workload)) if workload.pool[j] == pool.index]
    slots = pool.max_size * pool.slots
    queues: list[deque[int]] = [deque() for _ in pool.queues]
    ends: list[float] = []
    changes: list[tuple[float, int]] = []
    free = slots

    def start(job: int, at: float) -> None:
        end = at + workload.service[job]
        heapq.heappush(ends, end)
        changes.append((at, 1))
        changes.append((end, -1))

    for job in jobs:
        at = workload.arrival[job]
        while ends and ends[0] <= at:
            done = heapq.heappop(ends)
            free += 1
            waiting = next((q for q in queues if q), None)
            if waiting is not None:
                free -= 1
                start(waiting.popleft(), done)
        queues[workload.queue[job]].append(job)
        if free:
            free -= 1
            waiting = next(q for q in queues if q)
            start(waiting.popleft(), at)
    while ends:
        done = heapq.heappop(ends)
        waiting = next((q for q in queues if q), None)
        if waiting is not None:
            start(waiting.popleft(), done)
    changes.sort()
    return changes


class Oracle(Controller):
    def __init__(self, pool: PoolSim, workload: Workload, boot_max: float) -> None:
        super().__init__(pool)
        first = pool.first_run(TICK_SECONDS)
        self.loops = [(TICK_SECONDS, first)]
        self.first = first
        self.lead = boot_max + TICK_SECONDS
        self.bins = self._bin_maxima(planned_busy(pool, workload), first)

    def _bin_maxima(self, changes: list[tuple[float, int]], first: float) -> list[int]:
        """Most instances the plan keeps busy within each tick interval `[first + k*T, first + (k+1)*T)`."""
        bins: list[int] = []
        busy = 0
        index = 0
        slots = self.pool.slots
        edge = first
        while index < len(changes) or busy:
            peak = math.ceil(busy / slots)
            edge += TICK_SECONDS
            while index < len(changes) and changes[index][0] < edge:
                busy += changes[index][1]
                peak = max(peak, math.ceil(busy / slots))
                index += 1
            bins.append(peak)
        return bins

    def _wanted(self, now: float) -> int:
        """The most instances the plan needs from `now` until one boot (and a tick) ahead."""
        k = max(0, math.floor((now - self.first) / TICK_SECONDS + 1e-9))
        span = self.bins[k : k + math.ceil(self.lead / TICK_SECONDS) + 1]
        return max([self.pool.min_size, *span])

    def initial_size(self) -> int:
        # Clairvoyance includes time before 0: whatever the first boot-ahead window needs is up.
        return max(self._wanted(0.0), self._wanted(self.first))

    def on_loop(self, index: int, now: float) -> int | None:
        return self._wanted(now)


def _build(scenario: Scenario, workload: Workload) -> ControllerFactory:
    longest_boot = scenario.boot_seconds.max * scenario.fleet.slow_boots.factor
    return lambda pool: Oracle(pool, workload, longest_boot)


register("oracle", _build, Role.ORACLE, "a clairvoyant lower bound on wait (docs/benchmark.md), not deployable")
