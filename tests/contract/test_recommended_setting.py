"""Deployed as benchmarked: the template's generated pool configuration is the recommended policy
(`queue_scaler.scaling.config.RECOMMENDED`) that every built-in benchmark scenario runs, and each pool's
`slots_per_instance` is its `WorkerSlots`, the slots its workers are started with.

Derived, never copied: the deployed configuration is the template instantiated for each samconfig
environment (the SSM parameter's value, validated by the scaler's own model); the benchmarked one
is what the simulator's queue-scaler controller really runs for each built-in pool.
"""

from __future__ import annotations

import re

import pytest

from devkit.sim.engine import PoolSim
from devkit.sim.policies.queue_scaler import QueueScaler
from devkit.sim.scenario import builtin_names, load_scenario
from devkit.stackmodel import Stack
from queue_scaler.scaling.config import RECOMMENDED, policy, recommended
from queue_scaler.scaling.domain.pool import PoolConfig

from . import invariants as inv

POOL_STACKS = {"messaging": "MessagingPool", "video": "VideoPool", "ai": "AiPool"}


def benchmarked() -> dict[str, dict[str, object]]:
    """The policy queue-scaler runs for every pool of every built-in scenario, by scenario/pool."""
    runs = {}
    for name in builtin_names():
        scenario = load_scenario(name)
        for index, spec in enumerate(scenario.pools):
            controller = QueueScaler(PoolSim(index, spec, scenario, []))
            runs[f"{name}/{spec.name}"] = policy(controller.config)
    return runs


def deployed_pools(stack: Stack) -> dict[str, PoolConfig]:
    return {p.name: p for p in inv.scaler_config(stack).pools}


def test_every_built_in_scenario_runs_the_one_recommended_policy() -> None:
    runs = benchmarked()
    assert len(runs) >= 8
    policies = {repr(sorted(p.items())) for p in runs.values()}
    assert len(policies) == 1, "the built-in scenarios run more than one policy"


def test_the_deployed_configuration_is_the_one_the_built_in_scenarios_run(deployed: Stack) -> None:
    (benchmark,) = {repr(sorted(p.items())): p for p in benchmarked().values()}.values()
    for name, pool in deployed_pools(deployed).items():
        assert policy(pool) == benchmark, f"pool {name}: deployed policy differs from the benchmarked one"
        assert pool == recommended(pool), f"pool {name}: not the recommended setting"


def test_the_recommended_fields_are_written_by_the_template(deployed: Stack) -> None:
    # Not left to defaults that happen to agree: the template states every recommended field.
    value = deployed.resources()["PoolConfigParameter"].properties["Value"]
    for field in RECOMMENDED:
        assert len(re.findall(rf'"{field}":', value)) == len(deployed_pools(deployed)), field


def test_each_pools_slots_are_its_worker_slots(deployed: Stack) -> None:
    for name, pool in deployed_pools(deployed).items():
        stack = deployed.child(POOL_STACKS[name])
        assert pool.slots_per_instance == int(stack.parameters["WorkerSlots"]), name


@pytest.mark.parametrize(("pool", "slots"), [("messaging", 4), ("video", 1), ("ai", 1)])
def test_the_default_worker_slots_are_those_of_the_stage_scenarios(pool: str, slots: int) -> None:
    stage = {spec.name: spec for spec in load_scenario("stage-500").pools}
    assert stage[pool].slots_per_instance == slots
