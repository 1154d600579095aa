"""Each simulated policy pinned to its documented behaviour, on small scenarios (fast, no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.sim.engine import Simulation
from devkit.sim.policies import POLICIES, controller_factory
from devkit.sim.policies import keda as keda_model
from devkit.sim.policies import target_tracking as tt_model
from devkit.sim.runner import simulate
from devkit.sim.scenario import Scenario
from devkit.sim.workload import build_workload


def scenario(arrivals: Any, *, min_size: int = 0, max_size: int = 20, target: float = 20, **more: Any) -> Scenario:
    pool = {
        "name": "p",
        "min_size": min_size,
        "max_size": max_size,
        "fixed_size": 5,
        "queues": [
            {"name": "q", "target_per_instance": target, "arrivals": arrivals, "service_seconds": {"fixed": 60}}
        ],
    } | more.pop("pool", {})
    return Scenario.model_validate(
        {"name": "t", "duration_seconds": 1800, "seed": 1, "boot_seconds": {"min": 60, "max": 120}, "pools": [pool]}
        | more
    )


def run(s: Scenario, policy: str) -> Simulation:
    workload = build_workload(s)
    return Simulation(s, workload, controller_factory(policy, s, workload)).run()


BURST_AT = 300.0


def test_target_tracking_does_not_scale_out_before_three_breaching_minutes() -> None:
    # One instance in service from the start, so every minute has a datapoint.
    sim = run(scenario({"burst": {"at": BURST_AT, "count": 200}}, min_size=1), "target-tracking")
    pool = sim.pools[0]
    first_up = next(t for t, change in pool.actions if change > 0)
    # The first sample at or after the burst, plus two more minutes, plus publication.
    first_breaching_sample = next(
        pool.first_run(tt_model.PERIOD) + k * tt_model.PERIOD
        for k in range(100)
        if pool.first_run(tt_model.PERIOD) + k * tt_model.PERIOD >= BURST_AT
    )
    third_available = first_breaching_sample + 2 * tt_model.PERIOD + tt_model.PUBLICATION_DELAY
    assert first_up >= third_available - 1e-6
    assert first_up < third_available + tt_model.PERIOD


def test_target_tracking_scales_in_only_after_fifteen_low_minutes() -> None:
    sim = run(scenario({"burst": {"at": 60, "count": 40}}, min_size=1), "target-tracking")
    pool = sim.pools[0]
    last_job_end = max(sim.end)
    downs = [t for t, change in pool.actions if change < 0]
    assert downs, "it scales back in once the work is done"
    # The metric drops below 90% of target at the latest when the last job ends; 15 datapoints later.
    assert all(t >= 60 + (tt_model.SCALE_IN_DATAPOINTS - 1) * tt_model.PERIOD for t in downs)
    assert downs[0] <= last_job_end + (tt_model.SCALE_IN_DATAPOINTS + 2) * tt_model.PERIOD + tt_model.INSTANCE_WARMUP


def test_target_tracking_does_not_scale_out_from_zero_except_by_its_wake_up_step() -> None:
    sim = run(scenario({"burst": {"at": BURST_AT, "count": 200}}), "target-tracking")
    first_time, first_change = sim.pools[0].actions[0]
    assert first_change == 1
    assert first_time >= BURST_AT + tt_model.PUBLICATION_DELAY - tt_model.PERIOD


def test_keda_activates_one_replica_within_a_polling_interval() -> None:
    sim = run(scenario({"burst": {"at": BURST_AT, "count": 200}}), "keda")
    first_time, first_change = sim.pools[0].actions[0]
    assert first_change == 1
    assert BURST_AT <= first_time <= BURST_AT + keda_model.POLLING_INTERVAL


def test_keda_then_adds_at_most_max_of_4_and_100_percent_per_sync() -> None:
    sim = run(scenario({"burst": {"at": BURST_AT, "count": 2000}}, max_size=200, target=5), "keda")
    size = 0
    sizes: list[tuple[float, int]] = []
    for at, change in sim.pools[0].actions:
        size += change
        sizes.append((at, size))
    ups = [(t, s) for t, s in sizes if s > 1]
    assert ups, "the HPA scales the pool out after activation"
    previous = 1
    for at, now_size in sizes[1:]:
        if now_size > previous:
            assert now_size <= max(previous + 4, 2 * previous), f"at {at}: {previous} -> {now_size}"
        previous = now_size
    assert max(s for _, s in sizes) > 20, "the doubling continues past the Instances policy"


def test_keda_scales_to_zero_after_its_cooldown() -> None:
    sim = run(scenario({"burst": {"at": 60, "count": 10}}), "keda")
    last_change_time, _ = sim.pools[0].actions[-1]
    assert sim.pools[0].desired == 0
    assert last_change_time >= max(sim.end) + keda_model.COOLDOWN_PERIOD - keda_model.POLLING_INTERVAL


def test_fixed_holds_its_size_and_never_acts() -> None:
    sim = run(scenario({"burst": {"at": 60, "count": 100}}), "fixed")
    assert sim.pools[0].actions == []
    assert len(sim.pools[0].instances) == 5


@pytest.mark.parametrize(
    "arrivals",
    [
        {"burst": {"at": 60, "count": 300, "over_seconds": 30}},
        [{"poisson": {"per_second": 0.1}}, {"burst": {"at": 900, "count": 150, "over_seconds": 60}}],
        {"poisson": {"per_second": 0.3}},
    ],
    ids=["burst", "poisson-and-burst", "steady"],
)
def test_the_oracle_is_never_beaten_on_wait(arrivals: Any) -> None:
    s = scenario(arrivals)
    workload = build_workload(s)
    results = {p: simulate(s, p, workload, record_series=False).metrics for p in POLICIES}
    for policy, metrics in results.items():
        for key in ("wait_p50", "wait_p95", "wait_max", "wait_mean"):
            assert results["oracle"][key] <= metrics[key] + 1e-6, f"{policy} beats the oracle on {key}"


def test_queue_scaler_reacts_within_one_tick() -> None:
    metrics = simulate(scenario({"burst": {"at": BURST_AT, "count": 200}}), "queue-scaler").metrics
    assert metrics["reaction_seconds"] is not None
    assert metrics["reaction_seconds"] <= 10


@pytest.mark.parametrize("policy", POLICIES)
def test_the_same_scenario_and_seed_give_the_same_metrics(policy: str) -> None:
    s = scenario([{"poisson": {"per_second": 0.2}}, {"burst": {"at": 600, "count": 100, "over_seconds": 20}}])
    assert simulate(s, policy).metrics == simulate(s, policy).metrics


@pytest.mark.parametrize("policy", POLICIES)
def test_no_job_is_lost_and_no_busy_instance_is_terminated_before_its_work_ends(policy: str) -> None:
    s = scenario({"burst": {"at": 60, "count": 120, "over_seconds": 10}})
    sim = run(s, policy)
    assert sim.completed == len(sim.workload)
    for instance in sim.pools[0].instances:
        if instance.terminated is not None:
            assert instance.running == 0
