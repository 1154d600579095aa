"""The lifecycle service's orchestration, over in-memory ports."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from queue_scaler.lifecycle.domain.commands import parse_comment
from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS
from queue_scaler.lifecycle.domain.lifecycle import ActionKind, ActionState, HookResult, LifecycleAction, Outcome
from queue_scaler.lifecycle.ports import WaitingInstance
from queue_scaler.lifecycle.services.lifecycle import LifecycleService
from queue_scaler.settings import LifecycleSettings
from queue_scaler.shared.errors import AwsCallError, Throttled
from queue_scaler.shared.events import LifecycleTrigger
from tests.fakes import FakeActionStore, FakeCommands, FakeHooks, TimingMetrics
from tests.functional.handlers import event

T0 = 1_000_000.0
GROUP = "video"
INSTANCE = "i-0123456789abcdef0"


@dataclass
class World:
    store: FakeActionStore
    hooks: FakeHooks
    commands: FakeCommands
    metrics: TimingMetrics
    service: LifecycleService

    def handle(self, sample: str, now: float = T0, **detail: Any) -> list[dict[str, object]]:
        raw = event("lifecycle", sample)
        if detail:
            raw["detail"] = raw["detail"] | detail
        trigger = LifecycleTrigger.model_validate(raw).root
        return [r.as_dict() for r in self.service.handle(trigger, now)]

    def terminate(self, token: str = "tok-1", now: float = T0) -> list[dict[str, object]]:
        self.hooks.active.add(token)
        return self.handle(
            "terminate.json", now, LifecycleActionToken=token, AutoScalingGroupName=GROUP, EC2InstanceId=INSTANCE
        )

    def launch(self, token: str = "tok-L", now: float = T0) -> list[dict[str, object]]:
        self.hooks.active.add(token)
        return self.handle(
            "launch.json", now, LifecycleActionToken=token, AutoScalingGroupName=GROUP, EC2InstanceId=INSTANCE
        )

    def command_status(self, command_id: str, status: str, now: float) -> list[dict[str, object]]:
        return self.handle(
            "command-invocation-status.json",
            now,
            **{"command-id": command_id, "instance-id": INSTANCE, "status": status},
        )

    def reconcile(self, now: float) -> list[dict[str, object]]:
        return self.handle("reconcile-scheduled.json", now)

    def only(self) -> LifecycleAction:
        [action] = self.store.items.values()
        return action


@pytest.fixture
def world() -> World:
    settings = LifecycleSettings(actions_table="t", group_names=GROUP)  # type: ignore[arg-type]
    store, hooks, commands, metrics = (
        FakeActionStore(),
        FakeHooks(groups={INSTANCE: GROUP}),
        FakeCommands(),
        TimingMetrics(),
    )
    service = LifecycleService(
        store=store,
        hooks=hooks,
        commands=commands,
        metrics=metrics,
        policy=settings.policy(),
        groups=settings.group_names,
    )
    return World(store, hooks, commands, metrics, service)


def test_given_a_terminate_event_when_handled_then_one_drain_starts_and_the_hook_waits(world: World) -> None:
    [report] = world.terminate()
    assert report["step"] == "run_command"
    [(command_id, instance, command)] = world.commands.sent
    assert instance == INSTANCE and f"docker stop --time {60 + RELEASE_MARGIN_SECONDS}" in "\n".join(command.script)
    assert world.only().command_id == command_id and world.only().state is ActionState.PENDING
    assert world.hooks.completed == {}


def test_given_a_finished_drain_when_its_status_event_arrives_then_continue_and_the_drain_time_is_recorded(
    world: World,
) -> None:
    world.terminate()
    world.commands.finish("cmd-1", "Success", "exit=0")
    [report] = world.command_status("cmd-1", "Success", T0 + 42)
    assert report["outcome"] == "succeeded"
    assert world.hooks.completed == {"tok-1": HookResult.CONTINUE}
    assert world.metrics.durations["DrainSeconds"] == [42]
    assert world.metrics.counts[("LifecycleActionsCompleted", None)] == 1


def test_given_the_same_event_twice_when_handled_then_one_drain_only(world: World) -> None:
    world.terminate()
    [again] = world.terminate(now=T0 + 1)
    assert again["step"] == "wait"
    assert len(world.commands.sent) == 1
    assert world.metrics.counts[("LifecycleDuplicateEvents", None)] == 1


def test_given_a_duplicate_after_completion_when_handled_then_nothing_is_done_again(world: World) -> None:
    world.terminate()
    world.commands.finish("cmd-1", "Success")
    world.command_status("cmd-1", "Success", T0 + 5)
    [again] = world.terminate(now=T0 + 6)
    assert again["step"] == "none"
    assert len(world.commands.sent) == 1 and world.hooks.completed == {"tok-1": HookResult.CONTINUE}


def test_given_a_rival_invocation_that_claims_first_when_starting_then_this_one_stands_down(world: World) -> None:
    def rival(_: LifecycleAction) -> None:
        # The duplicate delivery, running in another invocation, advances the stored action first.
        stored = world.only()
        world.store.save(stored.model_copy(update={"command_sent_at": T0, "command_id": "cmd-rival"}))

    world.store.before_save = rival
    [report] = world.terminate()
    assert report["step"] == "stood_down"
    assert world.commands.sent == []  # the rival's command is the only one
    assert world.metrics.counts[("LifecycleConcurrentUpdates", None)] == 1


def test_given_a_stale_token_when_completing_then_it_counts_as_already_done(world: World) -> None:
    world.terminate()
    world.hooks.active.clear()  # Auto Scaling timed it out, or someone completed it by hand
    world.commands.finish("cmd-1", "Success")
    [report] = world.command_status("cmd-1", "Success", T0 + 30)
    assert report["outcome"] == "already_done" and "error" not in report
    assert world.only().state is ActionState.COMPLETED
    assert world.metrics.counts[("LifecycleActionsAlreadyDone", None)] == 1
    assert world.metrics.counts[("LifecycleErrors", None)] == 0


def test_given_a_stale_token_when_heartbeating_then_it_is_done_without_completing(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.hooks.active.add("tok-L")
    world.launch()
    world.hooks.active.clear()
    with caplog.at_level(logging.INFO):
        [report] = world.reconcile(T0 + 60)  # a heartbeat is due before the next run
    assert report["outcome"] == "already_done"
    assert world.hooks.completed == {} and world.hooks.heartbeats == []
    # The heartbeat was the step that found it done: the invocation's record says so.
    *_, step = [r for r in caplog.records if r.getMessage() == "lifecycle step"]
    assert (step.step, step.reason) == ("wait", "heartbeat")  # type: ignore[attr-defined]


def test_given_a_long_drain_when_the_reconciler_runs_then_it_heartbeats_and_keeps_waiting(world: World) -> None:
    world.terminate()
    [report] = world.reconcile(T0 + 60)  # terminate hook timeout 160 s: a third is 53 s
    assert report["step"] == "wait"
    assert world.hooks.heartbeats == ["tok-1"]
    assert world.only().last_heartbeat_at == T0 + 60


def test_given_a_throttled_heartbeat_when_a_check_is_due_then_the_check_still_starts(world: World) -> None:
    world.launch()
    world.commands.finish("cmd-1", "Success", "health=starting")
    world.hooks.fail = Throttled("RecordLifecycleActionHeartbeat", "Throttling")
    [report] = world.reconcile(T0 + 60)
    assert report["step"] == "run_command" and len(world.commands.sent) == 2
    assert world.only().last_heartbeat_at == T0  # the next run sends it
    assert world.metrics.counts[("LifecycleErrors", None)] == 1


def test_given_a_drain_past_its_deadline_when_the_reconciler_runs_then_it_is_forced_and_counted(world: World) -> None:
    world.terminate()
    [report] = world.reconcile(T0 + 60 + RELEASE_MARGIN_SECONDS + 30)
    assert report["outcome"] == "forced"
    assert world.hooks.completed == {"tok-1": HookResult.ABANDON}
    assert world.metrics.counts[("LifecycleActionsForced", None)] == 1


def test_given_a_drain_that_failed_when_its_status_arrives_then_the_configured_result_and_a_failure_count(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.terminate()
    world.commands.finish("cmd-1", "Failed", "exit=137\njob j-7 released at deadline")
    [report] = world.command_status("cmd-1", "Failed", T0 + 70)
    assert report["outcome"] == "failed"
    assert world.hooks.completed == {"tok-1": HookResult.ABANDON}
    assert world.metrics.counts[("LifecycleActionsFailed", None)] == 1
    assert world.metrics.counts[("LaunchesAbandoned", None)] == 0  # a drain, not a launch: that alarm stays quiet
    [record] = [r for r in caplog.records if r.getMessage() == "lifecycle action completed unsuccessfully"]
    assert record.output == ["exit=137", "job j-7 released at deadline"]  # type: ignore[attr-defined]


def test_given_a_throttled_completion_when_advanced_then_it_stays_pending_and_the_next_run_completes(
    world: World,
) -> None:
    world.terminate()
    world.commands.finish("cmd-1", "Success")
    world.hooks.fail = Throttled("CompleteLifecycleAction", "Throttling")
    [report] = world.command_status("cmd-1", "Success", T0 + 10)
    assert report["step"] == "error" and world.only().state is ActionState.PENDING
    assert world.metrics.counts[("LifecycleErrors", None)] == 1
    world.hooks.fail = None
    [report] = world.reconcile(T0 + 20)
    assert report["outcome"] == "succeeded" and world.hooks.completed == {"tok-1": HookResult.CONTINUE}


def test_given_an_instance_that_cannot_take_commands_when_draining_then_it_fails_at_once_naming_the_error(
    world: World,
) -> None:
    world.commands.fail_send = AwsCallError("SendCommand", "InvalidInstanceId")
    [report] = world.terminate()
    assert report["outcome"] == "failed"
    assert report["reason"] == "drain could not start: SendCommand: InvalidInstanceId"
    assert world.only().command_error == "SendCommand: InvalidInstanceId"
    assert world.hooks.completed == {"tok-1": HookResult.ABANDON}
    assert world.metrics.counts[("LifecycleErrors", None)] == 1


def test_given_a_new_instance_whose_ssm_agent_is_not_registered_when_checked_then_it_waits_and_nothing_pages(
    world: World,
) -> None:
    world.commands.fail_send = AwsCallError("SendCommand", "InvalidInstanceId")
    [report] = world.launch()
    assert report["step"] == "run_command" and "outcome" not in report
    assert world.only().command_sent_at == T0 and world.hooks.completed == {}
    assert world.metrics.counts[("LifecycleErrors", None)] == 0  # the LifecycleErrors alarm stays quiet
    world.commands.fail_send = None  # the agent registered
    assert world.reconcile(T0 + 10)[0]["step"] == "wait"  # within the retry spacing
    assert world.reconcile(T0 + 30)[0]["step"] == "run_command"
    assert [parse_comment(request.comment).purpose for _, _, request in world.commands.sent] == ["health"]


def test_given_a_throttled_send_when_draining_then_the_claim_is_kept_and_retried_after_the_spacing(
    world: World,
) -> None:
    world.commands.fail_send = Throttled("SendCommand", "ThrottlingException")
    [report] = world.terminate()
    assert report["step"] == "run_command" and world.only().command_sent_at == T0
    world.commands.fail_send = None
    assert world.reconcile(T0 + 10)[0]["step"] == "wait"  # within the retry spacing
    assert world.reconcile(T0 + 30)[0]["step"] == "run_command"
    assert len(world.commands.sent) == 1


def test_given_a_launch_when_the_container_turns_healthy_then_continue(world: World) -> None:
    world.launch()
    [(command_id, _, command)] = world.commands.sent
    assert command.comment.startswith("queue-scaler health")
    world.commands.finish(command_id, "Success", "health=healthy")
    [report] = world.command_status(command_id, "Success", T0 + 50)
    assert report["outcome"] == "succeeded" and world.hooks.completed == {"tok-L": HookResult.CONTINUE}


def test_given_a_launch_never_healthy_when_the_deadline_passes_then_abandon_with_its_logs(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.launch()
    world.commands.finish("cmd-1", "Success", "health=unhealthy\nerror: queue not found")
    world.command_status("cmd-1", "Success", T0 + 60)  # not healthy yet: another check starts
    assert len(world.commands.sent) == 2 and world.only().last_output.startswith("health=unhealthy")
    [report] = world.reconcile(T0 + 300)
    assert report["outcome"] == "failed"
    assert world.hooks.completed == {"tok-L": HookResult.ABANDON}
    assert world.metrics.counts[("LaunchesAbandoned", None)] == 1
    [record] = [r for r in caplog.records if r.getMessage() == "lifecycle action completed unsuccessfully"]
    assert record.output == ["health=unhealthy", "error: queue not found"]  # type: ignore[attr-defined]


def test_given_an_event_for_another_group_when_handled_then_it_is_ignored(world: World) -> None:
    [report] = world.handle("terminate.json", T0, AutoScalingGroupName="someone-elses")
    assert report["step"] == "ignored" and world.commands.sent == [] and world.store.items == {}


def test_given_a_spot_warning_for_an_instance_outside_our_groups_when_handled_then_nothing_is_drained(
    world: World,
) -> None:
    [report] = world.handle("spot-interruption.json", T0, **{"instance-id": "i-not-ours"})
    assert report["step"] == "ignored" and world.commands.sent == []


def test_given_a_spot_warning_when_handled_then_the_drain_starts_at_once_within_the_notice(world: World) -> None:
    [report] = world.handle("spot-interruption.json", T0, **{"instance-id": INSTANCE})
    assert report["step"] == "run_command"
    [(_, _, command)] = world.commands.sent
    # The worker learns the notice's end (the event's time + 120 s), then SIGTERM.
    assert command.comment == "queue-scaler spot queue-worker 120"
    assert 'docker stop --time "$left"' in "\n".join(command.script)
    world.commands.finish("cmd-1", "Success")
    [done] = world.command_status("cmd-1", "Success", T0 + 80)
    assert done["outcome"] == "succeeded" and world.hooks.completed == {}  # no hook to complete


def test_given_a_rebalance_recommendation_when_handled_then_the_instance_is_recorded_as_leaving(world: World) -> None:
    [report] = world.handle("rebalance-recommendation.json", T0, **{"instance-id": INSTANCE})
    assert report == {
        "instance_id": INSTANCE,
        "action": "rebalance",
        "step": "none",
        "reason": "rebalance recommended: the instance is leaving",
        "outcome": "noted",
    }
    assert world.only().kind == "rebalance" and world.commands.sent == []
    assert world.metrics.counts[("RebalanceRecommendations", None)] == 1


def test_given_a_status_event_of_another_command_when_handled_then_nothing_happens_and_it_is_logged_as_such(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    unmatched = "command status for no pending action"
    world.terminate()
    with caplog.at_level(logging.INFO):
        assert world.command_status("not-ours", "Success", T0 + 1) == []
        assert [r.command_id for r in caplog.records if r.getMessage() == unmatched] == ["not-ours"]  # type: ignore[attr-defined]
        caplog.clear()
        world.commands.finish("cmd-1", "Success")
        [report] = world.command_status("cmd-1", "Success", T0 + 2)
    assert report["outcome"] == "succeeded"
    assert [r for r in caplog.records if r.getMessage() == unmatched] == []  # its own command: not "no action"


def test_given_pool_timings_in_json_when_settings_load_then_each_pool_drains_for_its_own_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POOL_TIMINGS", '{"video": {"drain_seconds": 900, "terminate_hook_timeout_seconds": 1840}}')
    settings = LifecycleSettings(actions_table="t", group_names="video,ai")  # type: ignore[arg-type]
    policy = settings.policy()
    assert (policy.drain_seconds_for("video"), policy.hook_timeout(ActionKind.TERMINATE, "video")) == (900, 1840)
    assert (policy.drain_seconds_for("ai"), policy.hook_timeout(ActionKind.TERMINATE, "ai")) == (60, 160)


def test_given_comma_separated_groups_when_settings_load_then_each_is_a_group() -> None:
    settings = LifecycleSettings(actions_table="t", group_names=" a, b ,,c")  # type: ignore[arg-type]
    assert settings.group_names == frozenset({"a", "b", "c"})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"group_names": ""}, "group_names"),
        ({"group_names": "a", "terminate_hook_timeout_seconds": 60}, "terminate_hook_timeout_seconds"),
        (
            {"group_names": "a", "pool_timings": {"a": {"drain_seconds": 900, "terminate_hook_timeout_seconds": 60}}},
            r"pool_timings\[a\]\.terminate_hook_timeout_seconds",
        ),
        (
            # 100 x 61 s of heartbeats cannot cover a two-hour drain.
            {"group_names": "a", "pool_timings": {"a": {"drain_seconds": 7200, "terminate_hook_timeout_seconds": 61}}},
            rf"pools\[a\]: a drain of {7200 + RELEASE_MARGIN_SECONDS + 30} s outlasts its terminate hook's "
            r"maximum 6100 s",
        ),
    ],
    ids=[
        "no-groups",
        "hook-within-a-reconcile",
        "pool-hook-within-a-reconcile",
        "pool-drain-beyond-hook-maximum",
    ],
)
def test_given_unsafe_settings_when_loaded_then_they_are_rejected_naming_the_field(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        LifecycleSettings(actions_table="t", **fields)


def test_given_a_completed_action_when_reconciling_then_it_is_not_touched(world: World) -> None:
    world.terminate()
    world.commands.finish("cmd-1", "Success")
    world.command_status("cmd-1", "Success", T0 + 5)
    assert world.reconcile(T0 + 10_000) == []
    assert world.only().outcome is Outcome.SUCCEEDED


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_given_an_event_sent_a_while_ago_when_handled_then_it_is_dated_from_it_and_its_window_from_the_drain(
    world: World,
) -> None:
    world.hooks.active.add("tok-1")
    raw = event("lifecycle", "terminate.json")
    raw["time"] = iso(T0 - 50)
    raw["detail"] |= {"LifecycleActionToken": "tok-1", "AutoScalingGroupName": GROUP, "EC2InstanceId": INSTANCE}
    world.service.handle(LifecycleTrigger.model_validate(raw).root, T0)
    action = world.only()
    # The hook's timer started with the event; the drain's window starts when the drain is sent.
    assert (action.started_at, action.deadline) == (T0 - 50, T0 + 60 + RELEASE_MARGIN_SECONDS + 30)


def test_given_an_event_time_ahead_of_our_clock_when_handled_then_it_is_dated_now(world: World) -> None:
    world.hooks.active.add("tok-1")
    raw = event("lifecycle", "terminate.json")
    raw["time"] = iso(T0 + 3600)
    raw["detail"] |= {"LifecycleActionToken": "tok-1", "AutoScalingGroupName": GROUP, "EC2InstanceId": INSTANCE}
    world.service.handle(LifecycleTrigger.model_validate(raw).root, T0)
    assert world.only().deadline == T0 + 60 + RELEASE_MARGIN_SECONDS + 30


def lost_terminate_event(world: World) -> None:
    """The instance waits at its terminate hook; the event about it never arrived."""
    world.hooks.held.append(WaitingInstance(INSTANCE, GROUP, "Terminating:Wait"))
    world.hooks.hooks[GROUP, "autoscaling:EC2_INSTANCE_TERMINATING"] = "terminate"
    world.hooks.active.add(INSTANCE)  # found by its instance id: there is no token


def test_given_a_lost_terminate_event_when_reconciled_then_the_instance_is_found_drained_and_completed(
    world: World,
) -> None:
    lost_terminate_event(world)
    [report] = world.reconcile(T0)
    assert report["step"] == "run_command"
    # Its hook's timer started at an unknown time: heartbeated at once.
    assert world.hooks.heartbeats == [INSTANCE]
    assert world.metrics.counts[("LifecycleActionsDiscovered", None)] == 1
    world.commands.finish("cmd-1", "Success", "exit=0")
    world.command_status("cmd-1", "Success", T0 + 5)
    assert world.hooks.completed == {INSTANCE: HookResult.CONTINUE}
    assert world.reconcile(T0 + 10) == []  # completed: not found again


def test_given_a_discovered_drain_when_the_late_event_arrives_then_no_second_drain_starts(world: World) -> None:
    lost_terminate_event(world)
    world.reconcile(T0)
    [report] = world.terminate(now=T0 + 1)
    assert report["action"] == "terminate" and len(world.commands.sent) == 1


def test_given_an_instance_waiting_at_someone_elses_hook_when_reconciled_then_it_is_left_alone(world: World) -> None:
    world.hooks.held.append(WaitingInstance(INSTANCE, GROUP, "Pending:Wait"))
    assert world.reconcile(T0) == [] and world.commands.sent == []


def test_given_a_malformed_item_when_reconciled_then_it_is_counted_and_the_others_still_advance(world: World) -> None:
    world.terminate()
    world.store.unreadable.append("i-bad/terminate#x: ValidationError: deadline: Field required")
    [report] = world.reconcile(T0 + 200)  # past the drain's deadline: forced
    assert report["outcome"] == "forced"
    assert world.metrics.counts[("LifecycleActionsUnreadable", None)] == 1


def test_given_waiting_instances_of_every_kind_when_reconciled_then_only_the_untracked_one_is_taken_up(
    world: World,
) -> None:
    """The instances already handled are passed over, and the search goes on past each of them."""
    tracked, foreign, lost = "i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2", "i-0aaaaaaaaaaaaaaa3"
    world.terminate()  # INSTANCE: drained and completed a moment ago, still listed as waiting
    world.commands.finish("cmd-1", "Success")
    world.command_status("cmd-1", "Success", T0 + 5)
    world.hooks.active.add("tok-2")  # tracked: its drain is under way
    world.handle("terminate.json", T0, LifecycleActionToken="tok-2", AutoScalingGroupName=GROUP, EC2InstanceId=tracked)
    world.hooks.hooks[GROUP, "autoscaling:EC2_INSTANCE_TERMINATING"] = "terminate"
    world.hooks.active.add(lost)
    world.hooks.held += [
        WaitingInstance(tracked, GROUP, "Terminating:Wait"),
        WaitingInstance(INSTANCE, GROUP, "Terminating:Wait"),
        WaitingInstance(foreign, GROUP, "Pending:Wait"),  # no launch hook of ours: someone else's
        WaitingInstance(lost, GROUP, "Terminating:Wait"),
    ]
    reports = world.reconcile(T0 + 10)
    assert [(r["instance_id"], r["step"]) for r in reports] == [(tracked, "wait"), (lost, "run_command")]
    assert world.metrics.counts[("LifecycleActionsDiscovered", None)] == 1
    assert [instance for _, instance, _ in world.commands.sent] == [INSTANCE, tracked, lost]


@pytest.mark.parametrize("sample", ["spot-interruption.json", "rebalance-recommendation.json"])
def test_given_a_warning_for_an_instance_of_a_group_not_ours_when_handled_then_it_is_ignored(
    world: World, sample: str
) -> None:
    world.hooks.groups["i-0ffffffffffffffff"] = "someone-elses"
    [report] = world.handle(sample, T0, **{"instance-id": "i-0ffffffffffffffff"})
    assert report == {
        "instance_id": "i-0ffffffffffffffff",
        "action": "-",
        "step": "ignored",
        "reason": "not an instance of this stack's groups",
    }
    assert world.store.items == {} and world.commands.sent == []


def test_given_two_pending_drains_when_reconciled_then_both_are_counted_as_pending(world: World) -> None:
    world.terminate()
    world.hooks.active.add("tok-2")
    other = {"LifecycleActionToken": "tok-2", "AutoScalingGroupName": GROUP, "EC2InstanceId": "i-0bbbbbbbbbbbbbbb1"}
    world.handle("terminate.json", T0, **other)
    world.reconcile(T0 + 1)
    assert world.metrics.counts[("LifecycleActionsPending", None)] == 2


def _failing(operation: str) -> Any:
    def fail(*_: object) -> None:
        raise Throttled(operation, "Throttling")

    return fail


@pytest.mark.parametrize(
    ("name", "failing", "act"),
    [
        ("given the pending actions unreadable when reconciling", "store.pending", "reconcile"),
        ("given the actions unreadable when a hook event arrives", "store.for_instance", "terminate"),
        ("given the actions unreadable when a command status arrives", "store.for_instance", "status"),
        ("given the action not recorded when a hook event arrives", "store.create", "terminate"),
        ("given the group lookup failing when a spot warning arrives", "hooks.group_of", "spot"),
        ("given the group lookup failing when a rebalance arrives", "hooks.group_of", "rebalance"),
    ],
)
def test_given_a_failed_aws_read_then_the_error_is_counted_and_raised_for_the_event_to_be_retried(
    world: World, monkeypatch: pytest.MonkeyPatch, name: str, failing: str, act: str
) -> None:
    port, method = failing.split(".")
    monkeypatch.setattr(getattr(world, port), method, _failing(method))
    run = {
        "reconcile": lambda: world.reconcile(T0),
        "terminate": world.terminate,
        "status": lambda: world.command_status("cmd-1", "Success", T0),
        "spot": lambda: world.handle("spot-interruption.json", T0, **{"instance-id": INSTANCE}),
        "rebalance": lambda: world.handle("rebalance-recommendation.json", T0, **{"instance-id": INSTANCE}),
    }[act]
    with pytest.raises(Throttled):
        run()
    assert world.metrics.counts[("LifecycleErrors", None)] == 1, name


def test_given_waiting_instances_unreadable_when_reconciling_then_pending_actions_still_advance_and_it_is_counted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.terminate()
    monkeypatch.setattr(world.hooks, "waiting", _failing("DescribeAutoScalingInstances"))
    [report] = world.reconcile(T0 + 200)  # past the drain's deadline: forced, although discovery failed
    assert report["outcome"] == "forced"
    assert world.metrics.counts[("LifecycleErrors", None)] == 1


def test_given_a_drain_completed_when_logged_then_the_record_names_the_hooks_result_and_the_outcome(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.terminate()
    world.commands.finish("cmd-1", "Success", "exit=0")
    with caplog.at_level(logging.INFO):
        world.command_status("cmd-1", "Success", T0 + 5)
    [record] = [r for r in caplog.records if r.getMessage() == "lifecycle action completed"]
    fields = {key: getattr(record, key) for key in ("instance_id", "action", "group", "result", "outcome")}
    assert fields == {
        "instance_id": INSTANCE,
        "action": "terminate#tok-1",
        "group": GROUP,
        "result": "CONTINUE",
        "outcome": "succeeded",
    }


def test_given_the_actions_table_unreadable_when_the_reconciler_runs_then_waiting_instances_still_drain_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.hooks.held = [WaitingInstance(INSTANCE, GROUP, "Terminating:Wait")]
    world.hooks.hooks[(GROUP, "autoscaling:EC2_INSTANCE_TERMINATING")] = "terminate"
    world.hooks.active.add(INSTANCE)  # found without its event: answered by instance id
    unavailable = Throttled("Scan", "ProvisionedThroughputExceededException")
    monkeypatch.setattr(world.store, "pending", lambda: (_ for _ in ()).throw(unavailable))
    for now in (T0, T0 + 60):
        with pytest.raises(Throttled):
            world.reconcile(now)
    [(command_id, instance, _)] = world.commands.sent  # one drain, found again by the second run
    assert instance == INSTANCE and world.hooks.heartbeats == [INSTANCE, INSTANCE]
    assert world.hooks.completed == {}  # the drain still runs: the hook waits for it
    world.commands.finish(command_id, "Success", "exit=0")
    with pytest.raises(Throttled):
        world.reconcile(T0 + 120)
    assert world.hooks.completed == {INSTANCE: HookResult.CONTINUE}
    assert world.metrics.counts[("DrainsUnrecorded", None)] == 1


SWEEP_AT = T0 - T0 % 300 + 300  # the first reconciler run of a sweep period


@pytest.mark.parametrize(
    ("answer", "marked"),
    [
        ("health=healthy\nrestarts=0", False),
        ("health=starting\nrestarts=0\nbooting", False),  # a container starting up is left alone
        ("health=unhealthy\nrestarts=0\nQueueDoesNotExist", True),
        ("health=missing\nrestarts=0", True),
        ("health=starting\nrestarts=4\nTraceback", True),  # a crash loop
    ],
    ids=["healthy", "starting", "unhealthy", "gone", "crash-loop"],
)
def test_given_a_worker_in_service_when_the_sweep_answers_then_only_a_failed_one_is_marked_unhealthy(
    world: World, answer: str, marked: bool
) -> None:
    assert world.reconcile(SWEEP_AT - 60) == [] and world.commands.sent == []  # not a sweep run
    world.reconcile(SWEEP_AT)
    [(command_id, instance, request)] = world.commands.sent
    assert instance == INSTANCE and parse_comment(request.comment).purpose == "sweep"
    world.commands.finish(command_id, "Success", answer)
    reports = world.command_status(command_id, "Success", SWEEP_AT + 5)
    assert world.hooks.unhealthy == ([INSTANCE] if marked else [])
    assert [r["step"] for r in reports] == (["unhealthy"] if marked else [])
    assert world.metrics.counts[("WorkersMarkedUnhealthy", None)] == (1 if marked else 0)
    assert world.metrics.counts[("LifecycleErrors", None)] == 0


def test_given_a_sweep_answer_for_an_instance_of_another_group_when_handled_then_it_is_ignored(world: World) -> None:
    world.reconcile(SWEEP_AT)
    [(command_id, _, _)] = world.commands.sent
    world.commands.finish(command_id, "Success", "health=unhealthy\nrestarts=0")
    world.hooks.groups.clear()  # the event names an instance that is not (any longer) one of ours
    [report] = world.command_status(command_id, "Success", SWEEP_AT + 5)
    assert report["step"] == "ignored" and world.hooks.unhealthy == []
