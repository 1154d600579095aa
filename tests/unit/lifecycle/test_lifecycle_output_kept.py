"""What is kept of a long command output: at most 4,000 characters, its answer line and its end.

GetCommandInvocation hands over the first 24,000 characters of a command's stdout (and 8,000 of
stderr); an action keeps at most OUTPUT_KEPT_CHARS of it. The answer (`health=` / `exit=`, the first
line) is kept whatever the length, since later decisions and the failure's log line read it; the
rest is the output's end, where the worker's last log lines are.
"""

from __future__ import annotations

import logging

import pytest

from queue_scaler.lifecycle.domain.commands import health_of, kept_output
from queue_scaler.lifecycle.domain.lifecycle import (
    OUTPUT_KEPT_CHARS,
    ActionKind,
    CommandObservation,
    CommandSent,
    CompleteHook,
    LifecyclePolicy,
    Observed,
    Outcome,
    apply,
    new_action,
)
from queue_scaler.lifecycle.services.lifecycle import LifecycleService
from queue_scaler.settings import LifecycleSettings
from queue_scaler.shared.events import LifecycleTrigger
from tests.fakes import FakeActionStore, FakeCommands, FakeHooks, TimingMetrics
from tests.functional.handlers import event

T0 = 1_000_000.0
SSM_STDOUT_CHARS = 24_000


def logs(chars: int) -> str:
    """`chars` characters of numbered log lines (the last one possibly cut)."""
    text = "".join(f"log line {i:05d} of the worker\n" for i in range(chars // 20 + 1))
    return text[:chars]


@pytest.mark.parametrize(
    ("case", "output", "expected"),
    [
        ("empty", "", ""),
        ("exactly 4,000: kept whole", "x" * 4000, "x" * 4000),
        ("4,001 without an answer line: its last 4,000", "y" + "x" * 4000, "x" * 4000),
        (
            "4,001 with a health answer: the answer, then the end",
            "health=unhealthy\n" + "a" + "z" * 3983,
            "health=unhealthy\n" + "z" * 3983,
        ),
        (
            "4,001 with a drain answer",
            "exit=137\n" + "a" + "z" * 3991,
            "exit=137\n" + "z" * 3991,
        ),
        (
            "an answer line just under half the limit is kept apart",
            "health=" + "h" * 1992 + "\n" + "z" * 2001,
            "health=" + "h" * 1992 + "\n" + "z" * 2000,
        ),
        (
            "an answer line half the limit long is not kept apart",
            "health=" + "h" * 1993 + "\n" + "z" * 2001,
            ("health=" + "h" * 1993 + "\n" + "z" * 2001)[-4000:],
        ),
    ],
)
def test_given_a_command_output_then_at_most_the_limit_is_kept_answer_first(
    case: str, output: str, expected: str
) -> None:
    kept = kept_output(output, OUTPUT_KEPT_CHARS)
    assert kept == expected, case
    assert len(kept) <= OUTPUT_KEPT_CHARS, case


def test_given_ssms_whole_24000_characters_then_4000_are_kept_with_the_answer_and_the_last_line() -> None:
    output = "health=unhealthy\n" + logs(SSM_STDOUT_CHARS - 17)
    kept = kept_output(output, OUTPUT_KEPT_CHARS)
    assert len(output) == SSM_STDOUT_CHARS and len(kept) == OUTPUT_KEPT_CHARS
    assert health_of(kept) == "unhealthy"
    assert kept.endswith(output[-100:])


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
)


def test_given_a_long_failed_check_then_the_action_keeps_4000_and_the_deadline_names_its_health() -> None:
    action = new_action(ActionKind.LAUNCH, "i-1", "video", T0, POLICY, hook="h", token="t")
    action, _ = apply(action, Observed(), T0, POLICY)  # the first check is claimed
    action, _ = apply(action, CommandSent(command_id="cmd-1"), T0, POLICY)
    output = "health=unhealthy\n" + logs(SSM_STDOUT_CHARS - 17)
    action, _ = apply(action, Observed(observation=CommandObservation(status="Failed", output=output)), T0 + 65, POLICY)
    assert len(action.last_output) == OUTPUT_KEPT_CHARS
    assert action.last_output.endswith(output[-200:])
    # A later check, still running at the deadline: the reason reads the kept answer.
    action = action.model_copy(update={"command_id": "cmd-2", "command_sent_at": T0 + 100})
    running = CommandObservation(status="InProgress")
    _, [done] = apply(action, Observed(observation=running), T0 + 301, POLICY)
    assert isinstance(done, CompleteHook) and done.outcome is Outcome.FAILED
    assert "last health: unhealthy" in done.reason


def test_given_a_failed_drain_with_24000_characters_when_its_status_arrives_then_4000_are_kept_and_the_tail_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = LifecycleSettings(actions_table="t", group_names="video")  # type: ignore[arg-type]
    instance = "i-0123456789abcdef0"
    store, hooks, commands = FakeActionStore(), FakeHooks(groups={instance: "video"}), FakeCommands()
    service = LifecycleService(
        store=store,
        hooks=hooks,
        commands=commands,
        metrics=TimingMetrics(),
        policy=settings.policy(),
        groups=settings.group_names,
    )

    def handle(sample: str, **detail: str) -> None:
        raw = event("lifecycle", sample)
        raw["detail"] = raw["detail"] | detail
        service.handle(LifecycleTrigger.model_validate(raw).root, T0 + 70)

    hooks.active.add("tok-1")
    handle("terminate.json", LifecycleActionToken="tok-1", AutoScalingGroupName="video", EC2InstanceId=instance)
    output = "exit=137\n" + logs(SSM_STDOUT_CHARS - 9)
    commands.finish("cmd-1", "Failed", output)
    with caplog.at_level(logging.ERROR):
        handle("command-invocation-status.json", **{"command-id": "cmd-1", "instance-id": instance, "status": "Failed"})

    [action] = store.items.values()
    assert action.outcome is Outcome.FAILED
    assert len(action.last_output) == OUTPUT_KEPT_CHARS and action.last_output.startswith("exit=137\n")
    [record] = [r for r in caplog.records if r.getMessage() == "lifecycle action completed unsuccessfully"]
    assert record.output == output.splitlines()[-20:]  # type: ignore[attr-defined]
