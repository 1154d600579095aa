"""The policies `simulate` and `bench` compare (CONTRACTS.md section 5): ours, three peers, a bound."""

from __future__ import annotations

from collections.abc import Callable

from devkit.sim.engine import ControllerFactory, PoolSim
from devkit.sim.policies.fixed import Fixed
from devkit.sim.policies.keda import Keda
from devkit.sim.policies.oracle import Oracle
from devkit.sim.policies.queue_scaler import QueueScaler
from devkit.sim.policies.target_tracking import TargetTracking
from devkit.sim.scenario import Scenario
from devkit.sim.workload import Workload

OURS = "queue-scaler"
#: What people would use instead; the "better peer" of a scenario is chosen among these.
PEERS = ("target-tracking", "keda", "fixed")
ORACLE = "oracle"
POLICIES = (OURS, *PEERS, ORACLE)


def controller_factory(policy: str, scenario: Scenario, workload: Workload) -> ControllerFactory:
    """How to build each pool's controller for `policy`."""
    simple: dict[str, Callable[[PoolSim], Fixed | Keda | QueueScaler | TargetTracking]] = {
        OURS: QueueScaler,
        "target-tracking": TargetTracking,
        "keda": Keda,
        "fixed": Fixed,
    }
    if policy in simple:
        return simple[policy]
    if policy == ORACLE:
        return lambda pool: Oracle(pool, workload, scenario.boot_seconds.max)
    raise ValueError(f"unknown policy {policy!r} (one of {', '.join(POLICIES)})")
