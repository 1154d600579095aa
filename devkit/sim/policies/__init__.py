"""The policies `simulate` and `bench` compare (CONTRACTS.md section 5): ours, the peers, two bounds.

Each module registers its policies in `registry` when imported; the imports below are the one list
of policy modules, in the order of the reports' rows. Every name list here is derived from the registry.
"""

from __future__ import annotations

# isort: off
# The policy modules, in the order of the reports' rows within a role; importing one registers it.
from devkit.sim.policies import queue_scaler  # noqa: F401
from devkit.sim.policies import target_tracking  # noqa: F401
from devkit.sim.policies import keda  # noqa: F401
from devkit.sim.policies import fixed  # noqa: F401
from devkit.sim.policies import reactive_oracle  # noqa: F401
from devkit.sim.policies import oracle  # noqa: F401

# isort: on
from devkit.sim.engine import ControllerFactory
from devkit.sim.policies.registry import Role, get, names, the
from devkit.sim.scenario import Scenario
from devkit.sim.workload import Workload

OURS = the(Role.OURS).name
#: What people would use instead; the "better peer" of a scenario is chosen among the dynamic ones.
PEERS = names(Role.DYNAMIC_PEER, Role.STATIC_PEER)
DYNAMIC_PEERS = names(Role.DYNAMIC_PEER)
REACTIVE_BOUND = the(Role.REACTIVE_BOUND).name
ORACLE = the(Role.ORACLE).name
POLICIES = names()


def controller_factory(policy: str, scenario: Scenario, workload: Workload) -> ControllerFactory:
    """How to build each pool's controller for `policy` (any registered policy, a test's toy too)."""
    return get(policy).build(scenario, workload)
