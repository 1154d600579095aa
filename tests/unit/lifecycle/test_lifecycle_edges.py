"""Lifecycle rules at their edges: which SSM statuses are still running, a hook's global maximum, the
drain windows a policy refuses, and how actions are keyed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS
from queue_scaler.lifecycle.domain.lifecycle import (
    HOOK_GLOBAL_TIMEOUT_FACTOR,
    ActionKind,
    CommandObservation,
    LifecyclePolicy,
    PoolTimings,
    StepKind,
    hook_maximum,
    new_action,
    next_step,
)

BASE: dict[str, Any] = {
    "container": "queue-worker",
    "drain_seconds": 60,
    "drain_grace_seconds": 30,
    "launch_timeout_seconds": 300,
    "launch_hook_timeout_seconds": 300,
    "terminate_hook_timeout_seconds": 160,
    "reconcile_period_seconds": 60,
    "health_wait_seconds": 60,
    "command_retry_seconds": 30,
}


@pytest.mark.parametrize(
    ("status", "running", "succeeded"),
    [
        ("Pending", True, False),
        ("InProgress", True, False),
        ("Delayed", True, False),
        ("Cancelling", True, False),
        ("Success", False, True),
        ("Failed", False, False),
        ("TimedOut", False, False),
        ("Cancelled", False, False),
        ("Undeliverable", False, False),
        ("Terminated", False, False),
        ("DeliveryTimedOut", False, False),
        ("ExecutionTimedOut", False, False),
    ],
)
def test_given_an_ssm_status_then_it_is_running_finished_or_succeeded(
    status: str, running: bool, succeeded: bool
) -> None:
    observed = CommandObservation(status=status)
    assert (observed.running, observed.succeeded) == (running, succeeded)


@pytest.mark.parametrize(
    ("heartbeat_timeout", "maximum"),
    [(30, 3000), (1727, 172_700), (1728, 172_800), (1729, 172_800), (7200, 172_800)],
)
def test_a_hook_waits_at_most_100_heartbeat_timeouts_or_48_hours(heartbeat_timeout: float, maximum: float) -> None:
    assert HOOK_GLOBAL_TIMEOUT_FACTOR == 100
    assert hook_maximum(heartbeat_timeout) == maximum


@pytest.mark.parametrize(
    ("case", "changes", "fits"),
    [
        # The drain, Docker's SIGKILL the release margin later, and the grace: 15,970 - margin + margin + 30.
        (
            "the default drain exactly at its hook's maximum",
            {"drain_seconds": 15_970 - RELEASE_MARGIN_SECONDS, "drain_grace_seconds": 30},
            True,
        ),
        ("one second over", {"drain_seconds": 15_971 - RELEASE_MARGIN_SECONDS, "drain_grace_seconds": 30}, False),
        ("the grace counts too", {"drain_seconds": 15_970 - RELEASE_MARGIN_SECONDS, "drain_grace_seconds": 31}, False),
    ],
)
def test_given_a_drain_window_then_it_must_fit_its_terminate_hooks_maximum(
    case: str, changes: dict[str, Any], fits: bool
) -> None:
    values = BASE | changes  # terminate hook 160 s: at most 16,000 s of heartbeats
    if fits:
        assert LifecyclePolicy(**values).drain_seconds == changes["drain_seconds"], case
        return
    with pytest.raises(
        ValidationError, match=r"drain_seconds: a drain of \d+ s outlasts its terminate hook's maximum 16000 s"
    ):
        LifecyclePolicy(**values)


def test_given_a_pool_then_its_own_drain_and_hook_are_used_and_others_keep_the_defaults() -> None:
    policy = LifecyclePolicy(
        **BASE, pools={"video": PoolTimings(drain_seconds=600, terminate_hook_timeout_seconds=300)}
    )
    assert (policy.drain_seconds_for("video"), policy.drain_seconds_for("other")) == (600, 60)
    assert policy.hook_timeout(ActionKind.TERMINATE, "video") == 300
    assert policy.hook_timeout(ActionKind.TERMINATE, "other") == 160
    assert policy.hook_timeout(ActionKind.LAUNCH, "video") == 300  # launches use the launch hook
    assert policy.hook_timeout(ActionKind.SPOT, "video") == 300
    drain = new_action(ActionKind.TERMINATE, "i-1", "video", 1000.0, policy, hook="h", token="t")
    assert drain.deadline == 1000.0 + 600 + RELEASE_MARGIN_SECONDS + 30


@pytest.mark.parametrize(
    ("kind", "token", "key", "is_drain"),
    [
        (ActionKind.LAUNCH, "tok-L", "launch#tok-L", False),
        (ActionKind.TERMINATE, "tok-T", "terminate#tok-T", True),
        (ActionKind.TERMINATE, None, "terminate", True),  # found by the reconciler: no token
        (ActionKind.SPOT, None, "spot", True),
        (ActionKind.REBALANCE, None, "rebalance", False),
    ],
)
def test_given_an_action_then_its_key_and_whether_it_drains(
    kind: ActionKind, token: str | None, key: str, is_drain: bool
) -> None:
    policy = LifecyclePolicy(**BASE)
    hook = "h" if kind in (ActionKind.LAUNCH, ActionKind.TERMINATE) else None
    action = new_action(kind, "i-1", "video", 1000.0, policy, hook=hook, token=token)
    assert (action.key, action.is_drain) == (key, is_drain)


@pytest.mark.parametrize(
    ("kind", "window"),
    [(ActionKind.LAUNCH, 300), (ActionKind.TERMINATE, 60 + RELEASE_MARGIN_SECONDS + 30), (ActionKind.SPOT, 120)],
)
def test_given_an_event_then_the_deadline_is_its_time_plus_the_window_and_a_discovered_one_heartbeats_at_once(
    kind: ActionKind, window: float
) -> None:
    policy = LifecyclePolicy(**BASE)
    hook = None if kind is ActionKind.SPOT else "h"
    action = new_action(kind, "i-1", "video", 1000.0, policy, hook=hook, token="t")
    assert (action.started_at, action.deadline, action.last_heartbeat_at) == (1000.0, 1000.0 + window, 1000.0)
    found = new_action(kind, "i-1", "video", 1000.0, policy, hook=hook, discovered=True)
    assert found.last_heartbeat_at == 1000.0 - policy.hook_timeout(kind, "video")


def test_given_a_pool_with_its_own_drain_when_its_drain_starts_then_docker_stop_gets_the_pools_window() -> None:
    policy = LifecyclePolicy(
        **BASE, pools={"video": PoolTimings(drain_seconds=600, terminate_hook_timeout_seconds=300)}
    )
    for group, window in (("video", 600), ("other", 60)):
        drain = new_action(ActionKind.TERMINATE, "i-1", group, 1000.0, policy, hook="h", token="t")
        step = next_step(drain, None, 1000.0, policy)
        assert step.kind is StepKind.RUN_COMMAND and step.command is not None, group
        assert step.command.comment == f"queue-scaler drain queue-worker {window}", group
        assert step.command.execution_timeout_seconds == window + RELEASE_MARGIN_SECONDS + 60, group


@pytest.mark.parametrize(
    ("name", "group", "elapsed", "heartbeat"),
    [
        # The pool's terminate hook waits 300 s: heartbeats at most 100 s apart, never within half of that.
        ("given the pool's long hook when 49 s passed then no heartbeat yet", "video", 49, False),
        ("given the pool's long hook when 50 s passed then a heartbeat", "video", 50, True),
        # The default hook waits 160 s: at most 53 s apart, due at half of that since a run is 60 s.
        ("given the default hook when 26 s passed then no heartbeat yet", "other", 26, False),
        ("given the default hook when 27 s passed then a heartbeat", "other", 27, True),
    ],
)
def test_given_a_pool_with_its_own_hook_timeout_when_its_drain_runs_then_heartbeats_follow_that_timeout(
    name: str, group: str, elapsed: float, heartbeat: bool
) -> None:
    policy = LifecyclePolicy(
        **BASE, pools={"video": PoolTimings(drain_seconds=600, terminate_hook_timeout_seconds=300)}
    )
    drain = new_action(ActionKind.TERMINATE, "i-1", group, 1000.0, policy, hook="h", token="t")
    drain = drain.model_copy(update={"command_id": "cmd-1", "command_sent_at": 1000.0})
    step = next_step(drain, CommandObservation(status="InProgress"), 1000.0 + elapsed, policy)
    assert (step.kind, step.heartbeat) == (StepKind.WAIT, heartbeat), name
