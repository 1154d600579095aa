"""What the lifecycle service returns for each action (its reports, whole) and what it writes: an action
is saved only when it changed; a command status it cannot read leaves the drain waiting, counted."""

from __future__ import annotations

import pytest

from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS
from queue_scaler.shared.errors import Throttled
from tests.unit.lifecycle.test_lifecycle_service import INSTANCE, T0, World, _failing, world  # noqa: F401 - the fixture

TERMINATE = "terminate#tok-1"
GONE = "Auto Scaling had no active action for the token"


def report(step: str, reason: str, action: str = TERMINATE, **more: str) -> dict[str, object]:
    """One action's report as the handler returns it."""
    return {"instance_id": INSTANCE, "action": action, "step": step, "reason": reason, **more}


def test_given_a_drain_under_way_then_its_reports_carry_no_outcome_until_it_completes(world: World) -> None:  # noqa: F811
    assert world.terminate() == [report("run_command", "drain queue-worker: SIGTERM, jobs may run 60 s")]
    assert world.reconcile(T0 + 10) == [report("wait", "drain running (InProgress)")]
    world.commands.finish("cmd-1", "Success", "exit=0")
    assert world.command_status("cmd-1", "Success", T0 + 20) == [
        report("complete", "drain finished in 20 s", outcome="succeeded")
    ]


def test_given_a_stale_token_when_completing_then_the_report_says_auto_scaling_had_no_action(world: World) -> None:  # noqa: F811
    world.terminate()
    world.hooks.active.clear()
    world.commands.finish("cmd-1", "Success")
    assert world.command_status("cmd-1", "Success", T0 + 30) == [report("complete", GONE, outcome="already_done")]


def test_given_a_stale_token_when_heartbeating_then_the_report_says_so_at_the_wait(world: World) -> None:  # noqa: F811
    world.launch()
    world.hooks.active.clear()
    assert world.reconcile(T0 + 60) == [report("wait", GONE, "launch#tok-L", outcome="already_done")]


def test_given_a_throttled_completion_then_the_report_names_the_error(world: World) -> None:  # noqa: F811
    world.terminate()
    world.commands.finish("cmd-1", "Success")
    world.hooks.fail = Throttled("CompleteLifecycleAction", "Throttling")
    assert world.command_status("cmd-1", "Success", T0 + 10) == [
        report("error", "step failed", error="CompleteLifecycleAction: Throttling")
    ]


def test_given_a_rival_invocation_first_then_the_report_says_this_one_stood_down(world: World) -> None:  # noqa: F811
    def rival(_: object) -> None:
        world.store.save(world.only().model_copy(update={"command_sent_at": T0, "command_id": "cmd-rival"}))

    world.store.before_save = rival
    assert world.terminate() == [
        report("stood_down", f"lifecycle action {TERMINATE} of {INSTANCE} changed under this invocation")
    ]


def test_given_a_drain_with_nothing_new_when_reconciled_then_the_action_is_not_written(world: World) -> None:  # noqa: F811
    """A write per waiting action and run would cost and make a rival invocation's conditional save fail."""
    world.terminate()
    before = world.only()
    assert world.reconcile(T0 + 10) == [report("wait", "drain running (InProgress)")]  # no heartbeat due yet
    assert world.only() == before


def test_given_a_throttled_send_then_the_action_is_written_for_its_record_and_its_claim_only(world: World) -> None:  # noqa: F811
    """The claim stands as it was saved before the send; the failed send changes nothing more to write."""
    world.commands.fail_send = Throttled("SendCommand", "ThrottlingException")
    world.terminate()
    assert world.only().version == 2  # created (1), claimed (2)
    assert world.reconcile(T0 + 10)[0]["step"] == "wait"  # within the retry spacing: nothing new
    assert world.only().version == 2


def test_given_the_command_status_unreadable_when_reconciled_then_the_drain_waits_and_the_error_is_counted(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world.terminate()
    monkeypatch.setattr(world.commands, "observe", _failing("GetCommandInvocation"))
    assert world.reconcile(T0 + 10) == [report("wait", "drain running (unknown)")]
    assert world.metrics.counts[("LifecycleErrors", None)] == 1
    [forced] = world.reconcile(
        T0 + 60 + RELEASE_MARGIN_SECONDS + 30
    )  # unknown still at the deadline: forced, not left waiting
    assert forced["outcome"] == "forced"
