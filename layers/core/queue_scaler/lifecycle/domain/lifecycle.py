"""Lifecycle actions: the pure rules that take an instance from its hook event to the hook's completion.

An action is recorded when its event arrives and then advanced, one step at a time, by every later
event about it (the SSM command's status change, a duplicate delivery) and by the reconciler's
schedule. Each step is decided here from the action, what its last SSM command reports and `now`:
run a command (the drain, or a health check), complete the hook, or wait; a heartbeat rides along
with any of them when the hook's timer needs one. Nothing here sleeps: the waiting happens on the
instance (the SSM command) and between invocations.

`apply(action, input, now) -> (action, commands)` is the whole state machine: the service feeds it
what it observed (a command's status) or what its last command came to (a heartbeat's answer, a
send, a completion), and carries out the commands it returns, in order. Every change of an action
is made here; the service only reads, writes and calls AWS.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from queue_scaler.lifecycle.domain.commands import (
    HEALTHY,
    MAX_COMMAND_SECONDS,
    CommandRequest,
    check_container_name,
    drain_command,
    health_command,
    health_of,
    kept_output,
    spot_drain_command,
)
from queue_scaler.lifecycle.domain.deadlines import SPOT_NOTICE_SECONDS, hook_floor_seconds
from queue_scaler.shared.domain.text import fmt

#: A lifecycle hook can be kept waiting by heartbeats for at most 100 x its HeartbeatTimeout, or
#: 48 hours, whichever is smaller (EC2 Auto Scaling's global timeout).
HOOK_GLOBAL_TIMEOUT_FACTOR = 100
HOOK_GLOBAL_TIMEOUT_SECONDS = float(MAX_COMMAND_SECONDS)
#: How far the clocks behind an event's `time` and SSM's RequestedDateTime may disagree; a warm-pool
#: round trip (drain, stop, start, health check) takes minutes, far more.
CLOCK_SKEW_SECONDS = 60.0
#: Output kept with an action: the last check's or drain's answer and tail, enough for the failure's log
#: line, and far inside a DynamoDB item's 400 KB.
OUTPUT_KEPT_CHARS = 4000

# SSM invocation statuses (GetCommandInvocation `Status`, and the status-change events' `status`).
_RUNNING = frozenset({"Pending", "InProgress", "Delayed", "Cancelling"})
_SUCCEEDED = frozenset({"Success"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ActionKind(StrEnum):
    LAUNCH = "launch"  # launch hook: admit the instance once its worker container is healthy
    WARM = "warm"  # launch hook into the warm pool: let it stop once its worker container is healthy
    WARM_EXIT = "warm_exit"  # terminate hook of a warmed instance: it serves nothing, so nothing to drain
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


class PoolTimings(_Model):
    """A pool's own drain: its DrainSeconds (at least its jobs' p99) and, when known, its terminate hook's
    timeout (None: the policy's, which must not exceed the hook's real one)."""

    drain_seconds: Annotated[float, Field(gt=0)]
    terminate_hook_timeout_seconds: Annotated[float, Field(gt=0)] | None = None


def hook_maximum(heartbeat_timeout: float) -> float:
    """How long heartbeats can keep a hook waiting: its global timeout."""
    return min(HOOK_GLOBAL_TIMEOUT_FACTOR * heartbeat_timeout, HOOK_GLOBAL_TIMEOUT_SECONDS)


class LifecyclePolicy(_Model):
    """The timings and choices that shape every step (from LifecycleSettings)."""

    container: Annotated[str, AfterValidator(check_container_name)] = Field(
        description="Name of the worker container on each instance"
    )
    drain_seconds: Annotated[float, Field(gt=0)] = Field(description="The drain window of a terminate drain")
    drain_grace_seconds: Annotated[float, Field(ge=0)] = Field(
        description="Time beyond Docker's SIGKILL (the window + the release margin) for SSM delivery"
    )
    launch_timeout_seconds: Annotated[float, Field(gt=0)] = Field(description="How long a launch may take")
    launch_hook_timeout_seconds: Annotated[float, Field(gt=0)] = Field(description="Launch hook HeartbeatTimeout")
    terminate_hook_timeout_seconds: Annotated[float, Field(gt=0)] = Field(description="Terminate hook HeartbeatTimeout")
    reconcile_period_seconds: Annotated[float, Field(gt=0)] = Field(description="How often the reconciler runs")
    health_wait_seconds: Annotated[float, Field(gt=0, le=MAX_COMMAND_SECONDS)] = Field(
        description="How long one health check waits on the instance for the container to become healthy"
    )
    command_retry_seconds: Annotated[float, Field(gt=0)] = Field(
        description="Least time between two commands of one action (a failed send, a quick unhealthy answer)"
    )
    sweep_period_seconds: Annotated[float, Field(ge=0)] = Field(
        default=300, description="How often the workers in service are checked (0: never)"
    )
    drain_failed_result: HookResult = HookResult.ABANDON
    pools: dict[str, PoolTimings] = Field(
        default_factory=dict,
        description="Per Auto Scaling group: its drain and terminate hook timeout; others use the defaults above",
    )

    @model_validator(mode="after")
    def _drains_fit_their_hooks(self) -> LifecyclePolicy:
        # Heartbeats keep a terminate hook waiting while the drain runs, but only up to the hook's
        # global timeout: a drain window beyond it would be cut by Auto Scaling, not by us.
        for group in ["", *self.pools]:
            window = hook_floor_seconds(self.drain_seconds_for(group), self.drain_grace_seconds)
            maximum = hook_maximum(self.hook_timeout(ActionKind.TERMINATE, group))
            if window > maximum:
                name = f"pools[{group}]" if group else "drain_seconds"
                raise ValueError(
                    f"{name}: a drain of {fmt(window)} s outlasts its terminate hook's maximum {fmt(maximum)} s"
                )
        return self

    def drain_seconds_for(self, group: str) -> float:
        timings = self.pools.get(group)
        return timings.drain_seconds if timings is not None else self.drain_seconds

    def hook_timeout(self, kind: ActionKind, group: str) -> float:
        if kind in _LAUNCH_HOOK_KINDS:
            return self.launch_hook_timeout_seconds
        timings = self.pools.get(group)
        if timings is None or timings.terminate_hook_timeout_seconds is None:
            return self.terminate_hook_timeout_seconds
        return timings.terminate_hook_timeout_seconds


#: The kinds held by the launch hook (into service, or into the warm pool): a health check admits them.
_LAUNCH_HOOK_KINDS = frozenset({ActionKind.LAUNCH, ActionKind.WARM})


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
    earlier_wait_ended_at: float | None = Field(
        default=None,
        description="When the instance's last wait at this hook was answered (a warm pool reuses instances): "
        "a command sent before it is that wait's. Set on an action the reconciler found without its event",
    )
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
    comment: str = Field(default="", description="The command's SSM Comment: what it is for")

    @property
    def running(self) -> bool:
        return self.status in _RUNNING

    @property
    def succeeded(self) -> bool:
        return self.status in _SUCCEEDED


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
    discovered: bool = False,
    earlier_wait_ended_at: float | None = None,
) -> LifecycleAction:
    """An action as its event arrives; a rebalance note is complete at once.

    `now` is when the event happened (its `time`), not when it was handled: the hook's timer and
    the drain window started then. A `discovered` action is one the reconciler found waiting in
    Auto Scaling with no event about it: its hook's timer started at an unknown time, so it is
    heartbeated at once, and it is completed by instance id (it has no token).
    """
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
        ActionKind.WARM: policy.launch_timeout_seconds,
        ActionKind.WARM_EXIT: 0.0,
        ActionKind.TERMINATE: hook_floor_seconds(policy.drain_seconds_for(group), policy.drain_grace_seconds),
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
        last_heartbeat_at=now - policy.hook_timeout(kind, group) if discovered else now,
        earlier_wait_ended_at=earlier_wait_ended_at,
    )


def next_step(
    action: LifecycleAction, observed: CommandObservation | None, now: float, policy: LifecyclePolicy
) -> Step:
    """The one thing to do for `action` now. `observed` is its command's status, None when unknown."""
    if action.state is ActionState.COMPLETED:
        return Step(kind=StepKind.NONE, reason=f"already completed ({action.outcome})")
    if action.kind in _LAUNCH_HOOK_KINDS:
        return _launch_step(action, observed, now, policy)
    if action.kind is ActionKind.WARM_EXIT:
        # A warmed instance is stopped, hibernated, or running a worker that receives nothing while
        # its target lifecycle state is Warmed:* (workers/queue_worker/warm.py): no job to finish.
        return _complete(HookResult.CONTINUE, Outcome.SUCCEEDED, "left the warm pool: no job runs there to drain")
    return _drain_step(action, observed, now, policy)


