"""`reactive-oracle`: the best a policy that cannot see the future can do, the bound B_r of the goal.

It is not deployable: it reads the simulator's exact state, where a real scaler reads SQS's
approximate counts through a loop. What it knows, and what it does:
- every arrival the instant it happens (the engine calls `on_arrival` on each of the pool's
  arrivals), and the exact count of jobs waiting and running in the pool;
- nothing of the future: no arrival before it happens, no boot time before the launch;
- it launches at once: on an arrival that leaves a job without a slot, the desired capacity becomes
  the instances that give every waiting and running job its own slot, `ceil((waiting + running) /
  slots)` within max_size. Each launch still boots as the simulator models it (the fleet's boot
  time, its slow tail, its failed launches): that time is what no reactive policy can save;
- scale-down waits for a sustained drop: every `TICK_SECONDS` it holds the most instances that rule
  needed over the last `hold` seconds (a stabilization window, as KEDA's and target tracking's
  cooldowns are), then lets the group take the idle instances (workers protect busy ones);
- the exact service times of queued jobs buy nothing more under this rule: a job gets a slot as soon
  as one can exist, whatever its length, and a slot kept for a job that will be done by the time a
  new instance boots is the hold's trade of instance-seconds against wait, which the sweep explores.

The hold is swept over `HOLDS_SECONDS` by the benchmark (registered as the policy's sweep): B_r is
the lowest wait p95 among those runs at instance-seconds no higher than P's. The registered policy
itself (`simulate --policy reactive-oracle`) runs the first hold.
"""

from __future__ import annotations

import math
from collections import deque

from devkit.sim.engine import Controller, ControllerFactory, PoolSim
from devkit.sim.policies.registry import Builder, Role, register
from devkit.sim.scenario import Scenario
from devkit.sim.workload import Workload

#: How often the scale-down side looks: the cadence of the scaler's own ticks.
TICK_SECONDS = 10.0
#: The scale-down holds the benchmark sweeps: none, one and two minutes, KEDA's 300 s cooldown (and the
#: HPA's scale-down stabilization), ten minutes (the Cluster Autoscaler's scale-down-unneeded-time).
#: Measured on steady-poisson, the longer the hold the lower the wait and the higher the cost (hold 0:
#: 79 s p95 at 153 k instance-s; 600 s: 12 s at 178 k), so B_r is the hold nearest P's cost from below.
HOLDS_SECONDS = (0.0, 60.0, 120.0, 300.0, 600.0)


def jobs_need(pool: PoolSim) -> int:
    """Instances that give every waiting and running job of the pool its own slot, within max_size."""
    jobs = sum(len(q) for q in pool.queues) + sum(pool.in_flight)
    return min(pool.max_size, math.ceil(jobs / pool.slots))


class ReactiveOracle(Controller):
    sees_arrivals = True

    def __init__(self, pool: PoolSim, hold: float) -> None:
        super().__init__(pool)
        self.hold = hold
        self.loops = [(TICK_SECONDS, pool.first_run(TICK_SECONDS))]
        #: (time, need) of the last `hold` seconds, oldest first; the window's maximum is held.
        self.window: deque[tuple[float, int]] = deque()

    def _remember(self, now: float, need: int) -> int:
        """Record `need` at `now` and return the most needed within the hold."""
        window = self.window
        while window and window[-1][1] <= need:
            window.pop()  # a smaller need before a larger one never sets the window's maximum again
        window.append((now, need))
        while window[0][0] < now - self.hold - 1e-9:
            window.popleft()
        return max(self.pool.min_size, window[0][1])

    def on_arrival(self, now: float) -> int | None:
        need = jobs_need(self.pool)
        held = self._remember(now, need)
        return held if held > self.pool.desired else None

    def on_loop(self, index: int, now: float) -> int | None:
        return self._remember(now, jobs_need(self.pool))


def with_hold(hold: float) -> Builder:
    """The reactive oracle's builder with scale-down hold `hold` seconds."""

    def build(scenario: Scenario, workload: Workload) -> ControllerFactory:
        return lambda pool: ReactiveOracle(pool, hold)

    return build


register(
    "reactive-oracle",
    with_hold(HOLDS_SECONDS[0]),
    Role.REACTIVE_BOUND,
    "a perfect reactive scaler (exact counts, instant arrivals, no future), the bound B_r; not deployable",
    sweep=tuple((f"hold {hold:g} s", with_hold(hold)) for hold in HOLDS_SECONDS),
)
