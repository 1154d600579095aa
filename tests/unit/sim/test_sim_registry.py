"""The simulator's policy registry: the one list every other policy list derives from, and the
"add a peer" recipe (ARCHITECTURE.md) kept true by a toy peer registered here only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devkit.sim import policies
from devkit.sim.engine import Controller
from devkit.sim.policies import registry
from devkit.sim.policies.registry import Role
from devkit.sim.runner import simulate
from devkit.sim.scenario import Scenario


class _AlwaysTwo(Controller):
    """A toy peer: two instances from the start, never changed."""

    def initial_size(self) -> int:
        return 2

    def rest_size(self) -> int:
        return 2

    def on_loop(self, index: int, now: float) -> int | None:
        return None


@pytest.fixture
def toy() -> Iterator[str]:
    registry.register("toy-two", lambda scenario, workload: _AlwaysTwo, Role.DYNAMIC_PEER, "this test")
    yield "toy-two"
    registry.unregister("toy-two")


def _tiny() -> Scenario:
    arrivals = {"burst": {"at": 0, "count": 3}}
    queue = {"name": "q", "target_per_instance": 5, "arrivals": arrivals, "service_seconds": {"fixed": 30}}
    pool = {"name": "p", "drain_seconds": 60, "min_size": 0, "max_size": 4, "queues": [queue]}
    return Scenario.model_validate(
        {"name": "tiny", "duration_seconds": 600, "seed": 1, "boot_seconds": {"min": 30, "max": 30}, "pools": [pool]}
    )


def test_a_toy_peer_registered_in_a_test_runs_through_the_runner(toy: str) -> None:
    assert toy in registry.names(Role.DYNAMIC_PEER)
    result = simulate(_tiny(), toy)
    assert result.policy == toy
    assert (result.metrics["jobs"], result.metrics["completed"], result.metrics["lost"]) == (3, 3, 0)
    # Two instances in service from the start, for the whole run: the toy's plan, not another policy's.
    assert result.metrics["instance_seconds"] == pytest.approx(2 * 600, rel=0.05)


def test_the_toy_peer_is_gone_after_its_test() -> None:
    assert "toy-two" not in registry.names()
    with pytest.raises(ValueError, match="unknown policy 'toy-two'"):
        simulate(_tiny(), "toy-two")


def test_every_list_derives_from_the_registry_in_report_order() -> None:
    names = policies.POLICIES
    assert names[0] == policies.OURS == "queue-scaler" and names[-1] == policies.ORACLE == "oracle"
    assert names[1:-2] == policies.PEERS
    assert names[-2] == policies.REACTIVE_BOUND == "reactive-oracle"  # the bounds after the peers
    assert {"target-tracking", "target-tracking-hires", "keda"} <= set(policies.DYNAMIC_PEERS)
    assert policies.PEERS[: len(policies.DYNAMIC_PEERS)] == policies.DYNAMIC_PEERS  # dynamic peers first
    assert "fixed" in policies.PEERS and "fixed" not in policies.DYNAMIC_PEERS
    assert all(registry.get(name).citation for name in names)


@pytest.mark.parametrize("role", [Role.OURS, Role.REACTIVE_BOUND, Role.ORACLE])
def test_a_second_ours_or_bound_is_refused(role: Role) -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register("another", lambda scenario, workload: _AlwaysTwo, role, "x")
    assert "another" not in registry.names()


def test_a_name_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("keda", lambda scenario, workload: _AlwaysTwo, Role.DYNAMIC_PEER, "x")
