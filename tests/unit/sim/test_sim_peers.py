"""Each simulated policy pinned to its documented behaviour, on small scenarios (fast, no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.sim.engine import PoolSim, Simulation
from devkit.sim.policies import POLICIES, controller_factory, registry
from devkit.sim.policies import keda as keda_model
from devkit.sim.policies import target_tracking as tt_model
from devkit.sim.runner import simulate
from devkit.sim.scenario import Scenario
from devkit.sim.workload import build_workload


def scenario(arrivals: Any, *, min_size: int = 0, max_size: int = 20, target: float = 20, **more: Any) -> Scenario:
    pool = {
        "name": "p",
        "drain_seconds": 60,
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


#: Each target tracking policy: its metric period and the scenario field of its CloudWatch delay.
RESOLUTIONS = {
    "target-tracking": (tt_model.STANDARD_PERIOD, "cloudwatch_delay_seconds"),
    "target-tracking-hires": (tt_model.HIRES_PERIOD, "cloudwatch_hires_delay_seconds"),
}


def test_target_tracking_resolutions_are_aws_metric_periods() -> None:
    # TargetTrackingMetricStat.Period: "Accepted values are 10, 30, and 60"; 10 s is the lowest.
    assert tt_model.STANDARD_PERIOD == 60
    assert tt_model.HIRES_PERIOD == 10
    # The alarms target tracking creates: 3 datapoints above the target, 15 below 90% of it.
    assert (tt_model.SCALE_OUT_DATAPOINTS, tt_model.SCALE_IN_DATAPOINTS, tt_model.SCALE_IN_THRESHOLD) == (3, 15, 0.9)


@pytest.mark.parametrize("policy", sorted(RESOLUTIONS))
def test_target_tracking_does_not_scale_out_before_three_breaching_datapoints(policy: str) -> None:
    period, delay_field = RESOLUTIONS[policy]
    # One instance in service from the start, so every period has a datapoint.
    s = scenario({"burst": {"at": BURST_AT, "count": 200}}, min_size=1)
    delay = getattr(s.fleet, delay_field)
    sim = run(s, policy)
    pool = sim.pools[0]
    first_up = next(t for t, change in pool.actions if change > 0)
    # The first sample at or after the burst, plus two more periods, plus the CloudWatch delay.
    first_breaching_sample = next(
        pool.first_run(period) + k * period for k in range(1000) if pool.first_run(period) + k * period >= BURST_AT
    )
    third_available = first_breaching_sample + 2 * period + delay
    assert first_up >= third_available - 1e-6
    assert first_up < third_available + period


@pytest.mark.parametrize("policy", sorted(RESOLUTIONS))
def test_target_tracking_scales_in_only_after_fifteen_low_datapoints(policy: str) -> None:
    period, delay_field = RESOLUTIONS[policy]
    s = scenario({"burst": {"at": 60, "count": 40}}, min_size=1)
    sim = run(s, policy)
    pool = sim.pools[0]
    last_job_end = max(sim.end)
    downs = [t for t, change in pool.actions if change < 0]
    assert downs, "it scales back in once the work is done"
    # The metric drops below 90% of target at the latest when the last job ends; 15 datapoints later.
    assert all(t >= 60 + (tt_model.SCALE_IN_DATAPOINTS - 1) * period for t in downs)
    delay = getattr(s.fleet, delay_field)
    slowest = (tt_model.SCALE_IN_DATAPOINTS + 2) * period + delay + s.warmup_seconds
    assert downs[0] <= last_job_end + slowest


def test_the_warmup_is_the_groups_default_instance_warmup_set_to_the_boot_time() -> None:
    # "We strongly recommend that you enable and configure the default instance warmup": set to the
    # time an instance takes to be ready, not the 300 s default cooldown an unset warm-up falls back to.
    s = scenario({"burst": {"at": 60, "count": 40}})
    assert s.warmup_seconds == s.boot_seconds.max == 120
    given = scenario({"burst": {"at": 60, "count": 40}}, fleet={"default_instance_warmup_seconds": 30})
    assert given.warmup_seconds == 30
    controller = controller_factory("target-tracking", s, build_workload(s))(PoolSim(0, s.pools[0], s, [60.0]))
    assert isinstance(controller, tt_model.TargetTracking)
    assert controller.warmup == 120


@pytest.mark.parametrize("policy", sorted(RESOLUTIONS))
def test_target_tracking_never_scales_in_while_an_instance_warms_up(policy: str) -> None:
    s = scenario(
        {"burst": {"at": 60, "count": 100, "over_seconds": 30}}, fleet={"default_instance_warmup_seconds": 900}
    )
    sim = run(s, policy)
    pool = sim.pools[0]
    for at, change in pool.actions:
        if change < 0:
            entered = [i.ready_at for i in pool.instances if i.ready_at <= at and not i.fails]
            assert all(ready + 900 <= at + 1e-6 for ready in entered), f"scale-in at {at} during a warm-up"


def test_target_tracking_wakes_a_pool_at_zero_only_by_its_step_policy() -> None:
    s = scenario({"burst": {"at": BURST_AT, "count": 200}})
    sim = run(s, "target-tracking")
    first_time, first_change = sim.pools[0].actions[0]
    # 200 visible messages (within SQS's 5 %) over a target of 20: 10 units; the step sets 8, the
    # largest power of two at most 10 (tests/unit/sim/test_sim_target_tracking.py pins the steps).
    assert first_change == 8
    assert first_time >= BURST_AT + s.fleet.cloudwatch_delay_seconds - tt_model.STANDARD_PERIOD


@pytest.mark.parametrize(("slots", "queue_length"), [(1, 1), (4, 4), (8, 8)])
def test_keda_queue_length_is_the_messages_one_replica_handles_at_once(slots: int, queue_length: int) -> None:
    # keda.sh aws-sqs: "if one pod can handle 10 messages, set the queue length target to 10".
    s = scenario({"burst": {"at": 60, "count": 10}}, pool={"slots_per_instance": slots})
    pool = PoolSim(0, s.pools[0], s, [60.0])
    assert keda_model.queue_length(pool) == queue_length
    assert keda_model.Keda(pool).queue_length == queue_length


def test_keda_replicas_follow_the_docs_example() -> None:
    # "If the actual messages in the SQS Queue is 30, the scaler scales to 3 pods" (queueLength 10).
    s = scenario({"burst": {"at": 60, "count": 10}}, pool={"slots_per_instance": 10})
    keda = keda_model.Keda(PoolSim(0, s.pools[0], s, [60.0]))
    keda.pool.desired = 1
    assert keda.hpa_recommendation([30]) == 3
    # Several triggers (one per queue): the HPA takes the largest, never the sum.
    assert keda.hpa_recommendation([30, 20]) == 3


def test_keda_counts_in_flight_messages_as_scale_on_in_flight_does() -> None:
    s = scenario({"burst": {"at": 60, "count": 10}}, fleet={"sqs_relative_error": 0})
    keda = keda_model.Keda(PoolSim(0, s.pools[0], s, [60.0]))
    keda.pool.queues[0].extend([1, 2, 3])
    keda.pool.in_flight[0] = 4
    assert keda.messages(0) == 7


def test_keda_activates_one_replica_within_a_polling_interval() -> None:
    sim = run(scenario({"burst": {"at": BURST_AT, "count": 200}}), "keda")
    first_time, first_change = sim.pools[0].actions[0]
    assert first_change == 1
    assert BURST_AT <= first_time <= BURST_AT + keda_model.POLLING_INTERVAL


def test_keda_then_adds_at_most_max_of_4_and_100_percent_per_sync() -> None:
    sim = run(scenario({"burst": {"at": BURST_AT, "count": 2000}}, max_size=200), "keda")
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
def test_no_job_is_lost_and_scale_in_never_cuts_a_protected_job(policy: str) -> None:
    s = scenario({"burst": {"at": 60, "count": 120, "over_seconds": 10}})
    sim = run(s, policy)
    assert sim.completed == len(sim.workload)
    assert sum(sim.restarts) == 0, "workers hold scale-in protection while they run a job"
    for instance in sim.pools[0].instances:
        if instance.terminated is not None:
            assert instance.running == 0


def recipe_scenario(target: float) -> Scenario:
    """A burst on one queue of the template's messaging pool (wait objective 120 s) whose jobs take
    60 s on a 1-slot instance: the SQS guide's target is 120 / 60 = 2 visible messages per instance,
    the pool's is `target` on visible + in-flight messages."""
    queue = {
        "name": "q",
        "target_per_instance": target,
        "arrivals": {"burst": {"at": BURST_AT, "count": 120, "over_seconds": 300}},
        "service_seconds": {"fixed": 60},
    }
    return scenario(
        {}, max_size=40, pool={"name": "messaging", "queues": [queue], "scaler": {"seconds_per_message": 60}}
    )


