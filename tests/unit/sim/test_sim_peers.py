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
    assert keda_model.Keda(pool, keda_model.PodTermination.default(60)).queue_length == queue_length


def test_keda_replicas_follow_the_docs_example() -> None:
    # "If the actual messages in the SQS Queue is 30, the scaler scales to 3 pods" (queueLength 10).
    s = scenario({"burst": {"at": 60, "count": 10}}, pool={"slots_per_instance": 10})
    keda = keda_model.Keda(PoolSim(0, s.pools[0], s, [60.0]), keda_model.PodTermination.default(60))
    keda.replicas = 1
    assert keda.hpa_recommendation([30]) == 3
    # Several triggers (one per queue): the HPA takes the largest, never the sum.
    assert keda.hpa_recommendation([30, 20]) == 3


def test_keda_counts_in_flight_messages_as_scale_on_in_flight_does() -> None:
    s = scenario({"burst": {"at": 60, "count": 10}}, fleet={"sqs_relative_error": 0})
    keda = keda_model.Keda(PoolSim(0, s.pools[0], s, [60.0]), keda_model.PodTermination.default(60))
    keda.pool.queues[0].extend([1, 2, 3])
    keda.pool.in_flight[0] = 4
    assert keda.messages(0) == 7


def keda_of(sim: Simulation) -> keda_model.Keda:
    controller = sim.controllers[0]
    assert isinstance(controller, keda_model.Keda)
    return controller


def test_keda_activates_one_replica_within_a_polling_interval() -> None:
    sim = run(scenario({"burst": {"at": BURST_AT, "count": 200}}), "keda")
    first_time, first_change = keda_of(sim).replica_actions[0]
    assert first_change == 1
    assert BURST_AT <= first_time <= BURST_AT + keda_model.POLLING_INTERVAL
    # Its node (one per Pending pod, the HPA may have added some since): asked for at the Cluster
    # Autoscaler's next scan.
    node_time, node_change = sim.pools[0].actions[0]
    assert first_time <= node_time <= first_time + keda_model.CA_SCAN_INTERVAL
    assert node_change == sum(change for t, change in keda_of(sim).replica_actions if t <= node_time)


def test_keda_then_adds_at_most_max_of_4_and_100_percent_per_sync() -> None:
    sim = run(scenario({"burst": {"at": BURST_AT, "count": 2000}}, max_size=200), "keda")
    size = 0
    sizes: list[tuple[float, int]] = []
    for at, change in keda_of(sim).replica_actions:
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
    last_change_time, _ = keda_of(sim).replica_actions[-1]
    assert keda_of(sim).replicas == 0
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


@pytest.mark.parametrize("policy", [p for p in POLICIES if p != "keda"])
def test_no_job_is_lost_and_scale_in_never_cuts_a_protected_job(policy: str) -> None:
    # Not keda: a ReplicaSet's scale-down deletes busy pods (test_a_replicaset_scale_down_kills_...).
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


def exact(arrivals: Any, **more: Any) -> Scenario:
    """A scenario whose every node boots in exactly 60 s and whose counts are exact."""
    return scenario(arrivals, boot_seconds={"min": 60, "max": 60}, fleet={"sqs_relative_error": 0}, **more)


def test_keda_nodes_come_from_the_cluster_autoscaler_and_leave_ten_minutes_after_they_empty() -> None:
    # One job of 60 s into an empty pool: KEDA activates one replica, the Cluster Autoscaler asks for
    # its node at its next scan, the node serves after its 60 s boot; 300 s after the last active
    # poll KEDA scales to 0 replicas and the pod leaves; the empty node stays until it has been
    # unneeded for scale-down-unneeded-time (600 s), removed at the first scan after that.
    sim = run(exact({"burst": {"at": BURST_AT, "count": 1}}), "keda")
    keda, pool = keda_of(sim), sim.pools[0]
    (activated, up), (deactivated, down) = keda.replica_actions
    assert (up, down) == (1, -1)
    (launched, plus), (removed, minus) = pool.actions
    assert (plus, minus) == (1, -1)
    assert activated <= launched < activated + keda_model.CA_SCAN_INTERVAL
    (node,) = pool.instances
    assert (node.launched, node.ready_at) == (launched, launched + 60)
    assert sim.start[0] == launched + 60 and sim.end[0] == launched + 120
    assert deactivated >= sim.end[0] + keda_model.COOLDOWN_PERIOD - keda_model.POLLING_INTERVAL
    assert node.terminated == removed
    assert 600 <= removed - deactivated < 600 + keda_model.CA_SCAN_INTERVAL
    assert simulate(exact({"burst": {"at": BURST_AT, "count": 1}}), "keda").metrics["instance_seconds"] == (
        removed - launched
    )