def _drain_step(
    action: LifecycleAction, observed: CommandObservation | None, now: float, policy: LifecyclePolicy
) -> Step:
    failed = policy.drain_failed_result
    finished = finished_drain(observed, policy) if action.command_id else None
    if finished is not None and observed is not None:
        result, outcome = finished
        if outcome is Outcome.SUCCEEDED:
            return _complete(result, outcome, f"drain finished in {fmt(now - action.started_at)} s")
        return _complete(result, outcome, f"drain failed: command {observed.status}")
    if action.command_id is None and action.command_error:
        # An instance whose agent cannot take the command has nothing we can drain; waiting out the
        # window would only delay its replacement.
        return _complete(failed, Outcome.FAILED, f"drain could not start: {action.command_error}")
    if now >= action.deadline and (_drain_tried(action) or now >= hook_limit(action, policy)):
        window = fmt(action.deadline - action.started_at)
        return _complete(failed, Outcome.FORCED, f"drain not finished within its {window} s window")
    heartbeat = _heartbeat_due(action, now, policy)
    if _may_send(action, observed, now, policy):
        request, reason = drain_request(action, policy, now)
        return Step(kind=StepKind.RUN_COMMAND, reason=reason, heartbeat=heartbeat, command=request)
    status = observed.status if observed is not None else "unknown"
    return Step(kind=StepKind.WAIT, reason=f"drain running ({status})", heartbeat=heartbeat)


