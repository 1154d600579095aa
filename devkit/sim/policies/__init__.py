"""The policies `simulate` and `bench` compare (CONTRACTS.md section 5): ours, four peers, a bound."""

from __future__ import annotations

from collections.abc import Callable

from devkit.sim.engine import ControllerFactory, PoolSim
from devkit.sim.policies.fixed import Fixed
from devkit.sim.policies.keda import Keda
from devkit.sim.policies.oracle import Oracle
from devkit.sim.policies.queue_scaler import QueueScaler
from devkit.sim.policies.target_tracking import HIRES_PERIOD, STANDARD_PERIOD, Resolution, TargetTracking
from devkit.sim.scenario import Scenario
from devkit.sim.workload import Workload

OURS = "queue-scaler"
#: What people would use instead; the "better peer" of a scenario is chosen among these.
PEERS = ("target-tracking", "target-tracking-hires", "keda", "fixed")
ORACLE = "oracle"
POLICIES = (OURS, *PEERS, ORACLE)


def controller_factory(policy: str, scenario: Scenario, workload: Workload) -> ControllerFactory:
    """How to build each pool's controller for `policy`."""
    fleet = scenario.fleet
    simple: dict[str, Callable[[PoolSim], Fixed | Keda | QueueScaler]] = {
        OURS: QueueScaler,
        "keda": Keda,
        "fixed": Fixed,
    }
    if policy in simple:
        return simple[policy]
    if policy == "target-tracking":
        standard = Resolution(STANDARD_PERIOD, fleet.cloudwatch_delay_seconds)
        return lambda pool: TargetTracking(pool, standard, scenario.warmup_seconds)
    if policy == "target-tracking-hires":
        hires = Resolution(HIRES_PERIOD, fleet.cloudwatch_hires_delay_seconds)
        return lambda pool: TargetTracking(pool, hires, scenario.warmup_seconds)
    if policy == ORACLE:
        longest_boot = scenario.boot_seconds.max * fleet.slow_boots.factor
        return lambda pool: Oracle(pool, workload, longest_boot)
    raise ValueError(f"unknown policy {policy!r} (one of {', '.join(POLICIES)})")