@pytest.mark.parametrize(
    ("target", "winner"),
    [
        # The pool's target, 20 messages per instance, is ten times the guide's: the guide scales further.
        (20, tt_model.Recipe.SQS_GUIDE),
        # The pool's target, 1 on visible + in-flight, asks for more than the guide's 2 on visible only.
        (1, tt_model.Recipe.POOL_TARGET),
    ],
)
@pytest.mark.parametrize("policy", sorted(RESOLUTIONS))
def test_target_tracking_counts_as_its_better_recipe(policy: str, target: float, winner: tt_model.Recipe) -> None:
    s = recipe_scenario(target)
    assert s.pools[0].wait_objective(s.pools[0].queues[0]) == 120
    result = simulate(s, policy)
    variants = result.metrics["variants"]
    assert set(variants) == {r.value for r in tt_model.Recipe}
    loser = next(r.value for r in tt_model.Recipe if r is not winner)
    # The winner's wait p95 is strictly lower (not a tie broken on cost), and its run is the one reported.
    assert variants[winner.value]["wait_p95"] < variants[loser]["wait_p95"]
    assert result.metrics["variant"] == winner.value
    assert result.metrics["wait_p95"] == variants[winner.value]["wait_p95"]
    assert result.metrics["instance_seconds"] == variants[winner.value]["instance_seconds"]


def test_a_policy_with_variants_needs_a_chooser() -> None:
    build = registry.get("keda").build
    with pytest.raises(ValueError, match="variants and choose come together"):
        registry.register("toy", build, registry.Role.DYNAMIC_PEER, "toy", variants={"a": build})
    assert "toy" not in POLICIES
