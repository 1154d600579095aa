"""Target tracking as AWS documents it (devkit/sim/policies/target_tracking.py), on hand-computed states.

Each test builds one pool by hand (instances in service or warming, messages in the queue), runs the
controller's loop at chosen times, and checks the desired capacity against figures computed from the
documented rules: the new capacity is the datapoint's own denominator (the warm instances it was
computed over) times metric / target; a pool at zero wakes with a step policy that may set more than
one instance; the SQS guide's recipe counts visible messages only, against acceptable latency over
the processing time per message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from devkit.sim.engine import Instance, PoolSim
from devkit.sim.policies import target_tracking as tt
from devkit.sim.scenario import Scenario

PERIOD = tt.STANDARD_PERIOD
WARMUP = 120.0


def pool_sim(*, target: float | None = 10, wait: float | None = None, name: str = "p", **pool: Any) -> PoolSim:
    """One pool, one queue; exact SQS counts and no CloudWatch delay, so the figures are the rule's."""
    queue: dict[str, Any] = {
        "name": "q",
        "arrivals": {"burst": {"at": 0, "count": 1}},
        "service_seconds": {"fixed": 60},
    }
    if target is not None:
        queue["target_per_instance"] = target
    if wait is not None:
        queue["max_wait_seconds"] = wait
    scenario = Scenario.model_validate(
        {
            "name": "t",
            "duration_seconds": 600,
            "boot_seconds": {"min": 60, "max": 120},
            "fleet": {"sqs_relative_error": 0, "cloudwatch_delay_seconds": 0},
            "pools": [{"name": name, "drain_seconds": 60, "max_size": 600, "queues": [queue]} | pool],
        }
    )
    return PoolSim(0, scenario.pools[0], scenario, [60.0])


def add_instances(pool: PoolSim, count: int, ready_at: float) -> None:
    """`count` instances in service since `ready_at` (0 and launched at 0: the initial, warm fleet)."""
    for _ in range(count):
        instance = Instance(len(pool.instances), 0.0 if ready_at == 0 else ready_at - 60, ready_at, "in_service")
        pool.instances.append(instance)
        pool.in_service[instance.id] = instance
    pool.desired = len(pool.in_service)


def controller(pool: PoolSim, recipe: tt.Recipe = tt.Recipe.POOL_TARGET) -> tt.TargetTracking:
    return tt.TargetTracking(pool, tt.Resolution(PERIOD, 0.0), WARMUP, recipe)


def after_three_datapoints(control: tt.TargetTracking, start: float) -> int | None:
    """Sample at start, +1 and +2 periods (the high alarm's 3 datapoints); what the 4th loop sets."""
    for k in range(3):
        assert control.on_loop(0, start + k * PERIOD) is None, "no action before 3 breaching datapoints"
    return control.on_loop(0, start + 3 * PERIOD)


def test_the_sqs_guides_worked_example() -> None:
    # "the current ApproximateNumberOfMessages is 1500 and the fleet's running capacity is 10 ... the
    # acceptable backlog per instance is 10 / 0.1, which equals 100 ... it scales out by five instances"
    assert tt.capacity(10, 1500 / 10 / 100) == 15


@pytest.mark.parametrize(
    ("denominator", "metric", "expected"), [(1, 48.3, 49), (10, 1.5, 15), (4, 0.5, 2), (3, 1.0, 3)]
)
def test_capacity_is_the_datapoints_own_instances_times_metric_over_target(
    denominator: int, metric: float, expected: int
) -> None:
    assert tt.capacity(denominator, metric) == expected


def test_scale_out_sizes_from_the_instances_the_datapoint_was_computed_over() -> None:
    # Issue 26's stage-30k case: 1 warm instance and 20 more in service but still warming. 483 messages
    # over a target of 10 on the one warm instance is a metric of 48.3: 1 x 48.3 -> 49 instances, not
    # 21 x 48.3 -> 1,015 (the instances in service by the time the alarm acts).
    pool = pool_sim(target=10)
    add_instances(pool, 1, ready_at=0)
    start = 1000.0
    add_instances(pool, 20, ready_at=start - 10)  # within their 120 s warm-up for the whole test
    pool.queues[0].extend(range(483))
    assert after_three_datapoints(controller(pool), start) == 49


def test_scale_out_adds_only_what_exceeds_the_desired_capacity() -> None:
    # 1 warm instance, metric 4.3 -> 5 instances; 5 already desired (4 booting): nothing to add.
    pool = pool_sim(target=10)
    add_instances(pool, 1, ready_at=0)
    pool.desired = 5
    pool.queues[0].extend(range(43))
    assert after_three_datapoints(controller(pool), 1000.0) is None


def test_warming_instances_give_no_datapoint_so_no_scale_out() -> None:
    # Every instance in service is warming: the metric has no denominator, the datapoint is missing,
    # and missing datapoints never make the high alarm's streak.
    pool = pool_sim(target=10)
    start = 1000.0
    add_instances(pool, 3, ready_at=start - 10)
    pool.queues[0].extend(range(500))
    control = controller(pool)
    assert [control.on_loop(0, start + k * PERIOD) for k in range(2)] == [None, None]
    assert all(d.value is None and d.denominator == 0 for d in control.datapoints)


