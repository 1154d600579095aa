"""The simulated Auto Scaling group pinned to how AWS runs one: termination choice, scale-in
protection, the drain window, launch draws and SQS's approximate counts (fast, no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.sim.engine import BILLING_HOUR, Controller, Instance, PoolSim, Simulation
from devkit.sim.metrics import summarize
from devkit.sim.policies import POLICIES, controller_factory
from devkit.sim.runner import simulate
from devkit.sim.scenario import Scenario, template_pools
from devkit.sim.workload import build_workload


def scenario(arrivals: Any, *, pool: dict[str, Any] | None = None, fleet: dict[str, Any] | None = None) -> Scenario:
    spec = {
        "name": "messaging",
        "min_size": 0,
        "max_size": 10,
        "queues": [{"name": "q", "target_per_instance": 1, "arrivals": arrivals, "service_seconds": {"fixed": 1000}}],
    } | (pool or {})
    return Scenario.model_validate(
        {
            "name": "t",
            "duration_seconds": 600,
            "seed": 5,
            "boot_seconds": {"min": 60, "max": 120},
            # Exact launches unless a test asks for failures or a tail.
            "fleet": {"launch_failure_rate": 0, "slow_boots": {"fraction": 0}} | (fleet or {}),
            "pools": [spec],
        }
    )


class Schedule(Controller):
    """A controller that starts at `initial` and sets each (time, desired) of `steps` when due."""

    def __init__(self, pool: PoolSim, initial: int, steps: list[tuple[float, int]]) -> None:
        super().__init__(pool)
        self.initial = initial
        self.steps = steps
        self.loops = [(1.0, 0.0)]

    def initial_size(self) -> int:
        return self.initial

    def rest_size(self) -> int:
        return self.steps[-1][1]

    def on_loop(self, index: int, now: float) -> int | None:
        due = [desired for at, desired in self.steps if at <= now]
        return due[-1] if due else None


def run(s: Scenario, initial: int, steps: list[tuple[float, int]]) -> Simulation:
    workload = build_workload(s)
    return Simulation(s, workload, lambda pool: Schedule(pool, initial, steps)).run()


def bare_pool(zones: int = 3) -> PoolSim:
    s = scenario({"burst": {"at": 0, "count": 1}}, fleet={"availability_zones": zones})
    return PoolSim(0, s.pools[0], s, [1000.0])


def put(pool: PoolSim, launched: float, zone: int, protected: bool = False) -> Instance:
    instance = Instance(len(pool.instances), launched, launched, "in_service", zone=zone, protected=protected)
    pool.instances.append(instance)
    pool.in_service[instance.id] = instance
    return instance


# The termination choice: AWS's default termination policy over unprotected instances.
def test_protected_instances_are_never_chosen() -> None:
    pool = bare_pool()
    protected = [put(pool, 0, z, protected=True) for z in range(3)]
    free = put(pool, 100, 0)
    assert pool.termination_choice(3, 500) == [free]
    assert not {i.id for i in pool.termination_choice(3, 500)} & {i.id for i in protected}


def test_when_every_instance_is_protected_nothing_is_chosen() -> None:
    pool = bare_pool()
    for z in range(3):
        put(pool, 0, z, protected=True)
    assert pool.termination_choice(2, 500) == []


def test_the_zone_with_the_most_instances_goes_first_even_against_the_billing_hour() -> None:
    pool = bare_pool()
    put(pool, 0, 0)
    crowded = [put(pool, 10, 1), put(pool, 20, 1)]
    # Instance 0 is closest to its billing hour, but zone 1 holds more instances.
    first = pool.termination_choice(1, 3500)
    assert first[0] in crowded


def test_balanced_zones_take_the_instance_closest_to_its_next_billing_hour() -> None:
    pool = bare_pool()
    a = put(pool, 0, 0)  # 3,500 s into its hour at 3,500: 100 s to the next
    b = put(pool, 1000, 1)  # 2,500 s in: 1,100 s to go
    c = put(pool, 3400, 2)  # 100 s in: 3,500 s to go
    assert pool.termination_choice(3, 3500) == [a, b, c]


def test_the_billing_hour_wraps_every_hour() -> None:
    pool = bare_pool(zones=1)
    old = put(pool, 0, 0)  # 2 h 10 s old at 7,210: 3,590 s to its next hour
    young = put(pool, 3700, 0)  # 3,510 s old: 90 s to go
    assert pool.termination_choice(1, 2 * BILLING_HOUR + 10) == [young]
    assert old not in pool.termination_choice(1, 2 * BILLING_HOUR + 10)


def test_ties_are_broken_at_random_from_the_pools_seed() -> None:
    picks = set()
    for _ in range(20):
        pool = bare_pool(zones=1)
        twins = [put(pool, 0, 0), put(pool, 0, 0)]
        picks.add(pool.termination_choice(1, 100)[0].id)
        assert {i.id for i in twins} >= picks
    assert len(picks) == 1, "the same seed makes the same random choice"


# Scale-in protection, as queue_worker/protection.py holds it.
def test_busy_instances_stay_until_their_jobs_end_plus_the_protection_linger() -> None:
    s = scenario({"burst": {"at": 1, "count": 2}})
    sim = run(s, 2, [(100.0, 0)])
    linger = s.fleet.protection_linger_seconds
    assert linger == 5, "the worker's PROTECTION_LINGER_SECONDS default"
    pool = sim.pools[0]
    assert pool.desired == 0
    for instance in pool.instances:
        assert instance.terminated == pytest.approx(1 + 1000 + linger)
    assert sum(sim.restarts) == 0


def test_the_group_stays_above_desired_while_everything_is_protected() -> None:
    s = scenario({"burst": {"at": 1, "count": 2}})
    workload = build_workload(s)
    sim = Simulation(s, workload, lambda pool: Schedule(pool, 2, [(100.0, 0)]))
    sim.run()
    # Terminations happen only once protection lapses, never at the SetDesiredCapacity at 100 s.
    assert all(i.terminated is not None and i.terminated > 1000 for i in sim.pools[0].instances)


def test_the_series_counts_in_flight_booting_and_protected_instances_above_desired() -> None:
    s = scenario({"burst": {"at": 1, "count": 2}})
    # Two busy instances from 1 s to 1001 s; desired 0 at 100 s; a launch at 195 s boots 60-120 s.
    sim = run(s, 2, [(100.0, 0), (195.0, 3), (205.0, 0)])
    at = {point.t: point for point in sim.series}
    assert at[50.0].in_flight == 2 and at[50.0].visible == 0 and at[50.0].protected_surplus == 0
    # Desired 0, both busy instances kept by their protection: in service above desired.
    assert (at[150.0].desired, at[150.0].in_service, at[150.0].protected_surplus) == (0, 2, 2)
    assert at[150.0].booting == 0
    # Desired 3 at 195 s: one launch boots (two are in service); at 205 s desired 0 takes it while booting.
    assert (at[200.0].booting, at[200.0].in_service, at[200.0].protected_surplus) == (1, 2, 0)
    assert (at[210.0].booting, at[210.0].protected_surplus) == (0, 2)
    assert at[1010.0].in_service == 0 and at[1010.0].protected_surplus == 0


def test_recording_the_series_changes_no_metric() -> None:
    s = scenario({"poisson": {"per_second": 0.02}})
    for policy in POLICIES:
        assert simulate(s, policy, record_series=True).metrics == simulate(s, policy, record_series=False).metrics


def test_an_idle_instance_goes_before_a_busy_one_whatever_its_age() -> None:
    s = scenario({"burst": {"at": 200, "count": 1}})
    sim = run(s, 1, [(0.0, 2), (400.0, 1)])
    first, second = sim.pools[0].instances
    # The first (oldest) instance took the job and is protected; the second, idle, leaves at 400.
    assert second.terminated == pytest.approx(400)
    assert first.terminated is None or first.terminated > 1200


# The drain window.
def test_a_job_outliving_the_drain_window_is_released_retried_and_its_instance_terminated() -> None:
    drain = template_pools()["messaging"]["drain_seconds"]
    assert drain == 60, "MessagingDrainSeconds' default, read from the template"
    s = scenario({"burst": {"at": 1, "count": 1}}, fleet={"scale_in_protection": False})
    sim = run(s, 1, [(10.0, 2), (300.0, 1)])
    first, second = sim.pools[0].instances
    # At 300 s the oldest (closest to its billing hour, unprotected) instance is chosen while busy.
    assert first.terminated == pytest.approx(300 + drain)
    assert sim.restarts == [1]
    # Released at the window's end, the job starts again on the other worker at once.
    assert sim.end[0] == pytest.approx(300 + drain + 1000)
    assert second.terminated is None
    metrics = summarize(sim)
    assert metrics["restarted"] == 1
    # Its wait counts the time it waited before each attempt: none here.
    assert metrics["wait_max"] == pytest.approx(0)


def test_a_job_that_ends_within_the_drain_window_finishes_and_the_instance_leaves_then() -> None:
    s = scenario(
        {"burst": {"at": 1, "count": 1}},
        pool={
            "queues": [
                {
                    "name": "q",
                    "target_per_instance": 1,
                    "arrivals": {"burst": {"at": 1, "count": 1}},
                    "service_seconds": {"fixed": 320},
                }
            ]
        },
        fleet={"scale_in_protection": False},
    )
    sim = run(s, 1, [(10.0, 2), (300.0, 1)])
    first = sim.pools[0].instances[0]
    assert first.terminated == pytest.approx(321)
    assert sim.restarts == [0]


def test_a_pool_the_template_does_not_define_gets_the_templates_drain_rule() -> None:
    s = scenario({"burst": {"at": 1, "count": 1}}, pool={"name": "other"})
    allowed = template_pools()["messaging"]["allowed_drain_seconds"]
    assert s.pools[0].drain_window([1000.0] * 100) == min(d for d in allowed if d >= 1000)
    assert s.pools[0].drain_window([5.0] * 100) == min(allowed)
    assert s.pools[0].drain_window([10_000.0]) == max(allowed)


# Launches.
def test_the_kth_launch_boots_and_fails_the_same_under_every_policy() -> None:
    s = scenario({"burst": {"at": 1, "count": 1}}, fleet={"launch_failure_rate": 0.3, "slow_boots": {"fraction": 0.3}})
    draws = [PoolSim(0, s.pools[0], s, [1.0]) for _ in range(2)]
    first = [draws[0].next_launch() for _ in range(50)]
    assert first == [draws[1].next_launch() for _ in range(50)]
    assert any(fails for _, fails in first) and not all(fails for _, fails in first)
    # The tail: slow boots take `factor` times a drawn boot time, beyond the uniform range.
    assert max(boot for boot, _ in first) > s.boot_seconds.max


def test_a_failed_launch_is_replaced_by_the_group() -> None:
    s = scenario({"burst": {"at": 1, "count": 1}}, fleet={"launch_failure_rate": 0.5})
    sim = run(s, 0, [(0.0, 10)])
    pool = sim.pools[0]
    failed = [i for i in pool.instances if i.fails]
    assert failed, "a rate of 0.5 fails some of the launches"
    assert pool.launch_failures == len(failed)
    assert all(i.terminated == pytest.approx(i.ready_at) for i in failed)
    assert len(pool.in_service) == 10, "each failure was replaced until the group reached its desired capacity"


# What controllers read.
def test_sqs_counts_are_approximate_within_the_documented_error() -> None:
    pool = bare_pool()
    pool.queues[0].extend(range(1000))
    pool.in_flight[0] = 200
    seen = [pool.sqs_counts(0) for _ in range(200)]
    error = pool.fleet.sqs_relative_error
    assert error == 0.05
    assert all(abs(v - 1000) <= 1000 * error + 1 and abs(f - 200) <= 200 * error + 1 for v, f in seen)
    assert len({v for v, _ in seen}) > 1, "the counts vary as SQS's do"
    empty = bare_pool()
    assert empty.sqs_counts(0) == (0, 0), "an empty queue reads empty"


# Metrics.
def test_queue_metrics_use_each_queues_wait_objective() -> None:
    s = Scenario.model_validate(
        {
            "name": "t",
            "duration_seconds": 600,
            "boot_seconds": {"min": 60, "max": 120},
            "pools": [
                {
                    "name": "video",
                    "max_size": 5,
                    "queues": [
                        {
                            "name": "v",
                            "target_per_instance": 5,
                            "arrivals": {"burst": {"at": 10, "count": 40}},
                            "service_seconds": {"fixed": 30},
                        },
                    ],
                },
                {
                    "name": "other",
                    "max_size": 5,
                    "scaler": {"seconds_per_message": 30},
                    "queues": [
                        {
                            "name": "o",
                            "max_wait_seconds": 90,
                            "arrivals": {"burst": {"at": 10, "count": 40}},
                            "service_seconds": {"fixed": 30},
                        },
                    ],
                },
            ],
        }
    )
    metrics = simulate(s, "queue-scaler").metrics
    video, other = metrics["queues"]["v"], metrics["queues"]["o"]
    assert video["objective"] == template_pools()["video"]["wait_objective_seconds"] == 600
    assert other["objective"] == 90
    for queue in (video, other):
        assert queue["objective_ratio"] == pytest.approx(queue["wait_p95"] / queue["objective"], abs=1e-3)
    assert metrics["worst_objective_ratio"] == max(video["objective_ratio"], other["objective_ratio"])


@pytest.mark.parametrize("policy", [p for p in POLICIES if p not in ("fixed", "oracle")])
def test_adequacy_counts_capacity_in_service_not_requests(policy: str) -> None:
    # A pool at zero: no request, however early, brings capacity in service before a boot.
    s = scenario({"burst": {"at": 100, "count": 5}})
    metrics = simulate(s, policy).metrics
    assert metrics["adequate_seconds"] is not None
    assert metrics["adequate_seconds"] >= s.boot_seconds.min


@pytest.mark.parametrize("policy", POLICIES)
def test_no_policy_gets_a_protected_instance_terminated(policy: str) -> None:
    s = scenario(
        [{"poisson": {"per_second": 0.02}}, {"burst": {"at": 60, "count": 30, "over_seconds": 20}}],
        pool={"fixed_size": 3},
        fleet={"launch_failure_rate": 0.05, "slow_boots": {"fraction": 0.2}},
    )
    workload = build_workload(s)
    sim = Simulation(s, workload, controller_factory(policy, s, workload))
    sim.run()
    assert sim.completed == len(workload)
    assert sum(sim.restarts) == 0
    assert all(not i.protected for i in sim.pools[0].instances if i.terminated is not None)


#: A pool whose target (20 messages per 1-slot instance) asks for fewer instances than its running
#: jobs: scale-in meets busy instances.
LOW_NEED = [
    {
        "name": "q",
        "target_per_instance": 20,
        "arrivals": {"burst": {"at": 60, "count": 60, "over_seconds": 20}},
        "service_seconds": {"fixed": 300},
    }
]


@pytest.mark.parametrize("policy", POLICIES)
def test_protection_keeps_every_job_while_without_it_drains_cut_jobs_that_are_retried(policy: str) -> None:
    protected = simulate(scenario(None, pool={"queues": LOW_NEED}), policy).metrics
    bare = simulate(scenario(None, pool={"queues": LOW_NEED}, fleet={"scale_in_protection": False}), policy).metrics
    assert protected["lost"] == bare["lost"] == 0
    assert protected["restarted"] == 0
    assert bare["releases"] >= bare["restarted"]
    if policy == "target-tracking":
        assert bare["restarted"] > 0, "its scale-in takes busy instances once nothing protects them"


@pytest.mark.parametrize(
    ("waiting", "running", "slots", "target", "need"),
    [
        (0, 0, 1, 20, 0),
        (1, 0, 1, 20, 1),  # any work needs an instance
        (19, 5, 1, 20, 5),  # less than one instance short: not a burst
        (40, 5, 1, 20, 7),
        (0, 20, 4, 2, 5),  # a target below the slots: running jobs count as their slots
        (10, 20, 4, 2, 10),
    ],
    ids=["idle", "one message at zero", "under a target's worth", "two targets' worth", "all running", "mixed"],
)
def test_the_capacity_need_counts_running_jobs_as_slots(
    waiting: int, running: int, slots: int, target: float, need: int
) -> None:
    s = scenario(
        {"burst": {"at": 0, "count": 1}},
        pool={
            "slots_per_instance": slots,
            "queues": [
                {
                    "name": "q",
                    "target_per_instance": target,
                    "arrivals": {"burst": {"at": 0, "count": 1}},
                    "service_seconds": {"fixed": 1},
                }
            ],
        },
    )
    pool = PoolSim(0, s.pools[0], s, [1.0])
    pool.queues[0].extend(range(waiting))
    pool.in_flight[0] = running
    assert pool.capacity_need() == need