def finished_drain(observed: CommandObservation | None, policy: LifecyclePolicy) -> tuple[HookResult, Outcome] | None:
    """How a drain command that finished ends its hook; None while it runs (or is unknown)."""
    if observed is None or observed.running:
        return None
    if observed.succeeded:
        return HookResult.CONTINUE, Outcome.SUCCEEDED
    return policy.drain_failed_result, Outcome.FAILED


def _drain_tried(action: LifecycleAction) -> bool:
    """Whether a drain was sent, or its send attempted (a claim was saved), for this action.

    A terminate action is never forced before that: its event may arrive late, or the actions table
    may refuse its writes for minutes, and a hook completed without a drain cuts every job short.
    A Spot drain is bounded by the two-minute notice instead: after it the instance is gone.
    """
    return action.kind is ActionKind.SPOT or action.command_id is not None or action.command_sent_at is not None


def hook_limit(action: LifecycleAction, policy: LifecyclePolicy) -> float:
    """When heartbeats can no longer keep the action's hook waiting (its global timeout)."""
    return action.started_at + hook_maximum(policy.hook_timeout(action.kind, action.group))


def drain_horizon(action: LifecycleAction, policy: LifecyclePolicy) -> float:
    """The earliest a drain sent to the action's instance can be this action's drain (epoch seconds).

    With a warm pool that reuses instances on scale-in, one instance is drained once per trip back
    into the pool, and an older trip's finished drain must not be adopted as this one's. An event's
    wait began at the event's time (less `CLOCK_SKEW_SECONDS` between the services' clocks); one the
    reconciler found without its event began at most the hook's global timeout before it was found,
    and after the instance's earlier wait at the hook was answered.
    """
    if action.token is not None:
        return action.started_at - CLOCK_SKEW_SECONDS
    horizon = action.started_at - hook_maximum(policy.hook_timeout(action.kind, action.group))
    return max(horizon, action.earlier_wait_ended_at or horizon)