def test_instances_past_their_warmup_count_again() -> None:
    # Three instances entered service 200 s before the first sample, past the 120 s warm-up: all count.
    pool = pool_sim(target=10)
    start = 1000.0
    add_instances(pool, 3, ready_at=start - 200)
    pool.queues[0].extend(range(75))  # 75 / 10 / 3 = 2.5 -> 3 x 2.5 = 7.5 -> 8
    assert after_three_datapoints(controller(pool), start) == 8


@pytest.mark.parametrize(
    ("units", "max_size", "expected"),
    [(0, 20, 0), (0.05, 20, 1), (1, 20, 1), (1.99, 20, 1), (2, 20, 2), (10, 20, 8), (16, 20, 16), (19.9, 20, 16),
     (20, 20, 20), (100, 20, 20), (3, 2, 2)],
)  # fmt: skip
def test_the_wake_up_step_sets_powers_of_two_up_to_max_size(units: float, max_size: int, expected: int) -> None:
    assert tt.wake_capacity(units, max_size) == expected


def test_a_pool_at_zero_wakes_with_the_capacity_its_visible_messages_justify() -> None:
    pool = pool_sim(target=10)
    pool.queues[0].extend(range(45))  # 4.5 units of visible messages: ExactCapacity 4
    control = controller(pool)
    assert control.on_loop(0, 100.0) is None  # the sample; it reaches the alarm at once (delay 0)
    assert control.on_loop(0, 160.0) == 4


def test_the_wake_up_alarm_is_quiet_once_the_group_has_capacity() -> None:
    pool = pool_sim(target=10)
    add_instances(pool, 2, ready_at=0)
    pool.queues[0].extend(range(5))  # 5 / 10 / 2 = 0.25: below the target, and the group is not at 0
    control = controller(pool)
    assert [control.on_loop(0, 100.0 + k * PERIOD) for k in range(4)] == [None] * 4
    assert all(d.wake == 0 for d in control.datapoints)


def test_pool_target_counts_in_flight_and_the_sqs_guide_only_visible_messages() -> None:
    for recipe, expected in ((tt.Recipe.POOL_TARGET, 3), (tt.Recipe.SQS_GUIDE, None)):
        pool = pool_sim(target=10)
        add_instances(pool, 2, ready_at=0)
        pool.in_flight[0] = 30  # 30 running, nothing visible: 30 / 10 / 2 = 1.5 -> 2 x 1.5 = 3
        assert after_three_datapoints(controller(pool, recipe), 1000.0) == expected, recipe


def test_the_sqs_guides_target_is_acceptable_latency_over_processing_time() -> None:
    # A 60 s wait objective, 40 s per message, 4 slots: one instance clears a message every 10 s, so
    # the acceptable backlog per instance is 60 / 10 = 6 (the pool's own target is 4 x 60 / 40 = 6 too).
    pool = pool_sim(target=None, wait=60, slots_per_instance=4, scaler={"seconds_per_message": 40})
    assert tt.recipe_targets(pool, tt.Recipe.SQS_GUIDE) == [6.0] == tt.recipe_targets(pool, tt.Recipe.POOL_TARGET)
    # A template pool's objective (ai: AiWaitObjectiveSeconds) applies to a queue with a set target.
    ai = pool_sim(target=20, name="ai", slots_per_instance=2, scaler={"seconds_per_message": 30})
    objective = ai.spec.wait_objective(ai.spec.queues[0])
    assert objective is not None
    assert tt.recipe_targets(ai, tt.Recipe.SQS_GUIDE) == [pytest.approx(objective / 15)]
    # No wait objective and no mean job time: the queue keeps its target.
    plain = pool_sim(target=20)
    assert tt.recipe_targets(plain, tt.Recipe.SQS_GUIDE) == [20]


@dataclass(frozen=True)
class Scored:
    metrics: dict[str, float]


def test_the_better_recipe_counts_as_the_peer() -> None:
    lower_wait = {tt.Recipe.POOL_TARGET: Scored({"wait_p95": 50, "instance_seconds": 9}),
                  tt.Recipe.SQS_GUIDE: Scored({"wait_p95": 40, "instance_seconds": 99})}  # fmt: skip
    assert tt.better_run(lower_wait)[0] is tt.Recipe.SQS_GUIDE
    tie = {recipe: Scored({"wait_p95": 40, "instance_seconds": 10.0 - i}) for i, recipe in enumerate(tt.Recipe)}
    assert tt.better_run(tie)[0] is tt.Recipe.SQS_GUIDE
    same = {recipe: Scored({"wait_p95": 40, "instance_seconds": 10}) for recipe in tt.Recipe}
    assert tt.better_run(same)[0] is tt.Recipe.POOL_TARGET
