"""The warm pool's lifecycle passes, over in-memory ports: which action each event asks for, and how it ends.

Every event is one of events/lifecycle's samples (the EC2 Auto Scaling event reference's shape, with
`Origin` and `Destination` as the warm pool's example events give them).
"""

from __future__ import annotations

import pytest

from queue_scaler.lifecycle.domain.commands import Purpose, drain_command, parse_comment
from queue_scaler.lifecycle.domain.lifecycle import CLOCK_SKEW_SECONDS, ActionKind, ActionState, HookResult, Outcome
from queue_scaler.lifecycle.ports import WaitingInstance
from queue_scaler.shared.events import LifecycleActionEvent, LifecycleTrigger
from tests.functional.handlers import event
from tests.unit.lifecycle.test_lifecycle_service import GROUP, INSTANCE, T0, World, world  # noqa: F401 - the fixture


def hook(scene: World, sample: str, token: str, now: float = T0) -> list[dict[str, object]]:
    """Auto Scaling holds the instance at a hook and sends the sample's event with a token of its own."""
    scene.hooks.active.add(token)
    return scene.handle(sample, now, LifecycleActionToken=token, AutoScalingGroupName=GROUP, EC2InstanceId=INSTANCE)


def purposes(scene: World) -> list[Purpose]:
    return [parse_comment(request.comment).purpose for _, _, request in scene.commands.sent]


@pytest.mark.parametrize(
    ("sample", "origin", "destination"),
    [
        ("launch.json", "EC2", "AutoScalingGroup"),
        ("terminate.json", "AutoScalingGroup", "EC2"),
        ("warm-pool-enter.json", "EC2", "WarmPool"),
        ("warm-pool-leave.json", "WarmPool", "AutoScalingGroup"),
        ("warm-pool-scale-in.json", "AutoScalingGroup", "WarmPool"),
        ("warm-pool-terminate.json", "WarmPool", "EC2"),
    ],
)
def test_given_each_hook_sample_when_parsed_then_its_origin_and_destination_are_read(
    sample: str, origin: str, destination: str
) -> None:
    parsed = LifecycleTrigger.model_validate(event("lifecycle", sample)).root
    assert isinstance(parsed, LifecycleActionEvent)
    assert (parsed.detail.origin, parsed.detail.destination) == (origin, destination)


def test_given_an_event_from_before_warm_pools_when_parsed_then_it_is_an_ordinary_launch() -> None:
    raw = event("lifecycle", "launch.json")
    del raw["detail"]["Origin"], raw["detail"]["Destination"]
    parsed = LifecycleTrigger.model_validate(raw).root
    assert isinstance(parsed, LifecycleActionEvent)
    assert (parsed.detail.origin, parsed.detail.into_warm_pool, parsed.detail.from_warm_pool) == (None, False, False)


def test_given_an_unknown_destination_when_parsed_then_the_field_is_named() -> None:
    raw = event("lifecycle", "warm-pool-enter.json")
    raw["detail"]["Destination"] = "Elsewhere"
    with pytest.raises(ValueError, match="Destination"):
        LifecycleTrigger.model_validate(raw)


@pytest.mark.parametrize(
    ("sample", "kind"),
    [
        ("launch.json", ActionKind.LAUNCH),
        ("warm-pool-enter.json", ActionKind.WARM),
        ("warm-pool-leave.json", ActionKind.LAUNCH),
        ("terminate.json", ActionKind.TERMINATE),
        ("warm-pool-scale-in.json", ActionKind.TERMINATE),
        ("warm-pool-terminate.json", ActionKind.WARM_EXIT),
    ],
)
def test_given_each_hook_event_when_handled_then_the_action_it_asks_for(
    world: World,  # noqa: F811 - the fixture
    sample: str,
    kind: ActionKind,
) -> None:
    hook(world, sample, "tok-1")
    [action] = world.store.items.values()
    assert (action.kind, action.key) == (kind, f"{kind}#tok-1")


def test_given_an_instance_entering_the_warm_pool_when_its_worker_is_healthy_then_continue_so_it_can_stop(
    world: World,  # noqa: F811 - the fixture
) -> None:
    [report] = hook(world, "warm-pool-enter.json", "tok-warm")
    assert report["step"] == "run_command" and purposes(world) == [Purpose.HEALTH]
    assert world.hooks.completed == {}  # not stopped before its image is pulled and its worker answers
    world.commands.finish("cmd-1", "Success", "health=healthy")
    world.service.reconcile(T0 + 40)
    [action] = world.store.items.values()
    assert action.state is ActionState.COMPLETED and action.outcome is Outcome.SUCCEEDED
    assert world.hooks.completed == {"tok-warm": HookResult.CONTINUE}
    assert "warmed" in action.reason


def test_given_an_instance_entering_the_warm_pool_never_healthy_when_its_deadline_passes_then_abandon(
    world: World,  # noqa: F811 - the fixture
) -> None:
    hook(world, "warm-pool-enter.json", "tok-warm")
    world.commands.finish("cmd-1", "Success", "health=starting")
    world.service.reconcile(T0 + 10_000)
    assert world.hooks.completed == {"tok-warm": HookResult.ABANDON}  # replaced, never warmed broken
    assert world.metrics.counts[("LaunchesAbandoned", None)] == 1


