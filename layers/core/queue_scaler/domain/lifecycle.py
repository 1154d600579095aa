"""Lifecycle actions: the pure rules that take an instance from its hook event to the hook's completion.

An action is recorded when its event arrives and then advanced, one step at a time, by every later
event about it (the SSM command's status change, a duplicate delivery) and by the reconciler's
schedule. Each step is decided here from the action, what its last SSM command reports and `now`:
run a command (the drain, or a health check), complete the hook, or wait; a heartbeat rides along
with any of them when the hook's timer needs one. Nothing here sleeps: the waiting happens on the
instance (the SSM command) and between invocations.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from queue_scaler.domain.text import fmt

#: EC2 gives a Spot instance two minutes' notice before it reclaims it.
SPOT_NOTICE_SECONDS = 120.0
#: First line of a health check's output: `health=<docker health status>`.
HEALTH_PREFIX = "health="
HEALTHY = "healthy"
#: Log lines kept from a command's output: enough to see why a worker failed, small enough for a log line.
LOG_TAIL_LINES = 20

# SSM invocation statuses (GetCommandInvocation `Status`, and the status-change events' `status`).
_RUNNING = frozenset({"Pending", "InProgress", "Delayed", "Cancelling"})
_SUCCEEDED = frozenset({"Success"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ActionKind(StrEnum):
    LAUNCH = "launch"  # launch hook: admit the instance once its worker container is healthy
    TERMINATE = "terminate"  # terminate hook: drain the worker, then CONTINUE
    SPOT = "spot"  # Spot interruption warning: drain at once; there is no hook to complete
    REBALANCE = "rebalance"  # rebalance recommendation: the instance is leaving; nothing to complete


class HookResult(StrEnum):
    CONTINUE = "CONTINUE"
    ABANDON = "ABANDON"


class ActionState(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"  # drained, or healthy
    FAILED = "failed"  # the drain failed, or the container never became healthy
    FORCED = "forced"  # the deadline passed without an answer; completed so the hook does not wait it out
    ALREADY_DONE = "already_done"  # Auto Scaling had no active action for the token any more
    NOTED = "noted"  # a rebalance recommendation: recorded, nothing to complete


class LifecyclePolicy(_Model):
    """The timings and choices that shape every step (from LifecycleSettings)."""

    container: str = Field(description="Name of the worker container on each instance")
    drain_seconds: Annotated[float, Field(gt=0)] = Field(description="`docker stop --time` of a terminate drain")
    spot_drain_seconds: Annotated[float, Field(gt=0, lt=SPOT_NOTICE_SECONDS)]
    drain_grace_seconds: Annotated[float, Field(ge=0)] = Field(
        description="Time beyond the drain window for SSM delivery and docker's own stop"
    )
    launch_timeout_seconds: Annotated[float, Field(gt=0)] = Field(description="How long a launch may take")
    launch_hook_timeout_seconds: Annotated[float, Field(gt=0)] = Field(description="Launch hook HeartbeatTimeout")
    terminate_hook_timeout_seconds: Annotated[float, Field(gt=0)] = Field(description="Terminate hook HeartbeatTimeout")
    reconcile_period_seconds: Annotated[float, Field(gt=0)] = Field(description="How often the reconciler runs")
    health_wait_seconds: Annotated[float, Field(gt=0)] = Field(
        description="How long one health check waits on the instance for the container to become healthy"
    )
    command_retry_seconds: Annotated[float, Field(gt=0)] = Field(
        description="Least time between two commands of one action (a failed send, a quick unhealthy answer)"
    )
    drain_failed_result: HookResult = HookResult.ABANDON

    def hook_timeout(self, kind: ActionKind) -> float:
        return self.launch_hook_timeout_seconds if kind is ActionKind.LAUNCH else self.terminate_hook_timeout_seconds


class LifecycleAction(_Model):
    """One instance's lifecycle action as recorded in the actions table."""

    instance_id: str
    kind: ActionKind
    group: str
    hook: str | None = Field(default=None, description="Lifecycle hook name; None for Spot and rebalance")
    token: str | None = Field(default=None, description="LifecycleActionToken; None for Spot and rebalance")
    started_at: float
    deadline: float
    state: ActionState = ActionState.PENDING
    last_heartbeat_at: float = Field(description="When the hook's heartbeat timer last started")
    command_id: str | None = None
    command_sent_at: float | None = Field(default=None, description="When the last command was claimed or sent")
    command_error: str | None = Field(default=None, description="Why the last command could not be sent")
    last_status: str | None = Field(default=None, description="Final status of the last finished command")
    last_output: str = ""
    result: HookResult | None = None
    outcome: Outcome | None = None
    reason: str = ""
    completed_at: float | None = None
    version: int = 0

    @property
    def key(self) -> str:
        """The action's sort key under its instance: one per hook token, one Spot drain, one rebalance note."""
        return f"{self.kind}#{self.token}" if self.token else str(self.kind)

    @property
    def is_drain(self) -> bool:
        return self.kind in (ActionKind.TERMINATE, ActionKind.SPOT)


