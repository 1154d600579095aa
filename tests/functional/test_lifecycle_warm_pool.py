"""LifecycleFunction's handler on a warm pool's events, end to end under moto (moto_lifecycle supplies the
hooks' actions and the instances' SSM agent).

Each event is one of events/lifecycle/warm-pool-*.json: the EC2 Auto Scaling event reference's lifecycle
action shape with the `Origin` / `Destination` values of its warm pool example events.
"""

from __future__ import annotations

import time

import time_machine

from tests.functional.test_lifecycle_handler import (  # noqa: F401 - the fixture
    DRAIN_RUNS,
    GROUP,
    Stack,
    hold_at_terminate_hook,
    later,
    run_timeline,
    stack,
    throttle,
)


def test_given_an_instance_launched_into_the_warm_pool_when_its_worker_is_healthy_then_continue(stack: Stack) -> None:  # noqa: F811 - the fixture
    instance = stack.instances[0]
    token, result = stack.hook("warm-pool-enter.json", instance, "launch")
    assert result["event"] == "EC2 Instance-launch Lifecycle Action"
    [check] = stack.agent.of("health")
    assert stack.actions.actions[token].result is None  # not stopped before the worker answers
    [stored] = stack.stored(instance)
    assert stored["action"] == f"warm#{token}"

    check.finish("Success", "health=healthy")
    [report] = stack.status(check.command_id, instance, "Success")["actions"]

    assert report["outcome"] == "succeeded" and "warmed" in report["reason"]
    assert stack.actions.actions[token].result == "CONTINUE"
    assert stack.agent.of("drain") == []


def test_given_an_instance_warming_never_healthy_when_its_deadline_passes_then_abandon(stack: Stack) -> None:  # noqa: F811 - the fixture
    instance = stack.instances[0]
    stack.agent.reply(instance, "health", "Success", "health=unhealthy")
    token, _ = stack.hook("warm-pool-enter.json", instance, "launch")
    with later(400):
        stack.reconcile()
    assert stack.actions.actions[token].result == "ABANDON"
    assert "LaunchesAbandoned" in stack.metrics()


def test_given_an_instance_leaving_the_warm_pool_when_healthy_then_continue_into_service(stack: Stack) -> None:  # noqa: F811 - the fixture
    instance = stack.instances[0]
    stack.agent.reply(instance, "health", "Success", "health=healthy")
    entered, _ = stack.hook("warm-pool-enter.json", instance, "launch")
    [warming] = stack.agent.of("health")
    stack.status(warming.command_id, instance, "Success")
    left, _ = stack.hook("warm-pool-leave.json", instance, "launch")
    [_, admission] = stack.agent.of("health")  # admitted again on the way out, as a cold launch is
    assert stack.actions.actions[left].result is None
    stack.status(admission.command_id, instance, "Success")
    assert (stack.actions.actions[entered].result, stack.actions.actions[left].result) == ("CONTINUE", "CONTINUE")
    assert {item["action"] for item in stack.stored(instance)} == {f"warm#{entered}", f"launch#{left}"}


def test_given_a_scale_in_into_the_warm_pool_when_handled_then_the_worker_drains_before_continue(
    stack: Stack,  # noqa: F811 - the fixture
) -> None:
    instance = stack.instances[0]
    token, _ = stack.hook("warm-pool-scale-in.json", instance, "terminate")
    [drain] = stack.agent.of("drain")
    assert stack.actions.actions[token].result is None  # jobs finish or are released first
    drain.finish("Success", "exit=0")
    [report] = stack.status(drain.command_id, instance, "Success")["actions"]
    assert report["outcome"] == "succeeded"
    assert stack.actions.actions[token].result == "CONTINUE"
    assert "DrainSeconds" in stack.metrics()


def test_given_a_second_scale_in_into_the_warm_pool_when_handled_then_it_gets_a_drain_of_its_own(
    stack: Stack,  # noqa: F811 - the fixture
) -> None:
    instance = stack.instances[0]
    first, _ = stack.hook("warm-pool-scale-in.json", instance, "terminate")
    [drain] = stack.agent.of("drain")
    drain.finish("Success", "exit=0")
    stack.status(drain.command_id, instance, "Success")
    with later(1800):  # back in service, busy again, scaled in again
        second, _ = stack.hook("warm-pool-scale-in.json", instance, "terminate")
        assert len(stack.agent.of("drain")) == 2
        assert stack.actions.actions[second].result is None  # the first trip's drain is not this one's
        stack.agent.of("drain")[1].finish("Success", "exit=0")
        stack.status(stack.agent.of("drain")[1].command_id, instance, "Success")
    assert (stack.actions.actions[first].result, stack.actions.actions[second].result) == ("CONTINUE", "CONTINUE")


def test_given_a_warmed_instance_terminated_from_the_pool_when_handled_then_continue_at_once(stack: Stack) -> None:  # noqa: F811 - the fixture
    instance = stack.instances[1]
    token, result = stack.hook("warm-pool-terminate.json", instance, "terminate")
    [report] = result["actions"]
    assert report["outcome"] == "succeeded" and stack.agent.sent == []
    assert stack.actions.actions[token].result == "CONTINUE"


def test_given_an_earlier_trips_drain_and_throttled_writes_when_scaled_in_into_the_pool_again_then_it_drains_first(
    stack: Stack,  # noqa: F811 - the fixture
) -> None:
    """The drain that goes out without a record (the table refuses the writes) asks SSM for one already
    sent: the earlier trip's finished drain must not count, or the hook would end with jobs still running."""
    instance, t0 = stack.instances[0], float(int(time.time()))
    with time_machine.travel(t0 - 3600, tick=False):  # the earlier trip: drained, into the pool, back in service
        earlier, _ = stack.hook("warm-pool-scale-in.json", instance, "terminate")
        [old] = stack.agent.of("drain")
        old.finish("Success", "exit=0")
        stack.status(old.command_id, instance, "Success")
    assert stack.actions.actions[earlier].result == "CONTINUE"
    token = hold_at_terminate_hook(stack, instance, t0)  # scaled in again
    fault = throttle(lambda body, refused: refused < 5)
    detail = {"LifecycleActionToken": token, "AutoScalingGroupName": GROUP, "EC2InstanceId": instance}

    def deliver() -> object:
        return stack.invoke("warm-pool-scale-in.json", **detail, LifecycleHookName="terminate")

    with time_machine.travel(t0, tick=False) as clock:
        run_timeline(stack, clock, t0, token, reconcile_at=range(60, 601, 60), deliveries={0: deliver, 360: deliver})
    assert fault.refused >= 1
    [_, drain] = stack.agent.of("drain")  # one drain of its own, however many paths asked
    action = stack.actions.actions[token]
    assert action.result == "CONTINUE"
    assert action.completed_at is not None and action.completed_at >= drain.sent_at + DRAIN_RUNS