def test_given_an_instance_leaving_the_warm_pool_when_healthy_then_admitted_like_a_cold_launch(world: World) -> None:  # noqa: F811 - the fixture
    hook(world, "warm-pool-enter.json", "tok-warm")
    world.commands.finish("cmd-1", "Success", "health=healthy")
    world.service.reconcile(T0 + 30)
    [report] = hook(world, "warm-pool-leave.json", "tok-leave", now=T0 + 3600)
    assert report["step"] == "run_command" and purposes(world) == [Purpose.HEALTH, Purpose.HEALTH]
    assert "tok-leave" not in world.hooks.completed  # no InService before its worker answers again
    world.commands.finish("cmd-2", "Success", "health=healthy")
    world.service.reconcile(T0 + 3610)
    assert world.hooks.completed == {"tok-warm": HookResult.CONTINUE, "tok-leave": HookResult.CONTINUE}


def test_given_a_scale_in_into_the_warm_pool_when_handled_then_drained_before_continue(world: World) -> None:  # noqa: F811 - the fixture
    [report] = hook(world, "warm-pool-scale-in.json", "tok-in")
    assert report["step"] == "run_command" and purposes(world) == [Purpose.DRAIN]
    assert world.hooks.completed == {}  # the worker finishes or releases its jobs first
    world.commands.finish("cmd-1", "Success", "exit=0")
    world.service.reconcile(T0 + 70)
    assert world.hooks.completed == {"tok-in": HookResult.CONTINUE}
    assert world.metrics.durations["DrainSeconds"] == [70]


def test_given_a_second_trip_into_the_warm_pool_when_handled_then_the_first_trips_drain_is_not_adopted(
    world: World,  # noqa: F811 - the fixture
) -> None:
    hook(world, "warm-pool-scale-in.json", "tok-in-1")
    world.commands.finish("cmd-1", "Success", "exit=0")
    world.commands.sent_at["cmd-1"] = T0
    world.service.reconcile(T0 + 70)
    later = T0 + 2 * 3600  # back in service, then scaled in again
    [report] = hook(world, "warm-pool-scale-in.json", "tok-in-2", now=later)
    assert report["step"] == "run_command" and purposes(world) == [Purpose.DRAIN, Purpose.DRAIN]
    assert "tok-in-2" not in world.hooks.completed  # a finished old drain must not end this one at once


def test_given_a_drain_sent_within_the_clock_skew_of_the_event_when_handled_then_it_is_adopted(world: World) -> None:  # noqa: F811 - the fixture
    # The table refused the record and the drain went out unrecorded; the retried event adopts it.
    world.commands.run(INSTANCE, drain_command("queue-worker", 60))
    world.commands.sent_at["cmd-1"] = T0 - CLOCK_SKEW_SECONDS / 2
    hook(world, "warm-pool-scale-in.json", "tok-in", now=T0)
    assert len(world.commands.sent) == 1
    [action] = world.store.items.values()
    assert action.command_id == "cmd-1"


def test_given_a_warmed_instance_terminated_from_the_pool_when_handled_then_continue_without_a_drain(
    world: World,  # noqa: F811 - the fixture
) -> None:
    [report] = hook(world, "warm-pool-terminate.json", "tok-out")
    assert report["outcome"] == "succeeded" and world.commands.sent == []
    assert world.hooks.completed == {"tok-out": HookResult.CONTINUE}


def test_given_the_same_warm_pool_event_twice_when_handled_then_one_health_check(world: World) -> None:  # noqa: F811 - the fixture
    hook(world, "warm-pool-enter.json", "tok-warm")
    [again] = hook(world, "warm-pool-enter.json", "tok-warm", now=T0 + 1)
    assert again["step"] == "wait" and len(world.commands.sent) == 1
    assert world.metrics.counts[("LifecycleDuplicateEvents", None)] == 1


def drained_then_waiting_again(scene: World) -> None:
    """A scale-in into the pool drained at T0 (finished, completed at T0 + 70); then the instance is listed
    at the terminate hook again with no event about it."""
    hook(scene, "warm-pool-scale-in.json", "tok-in-1")
    scene.commands.finish("cmd-1", "Success", "exit=0")
    scene.commands.sent_at["cmd-1"] = T0
    scene.service.reconcile(T0 + 70)
    scene.hooks.hooks[GROUP, "autoscaling:EC2_INSTANCE_TERMINATING"] = "terminate"
    scene.hooks.active.add(INSTANCE)
    scene.hooks.held.append(WaitingInstance(INSTANCE, GROUP, "Terminating:Wait"))


def test_given_an_instance_back_at_its_terminate_hook_with_its_event_lost_when_reconciled_then_drained_again(
    world: World,  # noqa: F811 - the fixture
) -> None:
    drained_then_waiting_again(world)
    [report] = [r.as_dict() for r in world.service.reconcile(T0 + 2 * 3600)]  # its next trip, event lost
    assert report["step"] == "run_command" and purposes(world) == [Purpose.DRAIN, Purpose.DRAIN]
    assert world.metrics.counts[("LifecycleActionsDiscovered", None)] == 1


def test_given_an_action_completed_a_moment_ago_when_reconciled_then_its_instance_is_not_taken_up_again(
    world: World,  # noqa: F811 - the fixture
) -> None:
    drained_then_waiting_again(world)  # Auto Scaling has not moved it on yet
    assert world.service.reconcile(T0 + 75) == [] and len(world.commands.sent) == 1