def accounts_for_wait(action: LifecycleAction, now: float, policy: LifecyclePolicy) -> bool:
    """Whether `action` answers its instance's wait at its hook now: it is pending, or it was completed so
    recently (two reconciler periods) that Auto Scaling may not have moved the instance on yet. An older
    completed action is an earlier wait's: a warm pool that reuses instances on scale-in holds one
    instance at its terminate hook once per trip back into the pool."""
    if action.state is ActionState.PENDING:
        return True
    return action.completed_at is not None and now - action.completed_at < 2 * policy.reconcile_period_seconds


def drain_window(action: LifecycleAction, policy: LifecyclePolicy) -> float:
    """A terminate drain's window from its send: its pool's drain, Docker's SIGKILL the release margin
    later, and the grace for the command's delivery (queue_scaler/lifecycle/domain/deadlines.py)."""
    return hook_floor_seconds(policy.drain_seconds_for(action.group), policy.drain_grace_seconds)


def drain_request(action: LifecycleAction, policy: LifecyclePolicy, now: float) -> tuple[CommandRequest, str]:
    """The drain command of a Spot or terminate action, and the step's reason for it."""
    if action.kind is ActionKind.SPOT:
        # The instance goes at the notice's end (the action's deadline), whatever the pool's window.
        reason = f"drain {policy.container} for a Spot notice ending in {fmt(action.deadline - now)} s"
        return spot_drain_command(policy.container, action.deadline, now), reason
    seconds = policy.drain_seconds_for(action.group)
    return drain_command(policy.container, seconds), f"drain {policy.container}: SIGTERM, jobs may run {fmt(seconds)} s"


def _launch_step(
    action: LifecycleAction, observed: CommandObservation | None, now: float, policy: LifecyclePolicy
) -> Step:
    answered = action.command_id is not None and observed is not None and not observed.running
    if answered and observed is not None and observed.succeeded and health_of(observed.output) == HEALTHY:
        took = fmt(now - action.started_at)
        if action.kind is ActionKind.WARM:
            # The image is pulled and the worker answers: the instance may stop (or keep running,
            # idle) in the warm pool, and leaving it later takes a restart, not a boot and a pull.
            return _complete(
                HookResult.CONTINUE, Outcome.SUCCEEDED, f"{policy.container} healthy after {took} s: warmed"
            )
        return _complete(HookResult.CONTINUE, Outcome.SUCCEEDED, f"{policy.container} healthy after {took} s")
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
    if action.hook is None:
        return False
    interval = policy.hook_timeout(action.kind, action.group) / 3
    return now - action.last_heartbeat_at >= max(interval - policy.reconcile_period_seconds, interval / 2)


# --- the state machine: inputs (what happened), commands (what to do) and apply ---------------------


class Observed(_Model):
    """An event or a reconciler run: decide the next step from the command's status (None: unknown)."""

    observation: CommandObservation | None = None


class HeartbeatAnswered(_Model):
    """RecordLifecycleActionHeartbeat returned; `active` is False when Auto Scaling had no such action."""

    active: bool


class CommandSent(_Model):
    command_id: str


class CommandNotSent(_Model):
    error: str
    retryable: bool


class SendHeartbeat(_Model):
    """Restart the hook's heartbeat timer."""


class RunCommand(_Model):
    """Send `request` to the action's instance (already claimed in the action returned with it)."""

    request: CommandRequest
    reason: str


class CompleteHook(_Model):
    """End the action; `notify_hook` says whether Auto Scaling must be told (hook actions only)."""

    result: HookResult
    outcome: Outcome
    reason: str
    notify_hook: bool


class HookCompleted(_Model):
    """CompleteLifecycleAction returned (or there was no hook to tell); `active` as for heartbeats."""

    completion: CompleteHook
    active: bool


class Wait(_Model):
    """Nothing to do until the next event or reconciler run."""

    reason: str


class Done(_Model):
    """Nothing to do ever again: the action is complete."""

    reason: str


Input = Observed | HeartbeatAnswered | CommandSent | CommandNotSent | HookCompleted
Command = SendHeartbeat | RunCommand | CompleteHook | Wait | Done