class CommandObservation(_Model):
    """What SSM reports about an action's command on its instance."""

    status: str
    output: str = ""

    @property
    def running(self) -> bool:
        return self.status in _RUNNING

    @property
    def succeeded(self) -> bool:
        return self.status in _SUCCEEDED


class CommandRequest(_Model):
    """A shell script for AWS-RunShellScript, and what it is for (the SSM command's Comment)."""

    comment: str = Field(max_length=100)
    script: list[str]
    execution_timeout_seconds: int


class StepKind(StrEnum):
    RUN_COMMAND = "run_command"
    COMPLETE = "complete"
    WAIT = "wait"
    NONE = "none"


class Step(_Model):
    kind: StepKind
    reason: str
    heartbeat: bool = False
    command: CommandRequest | None = None
    result: HookResult | None = None
    outcome: Outcome | None = None


def new_action(
    kind: ActionKind,
    instance_id: str,
    group: str,
    now: float,
    policy: LifecyclePolicy,
    *,
    hook: str | None = None,
    token: str | None = None,
) -> LifecycleAction:
    """An action as its event arrives; a rebalance note is complete at once."""
    if kind is ActionKind.REBALANCE:
        return LifecycleAction(
            instance_id=instance_id,
            kind=kind,
            group=group,
            started_at=now,
            deadline=now,
            last_heartbeat_at=now,
            state=ActionState.COMPLETED,
            outcome=Outcome.NOTED,
            reason="rebalance recommended: the instance is leaving",
            completed_at=now,
        )
    # The hook's timer starts when Auto Scaling sends the event; its delivery takes seconds, which
    # the heartbeat rule's margin (a third of the timeout) absorbs.
    window = {
        ActionKind.LAUNCH: policy.launch_timeout_seconds,
        ActionKind.TERMINATE: policy.drain_seconds + policy.drain_grace_seconds,
        ActionKind.SPOT: SPOT_NOTICE_SECONDS,
    }[kind]
    return LifecycleAction(
        instance_id=instance_id,
        kind=kind,
        group=group,
        hook=hook,
        token=token,
        started_at=now,
        deadline=now + window,
        last_heartbeat_at=now,
    )


def next_step(
    action: LifecycleAction, observed: CommandObservation | None, now: float, policy: LifecyclePolicy
) -> Step:
    """The one thing to do for `action` now. `observed` is its command's status, None when unknown."""
    if action.state is ActionState.COMPLETED:
        return Step(kind=StepKind.NONE, reason=f"already completed ({action.outcome})")
    if action.kind is ActionKind.LAUNCH:
        return _launch_step(action, observed, now, policy)
    return _drain_step(action, observed, now, policy)


def _drain_step(
    action: LifecycleAction, observed: CommandObservation | None, now: float, policy: LifecyclePolicy
) -> Step:
    failed = policy.drain_failed_result
    if action.command_id and observed is not None and not observed.running:
        if observed.succeeded:
            return _complete(
                HookResult.CONTINUE, Outcome.SUCCEEDED, f"drain finished in {fmt(now - action.started_at)} s"
            )
        return _complete(failed, Outcome.FAILED, f"drain failed: command {observed.status}")
    if action.command_id is None and action.command_error:
        # An instance whose agent cannot take the command has nothing we can drain; waiting out the
        # window would only delay its replacement.
        return _complete(failed, Outcome.FAILED, f"drain could not start: {action.command_error}")
    if now >= action.deadline:
        window = fmt(action.deadline - action.started_at)
        return _complete(failed, Outcome.FORCED, f"drain not finished within its {window} s window")
    heartbeat = _heartbeat_due(action, now, policy)
    if _may_send(action, observed, now, policy):
        seconds = policy.spot_drain_seconds if action.kind is ActionKind.SPOT else policy.drain_seconds
        return Step(
            kind=StepKind.RUN_COMMAND,
            reason=f"drain {policy.container}: SIGTERM, up to {fmt(seconds)} s",
            heartbeat=heartbeat,
            command=drain_command(policy.container, seconds),
        )
    status = observed.status if observed is not None else "unknown"
    return Step(kind=StepKind.WAIT, reason=f"drain running ({status})", heartbeat=heartbeat)