def test_the_cluster_autoscaler_waits_ten_minutes_after_a_scale_up_and_keeps_the_group_minimum() -> None:
    s = exact(
        [{"burst": {"at": 60, "count": 40, "over_seconds": 60}}, {"burst": {"at": 1500, "count": 30}}],
        min_size=1,
        max_size=30,
    )
    sim = run(s, "keda")
    pool = sim.pools[0]
    ups = [t for t, change in pool.actions if change > 0]
    removals = [(t, i) for i in pool.instances if (t := i.terminated) is not None and not i.fails]
    assert removals, "empty nodes leave once the work is done"
    for at, node in removals:
        assert not any(at - keda_model.SCALE_DOWN_DELAY_AFTER_ADD < t <= at for t in ups), at
        assert at - keda_model.Keda.empty_since(node) >= keda_model.SCALE_DOWN_UNNEEDED_TIME - 1e-9, at
        assert node.running == 0
    assert pool.desired == len(pool.in_service) == 1, "never below the node group's minimum"


class _ScaleToOneAt20(keda_model.Keda):
    """The HPA's decision forced: one replica from the first sync at or after 20 s."""

    def _hpa_sync(self, now: float) -> int | None:
        return 1 if now >= 20 else None


@pytest.mark.parametrize("prestop", [False, True])
def test_a_replicaset_scale_down_kills_a_busy_pod_unless_a_prestop_hook_waits(prestop: bool) -> None:
    # Two jobs of 200 s start at 10 s on the two initial pods (one per node; ids 0 and 1, both ready
    # at 0). The HPA goes to one replica at t_d in [20, 35): the ReplicaSet deletes the pod on node 1
    # (the pods are equally old: the ranking's last tie-break), busy or not.
    s = exact({"burst": {"at": 10, "count": 2}}, min_size=2, pool={"drain_seconds": 300, "queues": [
        {"name": "q", "target_per_instance": 1, "arrivals": {"burst": {"at": 10, "count": 2}},
         "service_seconds": {"fixed": 200}}]})  # fmt: skip
    workload = build_workload(s)
    sim = Simulation(
        s,
        workload,
        lambda pool: _ScaleToOneAt20(
            pool,
            keda_model.PodTermination.prestop(pool) if prestop else keda_model.PodTermination.default(200),
        ),
    ).run()
    (deleted_at, change), *_ = keda_of(sim).replica_actions
    assert change == -1 and 20 <= deleted_at < 35
    job = 1  # the second arrival, taken by node 1's worker (workers fill the oldest instance first)
    assert sim.start == [10, 10]
    if prestop:
        # terminationGracePeriodSeconds = the drain window (300 s) covers the job's last 190 s.
        assert sim.restarts[job] == 0 and sim.end[job] == 210
    else:
        # Killed 30 s after SIGTERM; visible again 5/6 of the visibility timeout (3 x 200 s) later,
        # 500 s; node 0 is free by then (its job ended at 210): the job runs again from then, 200 s.
        killed = deleted_at + keda_model.TERMINATION_GRACE_PERIOD
        assert sim.restarts[job] == 1
        assert sim.end[job] == pytest.approx(killed + 500 + 200)
        assert sim.waits()[job] == pytest.approx(500)