def apply(
    action: LifecycleAction, event: Input, now: float, policy: LifecyclePolicy
) -> tuple[LifecycleAction, list[Command]]:
    """The action after `event`, and the commands to carry out next, in order."""
    if action.state is ActionState.COMPLETED:
        return action, [Done(reason=f"already completed ({action.outcome})")]
    match event:
        case Observed(observation=observed):
            return _decide(_note(action, observed), observed, now, policy)
        case CommandNotSent(error=error, retryable=False):
            # A send that failed for good may decide the action at once (a drain with no agent).
            return _decide(action.model_copy(update={"command_error": error}), None, now, policy)
        case HeartbeatAnswered(active=True):
            changed = action.model_copy(update={"last_heartbeat_at": now})
        case CommandSent(command_id=command_id):
            changed = action.model_copy(update={"command_id": command_id})
        case CommandNotSent():
            changed = action  # the claim stands: retried once command_retry_seconds have passed
        case HookCompleted(completion=done, active=True):
            changed = _completed(action, done.result, done.outcome, done.reason, now)
        case HeartbeatAnswered() | HookCompleted():
            changed = already_done(action, now)
    return changed, []


def already_done(action: LifecycleAction, now: float) -> LifecycleAction:
    """Auto Scaling has no active action for the token: someone completed it, or it timed out."""
    return _completed(action, None, Outcome.ALREADY_DONE, "Auto Scaling had no active action for the token", now)


def _completed(
    action: LifecycleAction, result: HookResult | None, outcome: Outcome, reason: str, now: float
) -> LifecycleAction:
    return action.model_copy(
        update={
            "state": ActionState.COMPLETED,
            "result": result,  # None when already done: nothing of ours completed it
            "outcome": outcome,
            "reason": reason,
            "completed_at": now,
        }
    )


def _decide(
    action: LifecycleAction, observed: CommandObservation | None, now: float, policy: LifecyclePolicy
) -> tuple[LifecycleAction, list[Command]]:
    step = next_step(action, observed, now, policy)
    commands: list[Command] = [SendHeartbeat()] if step.heartbeat else []
    match step.kind:
        case StepKind.RUN_COMMAND:
            assert step.command is not None  # RUN_COMMAND steps carry their command
            # Claimed before it is sent: if another invocation claimed first, saving the claim fails
            # and nothing is sent. A claim without a command id is a send that failed or died mid-send.
            update: dict[str, object] = {"command_id": None, "command_sent_at": now, "command_error": None}
            if action.kind is ActionKind.TERMINATE and action.command_sent_at is None:
                # The window starts with the first drain, not with the event: a late event or a
                # throttled table delays the drain, never shortens it (the hook's global timeout
                # still bounds it).
                update["deadline"] = max(
                    action.deadline, min(now + drain_window(action, policy), hook_limit(action, policy))
                )
            action = action.model_copy(update=update)
            commands.append(RunCommand(request=step.command, reason=step.reason))
        case StepKind.COMPLETE:
            assert step.result is not None  # COMPLETE steps carry both
            assert step.outcome is not None
            commands.append(
                CompleteHook(
                    result=step.result, outcome=step.outcome, reason=step.reason, notify_hook=action.hook is not None
                )
            )
        case _:
            commands.append(Wait(reason=step.reason))
    return action, commands


def _note(action: LifecycleAction, observed: CommandObservation | None) -> LifecycleAction:
    """The action with its finished command's status and output, kept for later decisions and logs."""
    if observed is None or observed.running:
        return action
    return action.model_copy(
        update={"last_status": observed.status, "last_output": kept_output(observed.output, OUTPUT_KEPT_CHARS)}
    )


def sweep_due(now: float, policy: LifecyclePolicy) -> bool:
    """Whether this reconciler run checks the workers in service: the first run of each sweep period.

    Stateless, from the clock: a run that is skipped (or a late one) shifts one sweep, never doubles it
    for long, and nothing has to be stored between runs.
    """
    period = policy.sweep_period_seconds
    return period > 0 and now % period < min(policy.reconcile_period_seconds, period)