def _launch_step(
    action: LifecycleAction, observed: CommandObservation | None, now: float, policy: LifecyclePolicy
) -> Step:
    answered = action.command_id is not None and observed is not None and not observed.running
    if answered and observed is not None and observed.succeeded and health_of(observed.output) == HEALTHY:
        return _complete(
            HookResult.CONTINUE, Outcome.SUCCEEDED, f"{policy.container} healthy after {fmt(now - action.started_at)} s"
        )
    if now >= action.deadline:
        last = observed.output if answered and observed is not None else action.last_output
        window = fmt(policy.launch_timeout_seconds)
        if answered or action.last_status is not None:
            return _complete(
                HookResult.ABANDON,
                Outcome.FAILED,
                f"{policy.container} never healthy within {window} s (last health: {health_of(last)})",
            )
        return _complete(HookResult.ABANDON, Outcome.FORCED, f"no health check answered within {window} s")
    heartbeat = _heartbeat_due(action, now, policy)
    if _may_send(action, observed, now, policy):
        # The check waits on the instance, so a container that turns healthy is admitted within
        # seconds, not at the next reconciler run; it never waits past the deadline.
        wait = min(policy.health_wait_seconds, action.deadline - now)
        return Step(
            kind=StepKind.RUN_COMMAND,
            reason=f"check {policy.container} health for up to {fmt(wait)} s",
            heartbeat=heartbeat,
            command=health_command(policy.container, wait),
        )
    state = "check running" if action.command_id and not answered else "waiting to check again"
    return Step(kind=StepKind.WAIT, reason=f"{policy.container} not healthy yet ({state})", heartbeat=heartbeat)


def _complete(result: HookResult, outcome: Outcome, reason: str) -> Step:
    return Step(kind=StepKind.COMPLETE, result=result, outcome=outcome, reason=reason)


def _may_send(
    action: LifecycleAction, observed: CommandObservation | None, now: float, policy: LifecyclePolicy
) -> bool:
    """No command is running, and none was claimed or sent in the last `command_retry_seconds`.

    A claim without a command id is a send that failed or an invocation that died mid-send; the
    retry spacing also keeps a command that fails at once from being resent in a tight loop.
    """
    running = action.command_id is not None and (observed is None or observed.running)
    if running:
        return False
    return action.command_sent_at is None or now - action.command_sent_at >= policy.command_retry_seconds


def _heartbeat_due(action: LifecycleAction, now: float, policy: LifecyclePolicy) -> bool:
    """Whether the hook needs a heartbeat now, so that heartbeats stay at most a third of its timeout apart.

    Due once waiting for the next reconciler run could overshoot that interval; never within half an
    interval of the last one, so that events arriving in quick succession do not each send one. A
    hook whose timeout is under three reconciler periods gets one every run (settings keep the
    timeout above one period).
    """
    if action.token is None:
        return False
    interval = policy.hook_timeout(action.kind) / 3
    return now - action.last_heartbeat_at >= max(interval - policy.reconcile_period_seconds, interval / 2)


def drain_command(container: str, seconds: float) -> CommandRequest:
    """`docker stop` with the drain window as its timeout: SIGTERM, the worker drains, SIGKILL only after.

    The worker exits 0 when it drained; any other exit code (137: killed at the end of the window)
    fails the command, so a drain cut short is reported as failed, with the worker's last log lines.
    An instance without the container has nothing to drain.
    """
    window = int(seconds)
    return CommandRequest(
        comment=f"queue-scaler drain {container} {window}",
        script=[
            f"c={container}",
            'if ! docker inspect "$c" >/dev/null 2>&1; then echo "no container $c: nothing to drain"; exit 0; fi',
            f'docker stop --time {window} "$c"',
            "code=$(docker inspect --format '{{.State.ExitCode}}' \"$c\")",
            'echo "exit=$code"',
            f'docker logs --tail {LOG_TAIL_LINES} "$c" 2>&1',
            '[ "$code" = 0 ]',
        ],
        # docker stop returns at most `window` s after SIGTERM (then SIGKILL); a minute covers the rest.
        execution_timeout_seconds=window + 60,
    )


def health_command(container: str, wait_seconds: float) -> CommandRequest:
    """Poll the container's docker health every 5 s until healthy or `wait_seconds` pass.

    Prints `health=<status>` first (`missing` when there is no such container, the container's state
    when its image has no HEALTHCHECK), then, when not healthy, its last log lines.
    """
    wait = max(0, int(wait_seconds))
    return CommandRequest(
        comment=f"queue-scaler health {container} {wait}",
        script=[
            f"c={container}",
            f"end=$(( $(date +%s) + {wait} ))",
            "while :; do",
            "  f='{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}'",
            '  s=$(docker inspect --format "$f" "$c" 2>/dev/null || echo missing)',
            f'  [ "$s" = {HEALTHY} ] && break',
            '  [ "$(date +%s)" -ge "$end" ] && break',
            "  sleep 5",
            "done",
            f'echo "{HEALTH_PREFIX}$s"',
            f'[ "$s" = {HEALTHY} ] || docker logs --tail {LOG_TAIL_LINES} "$c" 2>&1',
        ],
        execution_timeout_seconds=wait + 60,
    )


def health_of(output: str) -> str:
    """The docker health a check printed, or `unknown` when it printed none."""
    for line in output.splitlines():
        if line.startswith(HEALTH_PREFIX):
            return line.removeprefix(HEALTH_PREFIX).strip() or "unknown"
    return "unknown"


def log_tail(output: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a command's output, for the log line of a failure."""
    return output.splitlines()[-lines:]
