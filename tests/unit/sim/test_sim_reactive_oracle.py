"""The reactive oracle (the bound B_r) pinned on small hand-computed scenarios: it launches the instant
a job has no slot, knows nothing before an arrival, pays every boot, and scales down only after its
hold (fast, no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.sim.engine import Simulation
from devkit.sim.metrics import summarize
from devkit.sim.policies import REACTIVE_BOUND, controller_factory
from devkit.sim.policies import reactive_oracle as model
from devkit.sim.policies.registry import Role, get
from devkit.sim.scenario import Scenario
from devkit.sim.workload import build_workload

BOOT = 60.0
SERVICE = 1000.0


def scenario(*arrivals: Any, slots: int = 1, min_size: int = 0, max_size: int = 10) -> Scenario:
    """One pool with a queue per arrival process (highest priority first), jobs of exactly SERVICE
    seconds, every launch booting in exactly BOOT seconds."""
    return Scenario.model_validate(
        {
            "name": "t",
            "duration_seconds": 600,
            "seed": 3,
            "boot_seconds": {"min": BOOT, "max": BOOT},
            "fleet": {"launch_failure_rate": 0, "slow_boots": {"fraction": 0}, "sqs_relative_error": 0},
            "pools": [
                {
                    "name": "messaging",
                    "min_size": min_size,
                    "max_size": max_size,
                    "slots_per_instance": slots,
                    "queues": [
                        {
                            "name": f"q{index}",
                            "target_per_instance": slots,
                            "arrivals": process,
                            "service_seconds": {"fixed": SERVICE},
                        }
                        for index, process in enumerate(arrivals)
                    ],
                }
            ],
        }
    )


def run(s: Scenario, hold: float | None = None) -> Simulation:
    workload = build_workload(s)
    factory = controller_factory(REACTIVE_BOUND, s, workload) if hold is None else model.with_hold(hold)(s, workload)
    return Simulation(s, workload, factory).run()


def test_it_is_the_one_reactive_bound_and_sweeps_its_documented_holds() -> None:
    policy = get(REACTIVE_BOUND)
    assert policy.role is Role.REACTIVE_BOUND
    assert model.HOLDS_SECONDS == (0.0, 60.0, 120.0, 300.0, 600.0)
    assert [label for label, _ in policy.sweep] == ["hold 0 s", "hold 60 s", "hold 120 s", "hold 300 s", "hold 600 s"]


def test_each_job_without_a_slot_launches_an_instance_the_instant_it_arrives() -> None:
    # Three jobs at t=100 on an empty pool: desired 1, 2, 3 at t=100 exactly; each job starts when
    # its instance is in service, one boot later.
    sim = run(scenario({"burst": {"at": 100, "count": 3}}))
    pool = sim.pools[0]
    assert pool.actions[:3] == [(100.0, 1), (100.0, 1), (100.0, 1)]
    assert [i.launched for i in pool.instances] == [100.0] * 3
    assert sim.start == [100.0 + BOOT] * 3
    assert summarize(sim)["wait_p95"] == BOOT


def test_it_knows_nothing_before_an_arrival() -> None:
    # No instance before the first job (the clairvoyant oracle has one in service ahead of it).
    sim = run(scenario({"burst": {"at": 100, "count": 1}}))
    pool = sim.pools[0]
    assert pool.instances[0].launched == 100.0
    assert all(t >= 100.0 for t, _ in pool.actions)


def test_a_free_slot_takes_the_job_and_no_instance_is_launched() -> None:
    # Two slots per instance, one instance at min_size: two jobs fit, the third launches a second.
    sim = run(scenario({"burst": {"at": 100, "count": 3}}, slots=2, min_size=1))
    pool = sim.pools[0]
    assert pool.actions[0] == (100.0, 1)
    assert len(pool.instances) == 2
    assert sorted(sim.start) == [100.0, 100.0, 100.0 + BOOT]


def test_running_jobs_count_a_job_arriving_while_every_slot_is_busy_launches() -> None:
    # One job at 0 and one at 300 (each runs 1000 s): the second needs a second instance at 300.
    sim = run(scenario({"burst": {"at": 0, "count": 1}}, {"burst": {"at": 300, "count": 1}}))
    pool = sim.pools[0]
    assert [t for t, change in pool.actions if change > 0] == [0.0, 300.0]
    assert sim.start == [BOOT, 300.0 + BOOT]


def test_max_size_caps_the_launches() -> None:
    sim = run(scenario({"burst": {"at": 100, "count": 5}}, max_size=2))
    assert max(i.id for i in sim.pools[0].instances) == 1
    # Two start at 160, the other three as those end (160 + 1000, then 1160 + 1000).
    assert sorted(sim.start) == [160.0, 160.0, 1160.0, 1160.0, 2160.0]


@pytest.mark.parametrize("hold", model.HOLDS_SECONDS)
def test_scale_down_waits_for_the_hold_after_the_work_ends(hold: float) -> None:
    # Three jobs at 100 end at 1160; the need drops to 0 at the first tick after 1160, and the
    # desired capacity follows `hold` seconds later, at the first tick past it.
    sim = run(scenario({"burst": {"at": 100, "count": 3}}), hold)
    downs = [t for t, change in sim.pools[0].actions if change < 0]
    assert len(downs) == 1
    assert 1160.0 + hold < downs[0] <= 1160.0 + hold + model.TICK_SECONDS + 1e-6


def test_a_longer_hold_costs_more_instance_seconds() -> None:
    costs = [summarize(run(scenario({"burst": {"at": 100, "count": 3}}), h))["instance_seconds"] for h in (0, 600)]
    assert costs[1] - costs[0] == pytest.approx(3 * 600.0, abs=3 * model.TICK_SECONDS)
