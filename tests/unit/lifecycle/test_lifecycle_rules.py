"""The lifecycle step rules (lifecycle/domain/lifecycle.py), one named Given/When/Then case each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from queue_scaler.lifecycle.domain.commands import drain_command, spot_drain_command
from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS
from queue_scaler.lifecycle.domain.lifecycle import (
    SPOT_NOTICE_SECONDS,
    ActionKind,
    ActionState,
    CommandNotSent,
    CommandObservation,
    CommandSent,
    CompleteHook,
    Done,
    HeartbeatAnswered,
    HookCompleted,
    HookResult,
    Input,
    LifecycleAction,
    LifecyclePolicy,
    Observed,
    Outcome,
    RunCommand,
    SendHeartbeat,
    StepKind,
    Wait,
    apply,
    new_action,
    next_step,
)

T0 = 1000.0
POLICY = LifecyclePolicy(
    container="queue-worker",
    drain_seconds=60,
    drain_grace_seconds=30,
    launch_timeout_seconds=300,
    launch_hook_timeout_seconds=300,
    terminate_hook_timeout_seconds=600,
    reconcile_period_seconds=60,
    health_wait_seconds=60,
    command_retry_seconds=30,
    drain_failed_result=HookResult.ABANDON,
)


def action(kind: ActionKind = ActionKind.TERMINATE, **fields: Any) -> LifecycleAction:
    """An action that started at T0, updated with `fields`."""
    token = None if kind in (ActionKind.SPOT, ActionKind.REBALANCE) else "tok-1"
    base = new_action(kind, "i-1", "video", T0, POLICY, hook="h" if token else None, token=token)
    return base.model_copy(update=fields)


def running(**fields: Any) -> dict[str, Any]:
    return {"command_id": "cmd-1", "command_sent_at": T0} | fields


def seen(status: str, output: str = "") -> CommandObservation:
    return CommandObservation(status=status, output=output)


@dataclass
class Case:
    name: str
    action: LifecycleAction
    observed: CommandObservation | None
    now: float
    kind: StepKind
    result: HookResult | None = None
    outcome: Outcome | None = None
    heartbeat: bool = False
    reason: str = ""


CASES = [
    # Drains (terminate hook, Spot warning)
    Case(
        "given_a_new_terminate_action_when_advanced_then_the_drain_starts",
        action(),
        None,
        T0,
        StepKind.RUN_COMMAND,
        reason="drain queue-worker: SIGTERM, jobs may run 60 s",
    ),
    Case(
        "given_a_running_drain_and_a_fresh_heartbeat_when_advanced_then_it_waits",
        action(**running()),
        seen("InProgress"),
        T0 + 10,
        StepKind.WAIT,
        reason="drain running (InProgress)",
    ),
    Case(
        "given_a_running_drain_whose_status_is_unreadable_when_advanced_then_it_waits_saying_so",
        action(**running()),
        None,
        T0 + 10,
        StepKind.WAIT,
        reason="drain running (unknown)",
    ),
    Case(
        "given_a_running_drain_when_the_next_run_would_pass_a_third_of_the_hook_timeout_then_it_heartbeats",
        action(**running(deadline=T0 + 1000)),
        seen("InProgress"),
        T0 + 600 / 3 - 60,
        StepKind.WAIT,
        heartbeat=True,
    ),
    Case(
        "given_a_running_drain_when_the_next_run_is_still_inside_a_third_of_the_timeout_then_no_heartbeat",
        action(**running(deadline=T0 + 1000)),
        seen("InProgress"),
        T0 + 600 / 3 - 61,
        StepKind.WAIT,
    ),
    Case(
        "given_a_drain_that_succeeded_when_advanced_then_continue",
        action(**running()),
        seen("Success", "exit=0"),
        T0 + 42,
        StepKind.COMPLETE,
        HookResult.CONTINUE,
        Outcome.SUCCEEDED,
        reason="drain finished in 42 s",
    ),
    Case(
        "given_a_drain_that_failed_when_advanced_then_the_configured_result",
        action(**running()),
        seen("Failed", "exit=137"),
        T0 + 70,
        StepKind.COMPLETE,
        HookResult.ABANDON,
        Outcome.FAILED,
        reason="drain failed: command Failed",
    ),
    Case(
        "given_a_drain_that_timed_out_on_the_instance_when_advanced_then_it_failed",
        action(**running()),
        seen("TimedOut"),
        T0 + 70,
        StepKind.COMPLETE,
        HookResult.ABANDON,
        Outcome.FAILED,
    ),
    Case(
        "given_a_drain_still_running_at_its_deadline_when_advanced_then_it_is_forced",
        action(**running()),
        seen("InProgress"),
        T0 + 60 + RELEASE_MARGIN_SECONDS + 30,
        StepKind.COMPLETE,
        HookResult.ABANDON,
        Outcome.FORCED,
        reason=f"drain not finished within its {60 + RELEASE_MARGIN_SECONDS + 30} s window",
    ),
    Case(
        "given_an_unreadable_command_status_past_the_deadline_when_advanced_then_it_is_forced",
        action(**running()),
        None,
        T0 + 60 + RELEASE_MARGIN_SECONDS + 31,
        StepKind.COMPLETE,
        HookResult.ABANDON,
        Outcome.FORCED,
    ),
    Case(
        "given_a_terminate_past_its_deadline_with_no_drain_ever_sent_when_advanced_then_the_drain_is_sent",
        action(),  # its event arrived late, or the table refused its record until now
        None,
        T0 + 95,
        StepKind.RUN_COMMAND,
    ),
    Case(
        "given_a_terminate_past_its_hooks_global_timeout_with_no_drain_when_advanced_then_it_is_forced",
        action(),
        None,
        T0 + 100 * 600,
        StepKind.COMPLETE,
        HookResult.ABANDON,
        Outcome.FORCED,
    ),
    Case(
        "given_a_spot_drain_never_sent_past_the_notice_when_advanced_then_it_is_forced",
        action(ActionKind.SPOT),
        None,
        T0 + SPOT_NOTICE_SECONDS,
        StepKind.COMPLETE,
        HookResult.ABANDON,
        Outcome.FORCED,
    ),
    Case(
        "given_a_drain_whose_send_failed_for_good_when_advanced_then_it_fails_at_once",
        action(command_sent_at=T0, command_error="SendCommand: InvalidInstanceId"),
        None,
        T0 + 1,
        StepKind.COMPLETE,
        HookResult.ABANDON,
        Outcome.FAILED,
        reason="drain could not start: SendCommand: InvalidInstanceId",
    ),
    Case(
        "given_a_recent_claim_without_a_command_when_advanced_then_it_waits_for_the_claimer",
        action(command_sent_at=T0 + 5),
        None,
        T0 + 20,
        StepKind.WAIT,
    ),
    Case(
        "given_a_stale_claim_without_a_command_when_advanced_then_the_drain_is_sent_again",
        action(command_sent_at=T0),
        None,
        T0 + 30,
        StepKind.RUN_COMMAND,
    ),
    Case(
        "given_a_spot_warning_when_advanced_then_the_drain_ends_with_the_notice",
        action(ActionKind.SPOT),
        None,
        T0 + 8,
        StepKind.RUN_COMMAND,
        reason=f"drain queue-worker for a Spot notice ending in {SPOT_NOTICE_SECONDS - 8} s",
    ),
    Case(
        "given_a_spot_drain_running_long_when_advanced_then_no_heartbeat_without_a_hook",
        action(ActionKind.SPOT, **running()),
        seen("InProgress"),
        T0 + 100,
        StepKind.WAIT,
    ),
    Case(
        "given_a_spot_drain_past_the_notice_when_advanced_then_it_is_forced",
        action(ActionKind.SPOT, **running()),
        seen("InProgress"),
        T0 + SPOT_NOTICE_SECONDS,
        StepKind.COMPLETE,
        HookResult.ABANDON,
        Outcome.FORCED,
    ),
    # Launches
    Case(
        "given_a_new_launch_when_advanced_then_a_health_check_starts",
        action(ActionKind.LAUNCH),
        None,
        T0,
        StepKind.RUN_COMMAND,
        reason="check queue-worker health for up to 60 s",
    ),
    Case(
        "given_a_check_that_saw_healthy_when_advanced_then_continue",
        action(ActionKind.LAUNCH, **running()),
        seen("Success", "health=healthy\n"),
        T0 + 75,
        StepKind.COMPLETE,
        HookResult.CONTINUE,
        Outcome.SUCCEEDED,
        reason="queue-worker healthy after 75 s",
    ),
    Case(
        "given_a_check_still_waiting_on_the_instance_when_advanced_then_it_waits",
        action(ActionKind.LAUNCH, **running()),
        seen("InProgress"),
        T0 + 30,
        StepKind.WAIT,
        reason="queue-worker not healthy yet (check running)",
    ),
    Case(
        "given_a_check_that_saw_starting_when_advanced_then_another_check_starts",
        action(ActionKind.LAUNCH, **running()),
        seen("Success", "health=starting"),
        T0 + 61,
        StepKind.RUN_COMMAND,
        heartbeat=True,
    ),
    Case(
        "given_a_check_that_failed_at_once_when_advanced_then_the_retry_waits_its_spacing",
        action(ActionKind.LAUNCH, **running()),
        seen("Failed", "docker: command not found"),
        T0 + 2,
        StepKind.WAIT,
        reason="queue-worker not healthy yet (waiting to check again)",
    ),
    Case(
        "given_a_launch_near_its_deadline_when_checking_then_the_check_waits_only_until_the_deadline",
        action(ActionKind.LAUNCH, **running()),
        seen("Success", "health=starting"),
        T0 + 280,
        StepKind.RUN_COMMAND,
        heartbeat=True,
        reason="check queue-worker health for up to 20 s",
    ),
    Case(
        "given_a_launch_never_healthy_at_its_deadline_when_advanced_then_abandon_with_the_last_health",
        action(ActionKind.LAUNCH, **running()),
        seen("Success", "health=unhealthy\nTraceback"),
        T0 + 300,
        StepKind.COMPLETE,
        HookResult.ABANDON,
        Outcome.FAILED,
        reason="queue-worker never healthy within 300 s (last health: unhealthy)",
    ),
    Case(
        "given_a_launch_at_its_deadline_with_a_check_in_flight_when_advanced_then_abandon_with_the_recorded_health",
        action(ActionKind.LAUNCH, **running(last_status="Success", last_output="health=starting")),
        seen("InProgress"),
        T0 + 300,
        StepKind.COMPLETE,
        HookResult.ABANDON,
        Outcome.FAILED,
        reason="queue-worker never healthy within 300 s (last health: starting)",
    ),
    Case(
        "given_a_launch_whose_checks_never_answered_when_the_deadline_passes_then_abandon_is_forced",
        action(ActionKind.LAUNCH, command_sent_at=T0 + 250, command_error="SendCommand: InvalidInstanceId"),
        None,
        T0 + 300,
        StepKind.COMPLETE,
        HookResult.ABANDON,
        Outcome.FORCED,
        reason="no health check answered within 300 s",
    ),
    Case(
        "given_a_launch_whose_agent_is_not_registered_yet_when_the_spacing_passed_then_it_checks_again",
        action(ActionKind.LAUNCH, command_sent_at=T0, command_error="SendCommand: InvalidInstanceId"),
        None,
        T0 + 30,
        StepKind.RUN_COMMAND,
    ),
    # Done
    Case(
        "given_a_completed_action_when_advanced_then_nothing_happens",
        action(state=ActionState.COMPLETED, outcome=Outcome.SUCCEEDED),
        None,
        T0 + 5000,
        StepKind.NONE,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_step(case: Case) -> None:
    step = next_step(case.action, case.observed, case.now, POLICY)
    assert (step.kind, step.result, step.outcome, step.heartbeat) == (
        case.kind,
        case.result,
        case.outcome,
        case.heartbeat,
    )
    if case.reason:
        assert step.reason == case.reason


def test_given_a_hook_timeout_shorter_than_three_reconciler_periods_when_running_then_every_run_heartbeats() -> None:
    short = POLICY.model_copy(update={"terminate_hook_timeout_seconds": 100})
    for last in (T0, T0 + 60, T0 + 120):
        beaten = action(**running(last_heartbeat_at=last, deadline=T0 + 1000))
        assert next_step(beaten, seen("InProgress"), last + 60, short).heartbeat


def test_given_a_heartbeat_moments_ago_when_another_event_arrives_then_no_second_heartbeat() -> None:
    short = POLICY.model_copy(update={"terminate_hook_timeout_seconds": 100})
    assert not next_step(action(**running()), seen("InProgress"), T0 + 16, short).heartbeat


def test_given_a_spot_warning_when_the_drain_is_sent_then_it_carries_the_notice_end_not_the_pool_window() -> None:
    step = next_step(action(ActionKind.SPOT), None, T0 + 8, POLICY)
    assert step.command == spot_drain_command("queue-worker", T0 + SPOT_NOTICE_SECONDS, T0 + 8)


def test_given_a_terminate_action_when_the_drain_is_sent_then_it_carries_the_pool_window() -> None:
    assert next_step(action(), None, T0, POLICY).command == drain_command("queue-worker", 60)


def test_given_a_heartbeat_when_advanced_again_then_the_timer_counts_from_it() -> None:
    beaten = action(**running(last_heartbeat_at=T0 + 140))
    assert not next_step(beaten, seen("InProgress"), T0 + 150, POLICY).heartbeat


@pytest.mark.parametrize(
    ("kind", "deadline"),
    [
        (ActionKind.LAUNCH, T0 + 300),
        # The drain window, Docker's SIGKILL the release margin later, then the grace for delivery.
        (ActionKind.TERMINATE, T0 + 60 + RELEASE_MARGIN_SECONDS + 30),
        (ActionKind.SPOT, T0 + SPOT_NOTICE_SECONDS),
    ],
)
def test_given_an_event_when_recorded_then_its_deadline_is_its_window(kind: ActionKind, deadline: float) -> None:
    assert action(kind).deadline == deadline


def test_given_a_rebalance_recommendation_when_recorded_then_it_is_complete_at_once() -> None:
    note = action(ActionKind.REBALANCE)
    assert (note.state, note.outcome, note.key) == (ActionState.COMPLETED, Outcome.NOTED, "rebalance")
    assert (note.reason, note.completed_at) == ("rebalance recommended: the instance is leaving", T0)
    assert next_step(note, None, T0, POLICY).kind is StepKind.NONE


def test_given_hook_and_spot_actions_when_keyed_then_each_token_has_its_own_key() -> None:
    assert action().key == "terminate#tok-1"
    assert action(ActionKind.SPOT).key == "spot"


# --- apply: the state machine's transitions ----------------------------------------------------


@dataclass
class Transition:
    name: str
    before: LifecycleAction
    event: Input
    now: float
    after: dict[str, Any]  # fields the action must have afterwards
    commands: list[type]


DONE = CompleteHook(result=HookResult.CONTINUE, outcome=Outcome.SUCCEEDED, reason="drained", notify_hook=True)
TRANSITIONS = [
    Transition(
        "given_a_new_drain_when_observed_then_it_is_claimed_and_the_command_is_to_be_sent",
        action(),
        Observed(),
        T0 + 1,
        {"command_sent_at": T0 + 1, "command_id": None},
        [RunCommand],
    ),
    Transition(
        "given_a_late_terminate_when_its_first_drain_is_claimed_then_its_window_starts_with_the_drain",
        action(),
        Observed(),
        T0 + 95,
        {"command_sent_at": T0 + 95, "deadline": T0 + 95 + 60 + RELEASE_MARGIN_SECONDS + 30},
        [RunCommand],
    ),
    Transition(
        "given_a_drain_claimed_before_when_claimed_again_then_its_window_is_not_extended",
        action(command_sent_at=T0 + 10),  # the first send failed and is retried
        Observed(),
        T0 + 50,
        {"command_sent_at": T0 + 50, "deadline": T0 + 60 + RELEASE_MARGIN_SECONDS + 30},
        [RunCommand],
    ),
    Transition(
        "given_a_claimed_drain_when_sent_then_it_holds_the_command_id",
        action(command_sent_at=T0),
        CommandSent(command_id="cmd-9"),
        T0,
        {"command_id": "cmd-9"},
        [],
    ),
    Transition(
        "given_a_claimed_drain_when_the_send_fails_for_good_then_it_completes_failed",
        action(command_sent_at=T0),
        CommandNotSent(error="InvalidInstanceId", retryable=False),
        T0,
        {"command_error": "InvalidInstanceId"},
        [CompleteHook],
    ),
    Transition(
        "given_a_claimed_launch_when_the_send_fails_for_good_then_it_waits_to_check_again",
        action(ActionKind.LAUNCH, command_sent_at=T0),  # its SSM agent is not registered yet
        CommandNotSent(error="InvalidInstanceId", retryable=False),
        T0,
        {"state": ActionState.PENDING, "command_error": "InvalidInstanceId", "command_sent_at": T0},
        [Wait],
    ),
    Transition(
        "given_a_launch_whose_last_send_failed_when_the_next_check_is_claimed_then_the_error_is_cleared",
        action(ActionKind.LAUNCH, command_sent_at=T0, command_error="InvalidInstanceId"),
        Observed(),
        T0 + 30,
        {"command_id": None, "command_sent_at": T0 + 30, "command_error": None},
        [RunCommand],
    ),
    Transition(
        "given_a_check_that_saw_starting_when_the_next_is_claimed_then_the_claim_names_no_command_yet",
        action(ActionKind.LAUNCH, **running()),
        Observed(observation=CommandObservation(status="Success", output="health=starting")),
        T0 + 61,
        {"command_id": None, "command_sent_at": T0 + 61, "last_output": "health=starting"},
        [SendHeartbeat, RunCommand],
    ),
    Transition(
        "given_a_claimed_drain_when_the_send_is_throttled_then_the_claim_stands",
        action(command_sent_at=T0),
        CommandNotSent(error="Throttling", retryable=True),
        T0,
        {"command_sent_at": T0, "command_error": None},
        [],
    ),
    Transition(
        "given_a_finished_drain_when_observed_then_its_output_is_kept_and_the_hook_is_to_be_completed",
        action(**running()),
        Observed(observation=CommandObservation(status="Success", output="exit=0")),
        T0 + 5,
        {"last_status": "Success", "last_output": "exit=0"},
        [CompleteHook],
    ),
    Transition(
        "given_a_heartbeat_when_answered_then_its_timer_restarts",
        action(**running()),
        HeartbeatAnswered(active=True),
        T0 + 50,
        {"last_heartbeat_at": T0 + 50},
        [],
    ),
    Transition(
        "given_a_heartbeat_when_no_action_is_active_then_it_is_already_done",
        action(**running()),
        HeartbeatAnswered(active=False),
        T0 + 50,
        {
            "state": ActionState.COMPLETED,
            "result": None,
            "outcome": Outcome.ALREADY_DONE,
            "reason": "Auto Scaling had no active action for the token",
            "completed_at": T0 + 50,
        },
        [],
    ),
    Transition(
        "given_a_completion_when_accepted_then_the_action_is_completed_with_its_result",
        action(**running()),
        HookCompleted(completion=DONE, active=True),
        T0 + 6,
        {
            "state": ActionState.COMPLETED,
            "result": HookResult.CONTINUE,
            "outcome": Outcome.SUCCEEDED,
            "reason": "drained",
            "completed_at": T0 + 6,
        },
        [],
    ),
    Transition(
        "given_a_completed_action_when_anything_happens_then_nothing_changes",
        action(state=ActionState.COMPLETED, outcome=Outcome.SUCCEEDED),
        Observed(),
        T0 + 9,
        {"state": ActionState.COMPLETED, "outcome": Outcome.SUCCEEDED},
        [Done],
    ),
]


@pytest.mark.parametrize("case", TRANSITIONS, ids=[t.name for t in TRANSITIONS])
def test_apply(case: Transition) -> None:
    after, commands = apply(case.before, case.event, case.now, POLICY)
    assert {name: getattr(after, name) for name in case.after} == case.after
    assert [type(c) for c in commands] == case.commands
