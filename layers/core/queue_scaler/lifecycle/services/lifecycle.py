"""Lifecycle hooks: record each action once, then advance it by one decided step per event or reconciler run.

Every hook we are sent ends completed by us: with CONTINUE once drained or healthy, with the
configured result when a drain fails, with ABANDON when a launch never turns healthy, and, failing
all of those, by the reconciler once the action's deadline passes. One action's failure never
stops the others: it is logged with context, counted, and reported in its result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from queue_scaler.lifecycle.domain.commands import (
    CommandRequest,
    Purpose,
    log_tail,
    parse_comment,
    sweep_command,
    worker_failed,
)
from queue_scaler.lifecycle.domain.lifecycle import (
    ActionKind,
    ActionState,
    Command,
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
    accounts_for_wait,
    apply,
    drain_horizon,
    drain_request,
    finished_drain,
    new_action,
    sweep_due,
)
from queue_scaler.lifecycle.ports import ActionStore, HookRef, LifecycleHooks, LifecycleMetricsSink, RemoteCommands
from queue_scaler.shared.errors import ActionConflict, AwsCallError
from queue_scaler.shared.events import (
    CommandStatusEvent,
    LifecycleActionDetail,
    LifecycleActionEvent,
    LifecycleEvent,
    RebalanceRecommendationEvent,
    ReconcileSchedule,
    SpotInterruptionEvent,
    lifecycle_kind,
)
from queue_scaler.shared.metric_names import Metric

logger = logging.getLogger(__name__)

_TRANSITIONS = {
    "autoscaling:EC2_INSTANCE_LAUNCHING": ActionKind.LAUNCH,
    "autoscaling:EC2_INSTANCE_TERMINATING": ActionKind.TERMINATE,
}
_TRANSITION_OF = {kind: transition for transition, kind in _TRANSITIONS.items()}
#: The hook an instance waits at, by its lifecycle state. Warm-pool states (Warmed:Pending:Wait) are
#: not taken up: an instance launched into the pool and one returned to it on scale-in wait in the
#: same state at different hooks, so a lost event there is left to the hook's DefaultResult.
_WAIT_KINDS = {"Pending:Wait": ActionKind.LAUNCH, "Terminating:Wait": ActionKind.TERMINATE}
#: SendCommand's error for an instance whose SSM Agent has not registered (yet), or is offline.
_AGENT_NOT_REGISTERED = "InvalidInstanceId"


@dataclass(frozen=True)
class ActionReport:
    """What one invocation did for one action."""

    instance_id: str
    action: str
    step: str
    reason: str
    outcome: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "instance_id": self.instance_id,
            "action": self.action,
            "step": self.step,
            "reason": self.reason,
        }
        if self.outcome is not None:
            out["outcome"] = self.outcome
        if self.error is not None:
            out["error"] = self.error
        return out


class LifecycleService:
    """The code behind LifecycleFunction, and behind the local cloud's lifecycle actions."""

    def __init__(
        self,
        *,
        store: ActionStore,
        hooks: LifecycleHooks,
        commands: RemoteCommands,
        metrics: LifecycleMetricsSink,
        policy: LifecyclePolicy,
        groups: frozenset[str],
    ) -> None:
        self._store = store
        self._hooks = hooks
        self._commands = commands
        self._metrics = metrics
        self._policy = policy
        self._groups = groups

    def handle(self, trigger: LifecycleEvent, now: float) -> list[ActionReport]:
        """Act on one event; the reports say what was done for each action it concerned.

        The method is the one its kind names in queue_scaler.shared.events.LIFECYCLE_EVENT_KINDS.
        """
        handler: Callable[[LifecycleEvent, float], list[ActionReport]] = getattr(self, lifecycle_kind(trigger).handler)
        return handler(trigger, now)

    def reconcile(self, now: float) -> list[ActionReport]:
        """Advance every pending action (heartbeats, lost status events, completion past the deadline),
        then take up every instance waiting at a hook that no event told us about."""
        try:
            pending = self._store.pending()
        except AwsCallError as error:
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.error("pending actions unreadable", extra={"error": str(error), "code": error.code})
            # Without the table the instances waiting to terminate still get their drain and heartbeats.
            self._drain_waiting_unrecorded(now)
            raise
        for problem in pending.unreadable:
            # Skipped, never fatal: one bad item must not stop every other drain from being forced.
            self._metrics.count(Metric.LIFECYCLE_ACTIONS_UNREADABLE)
            logger.error("actions table item is not a lifecycle action: skipped", extra={"item": problem})
        if pending.actions:  # sent only when not 0: a metric is billed for each hour it receives data
            self._metrics.count(Metric.LIFECYCLE_ACTIONS_PENDING, len(pending.actions))
        reports = [self._advance(action, now) for action in pending.actions]
        reports += self._discover(pending.actions, now)
        if sweep_due(now, self._policy):
            self._sweep()
        return reports

    def _sweep(self) -> None:
        """One look at every worker in service; the answers arrive as command status events (on_command)."""
        try:
            instances = self._hooks.in_service(self._groups)
            if instances:
                self._commands.sweep(instances, sweep_command(self._policy.container))
        except AwsCallError as error:
            # The next sweep looks again; nothing waits on this one.
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.error("workers in service not checked", extra={"error": str(error), "code": error.code})
            return
        logger.info("workers in service checked", extra={"instances": len(instances)})

    def _discover(self, pending: list[LifecycleAction], now: float) -> list[ActionReport]:
        """Instances in Pending:Wait / Terminating:Wait with no action: their event was lost (or never sent)."""
        known = {(a.instance_id, a.kind) for a in pending}
        reports: list[ActionReport] = []
        hooks: dict[tuple[str, ActionKind], str | None] = {}
        try:
            for instance in self._hooks.waiting(self._groups):
                kind = _WAIT_KINDS[instance.lifecycle_state]
                if (instance.instance_id, kind) in known:
                    continue
                if (instance.group, kind) not in hooks:
                    hooks[instance.group, kind] = self._hooks.hook_name(instance.group, _TRANSITION_OF[kind])
                hook = hooks[instance.group, kind]
                if hook is None:
                    continue  # held by a hook of someone else's making: not ours to answer
                try:
                    earlier = [a for a in self._store.for_instance(instance.instance_id) if a.kind is kind]
                    if any(accounts_for_wait(a, now, self._policy) for a in earlier):
                        continue  # pending, or completed a moment ago and Auto Scaling has not moved it on yet
                except AwsCallError as error:
                    self._metrics.count(Metric.LIFECYCLE_ERRORS)
                    logger.error("actions unreadable", extra={"instance_id": instance.instance_id, "error": str(error)})
                    self._drain_unrecorded(
                        new_action(kind, instance.instance_id, instance.group, now, self._policy, hook=hook), now
                    )
                    continue
                self._metrics.count(Metric.LIFECYCLE_ACTIONS_DISCOVERED)
                logger.warning(
                    "instance waiting at a hook with no event: taking it up",
                    extra={
                        "instance_id": instance.instance_id,
                        "group": instance.group,
                        "state": instance.lifecycle_state,
                    },
                )
                ended = [a.completed_at for a in earlier if a.completed_at is not None]
                action = new_action(
                    kind,
                    instance.instance_id,
                    instance.group,
                    now,
                    self._policy,
                    hook=hook,
                    discovered=True,
                    earlier_wait_ended_at=max(ended, default=None),
                )
                try:
                    reports.append(self._start(action, now))
                except AwsCallError:
                    continue  # logged, counted and drained without its record by _start; the next run records it
            return reports
        except AwsCallError as error:
            # The pending actions are advanced already; the next run looks again.
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.error("waiting instances not discovered", extra={"error": str(error), "code": error.code})
            return []

    # --- one handler per kind of event (LIFECYCLE_EVENT_KINDS), each `(event, now) -> reports` ---------

    def on_hook(self, event: LifecycleActionEvent, now: float) -> list[ActionReport]:
        detail, at = event.detail, event.occurred_at(now)
        if detail.group not in self._groups:
            return self._ignored(detail.instance_id, f"group {detail.group!r} is not one of this stack's")
        kind = _kind_of(detail)
        action = new_action(
            kind, detail.instance_id, detail.group, at, self._policy, hook=detail.hook, token=detail.token
        )
        try:
            adopted = [
                a
                for a in self._store.for_instance(detail.instance_id)
                if a.kind is kind and a.token is None and a.state is ActionState.PENDING
            ]
        except AwsCallError as error:
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.error("actions unreadable", extra={"instance_id": detail.instance_id, "error": str(error)})
            self._drain_unrecorded(action, now)
            raise
        if adopted:
            # The reconciler found this instance first and drains it already: the event adds nothing.
            self._metrics.count(Metric.LIFECYCLE_DUPLICATE_EVENTS)
            return [self._advance(adopted[0], now)]
        return [self._start(action, now)]

    def on_schedule(self, event: ReconcileSchedule, now: float) -> list[ActionReport]:
        return self.reconcile(now)

    def on_spot(self, event: SpotInterruptionEvent, now: float) -> list[ActionReport]:
        instance_id, at = event.detail.instance_id, event.occurred_at(now)
        group = self._group_of(instance_id)
        if group is None:
            return self._ignored(instance_id, "not an instance of this stack's groups")
        self._metrics.count(Metric.SPOT_INTERRUPTIONS)
        logger.warning("spot interruption: draining now", extra={"instance_id": instance_id, "group": group})
        return [self._start(new_action(ActionKind.SPOT, instance_id, group, at, self._policy), now)]

    def on_rebalance(self, event: RebalanceRecommendationEvent, now: float) -> list[ActionReport]:
        instance_id = event.detail.instance_id
        group = self._group_of(instance_id)
        if group is None:
            return self._ignored(instance_id, "not an instance of this stack's groups")
        note = new_action(ActionKind.REBALANCE, instance_id, group, now, self._policy)
        created = self._store.create(note)
        if created is not None:
            self._metrics.count(Metric.REBALANCE_RECOMMENDATIONS)
        # Recorded as leaving (ports.LeavingInstances), a fact the scaler's observation can read,
        # rather than acted on here: nothing is drained yet (the instance may run for hours, and the
        # Spot warning or terminate hook that follows drains it), and changing the group itself
        # (standby, scale-in protection) would be a capacity decision, which is the scaler's.
        logger.warning(
            "rebalance recommended: instance recorded as leaving",
            extra={"instance_id": instance_id, "group": group, "duplicate": created is None},
        )
        return [ActionReport(instance_id, note.key, str(StepKind.NONE), note.reason, str(Outcome.NOTED))]

    def on_command(self, event: CommandStatusEvent, now: float) -> list[ActionReport]:
        instance_id, command_id, status = event.detail.instance_id, event.detail.command_id, event.detail.status
        try:
            actions = self._store.for_instance(instance_id)
        except AwsCallError as error:
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.error("actions unreadable", extra={"instance_id": instance_id, "error": str(error)})
            raise
        mine = [a for a in actions if a.command_id == command_id and a.state is ActionState.PENDING]
        if not mine:
            if any(a.command_id == command_id for a in actions):
                # An action's command whose action is already complete.
                logger.info("command status for no pending action", extra={"command_id": command_id, "status": status})
                return []
            return self._swept(instance_id, command_id, status)
        return [self._advance(action, now) for action in mine]

    def _swept(self, instance_id: str, command_id: str, status: str) -> list[ActionReport]:
        """A sweep's answer: a worker in service that serves nothing is marked Unhealthy, so that Auto
        Scaling replaces it (through the terminate hook) and the scaler stops counting it."""
        observed = self._observe_command(command_id, instance_id)
        try:
            purpose = parse_comment(observed.comment).purpose if observed is not None else None
        except ValueError:
            purpose = None
        if observed is None or purpose is not Purpose.SWEEP or observed.running or not observed.succeeded:
            # Another tool's command, or a sweep that could not run (the next one looks again).
            logger.info("command status for no pending action", extra={"command_id": command_id, "status": status})
            return []
        reason = worker_failed(observed.output)
        if reason is None:
            return []
        if self._group_of(instance_id) is None:
            return self._ignored(instance_id, "not an instance of this stack's groups")
        try:
            self._hooks.mark_unhealthy(instance_id)
        except AwsCallError as error:
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.error("worker not marked unhealthy", extra={"instance_id": instance_id, "error": str(error)})
            raise
        self._metrics.count(Metric.WORKERS_MARKED_UNHEALTHY)
        logger.error(
            "worker in service failed: marked Unhealthy",
            extra={"instance_id": instance_id, "reason": reason, "output": log_tail(observed.output)},
        )
        return [ActionReport(instance_id, "-", "unhealthy", reason)]

    def _observe_command(self, command_id: str, instance_id: str) -> CommandObservation | None:
        try:
            return self._commands.observe(command_id, instance_id)
        except AwsCallError as error:
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.warning("command status unreadable", extra={"command_id": command_id, "error": str(error)})
            return None

    def _group_of(self, instance_id: str) -> str | None:
        try:
            group = self._hooks.group_of(instance_id)
        except AwsCallError as error:
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.error("group lookup failed", extra={"instance_id": instance_id, "error": str(error)})
            raise
        return group if group in self._groups else None

    def _ignored(self, instance_id: str, reason: str) -> list[ActionReport]:
        self._metrics.count(Metric.LIFECYCLE_EVENTS_IGNORED)
        logger.info("event ignored", extra={"instance_id": instance_id, "reason": reason})
        return [ActionReport(instance_id, "-", "ignored", reason)]

    def _start(self, action: LifecycleAction, now: float) -> ActionReport:
        """Record the action once per token; a duplicate delivery advances the recorded one instead."""
        try:
            created = self._store.create(action)
            if created is None:
                self._metrics.count(Metric.LIFECYCLE_DUPLICATE_EVENTS)
                logger.info("duplicate event", extra={"instance_id": action.instance_id, "action": action.key})
                created = self._store.get(action.instance_id, action.key)
                if created is None:  # recorded and already expired from the table: nothing left to do
                    return ActionReport(
                        action.instance_id, action.key, str(StepKind.NONE), "duplicate of a past action"
                    )
        except AwsCallError as error:
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.error("action not recorded", extra={"instance_id": action.instance_id, "error": str(error)})
            # The record comes back (the event is retried, the reconciler finds the instance); the
            # drain and the hook's heartbeats cannot wait for it.
            self._drain_unrecorded(action, now)
            raise
        return self._advance(created, now)

    def _advance(self, action: LifecycleAction, now: float) -> ActionReport:
        """Apply what is observed, then carry out the domain's commands, feeding each outcome back."""
        context = {"instance_id": action.instance_id, "action": action.key, "group": action.group}
        saved = action
        try:
            action, commands = apply(action, Observed(observation=self._observe(action)), now, self._policy)
            last: Command = commands[-1]  # the decided step, until the commands run
            while commands and action.state is ActionState.PENDING:
                last, *commands = commands
                if isinstance(last, RunCommand):
                    saved = action = self._store.save(action)  # the claim, before anything is sent
                outcome = self._execute(action, last)
                if outcome is None:
                    continue
                action, more = apply(action, outcome, now, self._policy)
                commands = [*more, *commands]
                if action != saved:
                    saved = action = self._store.save(action)
                if isinstance(outcome, HookCompleted):
                    self._completed(action, outcome.completion, now)
                elif action.outcome is Outcome.ALREADY_DONE:
                    self._already_done(action)
            if action != saved:
                # Waiting, with a finished check's answer that the next decision must still see.
                action = self._store.save(action)
            logger.info("lifecycle step", extra=context | {"step": _step_name(last), "reason": _reason(last)})
            return self._report(action, last)
        except ActionConflict as error:
            # Another invocation advanced it first; its step stands.
            self._metrics.count(Metric.LIFECYCLE_CONCURRENT_UPDATES)
            logger.warning("action changed under this invocation", extra=context | {"reason": str(error)})
            return ActionReport(action.instance_id, action.key, "stood_down", str(error))
        except AwsCallError as error:
            # The action stays pending: the next event or reconciler run tries again. A drain that the
            # record could not claim (the table refused the write) goes out anyway.
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.error("lifecycle step failed", extra=context | {"error": str(error), "code": error.code})
            if action.command_id is None:
                self._drain_unrecorded(action, now)
            return ActionReport(action.instance_id, action.key, "error", "step failed", error=str(error))

    def _execute(self, action: LifecycleAction, command: Command) -> Input | None:
        """Carry out one command (I/O only); its outcome, for the domain, or None when there is none."""
        match command:
            case SendHeartbeat():
                try:
                    active = self._hooks.heartbeat(_ref(action))
                except AwsCallError as error:
                    # Heartbeats are due a third of the timeout early: the next run can still send
                    # one, and the step (a drain, a health check) must not wait for it.
                    self._metrics.count(Metric.LIFECYCLE_ERRORS)
                    logger.warning("heartbeat failed", extra={"instance_id": action.instance_id, "error": str(error)})
                    return None
                if active:
                    self._metrics.count(Metric.LIFECYCLE_HEARTBEATS)
                return HeartbeatAnswered(active=active)
            case RunCommand(request=request, reason=reason):
                return self._send(action, request, reason)
            case CompleteHook(notify_hook=notify):
                active = self._hooks.complete(_ref(action), command.result) if notify else True
                return HookCompleted(completion=command, active=active)
        return None  # Wait, Done: nothing to carry out

    def _send(self, action: LifecycleAction, request: CommandRequest, reason: str) -> Input:
        context = {"instance_id": action.instance_id, "action": action.key}
        try:
            if action.kind is ActionKind.TERMINATE:
                # One drain per instance: one sent without a record (the table refused it), or for the
                # reconciler's action before this late event's, is the drain this action waits on.
                sent = self._commands.find(action.instance_id, Purpose.DRAIN, drain_horizon(action, self._policy))
                if sent is not None:
                    logger.info("drain already sent: adopted", extra=context | {"command_id": sent})
                    return CommandSent(command_id=sent)
            command_id = self._commands.run(action.instance_id, request)
        except AwsCallError as error:
            if action.kind in (ActionKind.LAUNCH, ActionKind.WARM) and error.code == _AGENT_NOT_REGISTERED:
                # A new instance's SSM Agent registers a while after boot: the check waits for it,
                # within the launch's deadline (then the launch is abandoned), and nobody is paged.
                logger.info("agent not registered with SSM yet: checking again", extra=context)
                return CommandNotSent(error=str(error), retryable=True)
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.error("command not sent", extra=context | {"error": str(error)})
            return CommandNotSent(error=str(error), retryable=error.retryable)
        logger.info("command sent", extra=context | {"command_id": command_id, "reason": reason})
        return CommandSent(command_id=command_id)

    def _drain_waiting_unrecorded(self, now: float) -> None:
        """Every instance waiting at one of our terminate hooks gets its drain, without the table."""
        try:
            waiting = [i for i in self._hooks.waiting(self._groups) if i.lifecycle_state == "Terminating:Wait"]
            hooks = {
                g: self._hooks.hook_name(g, _TRANSITION_OF[ActionKind.TERMINATE]) for g in {i.group for i in waiting}
            }
        except AwsCallError as error:
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.error("waiting instances not discovered", extra={"error": str(error), "code": error.code})
            return
        for instance in waiting:
            hook = hooks[instance.group]
            if hook is not None:
                self._drain_unrecorded(
                    new_action(
                        ActionKind.TERMINATE, instance.instance_id, instance.group, now, self._policy, hook=hook
                    ),
                    now,
                )

    def _drain_unrecorded(self, action: LifecycleAction, now: float) -> None:
        """The actions table failed this terminate action: its drain goes out, and its hook is kept
        waiting while the drain runs (completed once SSM reports it finished), without a record.

        SSM's record of the drain (`find`) is what a later, recorded step adopts, so that every path
        converges on this one drain; completing the hook here is safe because the drain is over, and
        the recorded step then finds the hook done.
        """
        if action.kind is not ActionKind.TERMINATE or action.state is not ActionState.PENDING:
            return
        context = {"instance_id": action.instance_id, "action": action.key}
        try:
            command_id = self._commands.find(action.instance_id, Purpose.DRAIN, drain_horizon(action, self._policy))
            if command_id is None:
                command_id = self._commands.run(action.instance_id, drain_request(action, self._policy, now)[0])
                self._metrics.count(Metric.DRAINS_UNRECORDED)
                logger.warning(
                    "actions table unavailable: drain sent without a record", extra=context | {"command_id": command_id}
                )
                finished = None
            else:
                finished = finished_drain(self._commands.observe(command_id, action.instance_id), self._policy)
            if finished is None:
                self._hooks.heartbeat(_ref(action))
                return
            result, outcome = finished
            active = self._hooks.complete(_ref(action), result)
            logger.warning(
                "actions table unavailable: hook completed after its drain",
                extra=context
                | {"command_id": command_id, "result": str(result), "outcome": str(outcome), "active": active},
            )
        except AwsCallError as error:
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.error("drain without a record failed", extra=context | {"error": str(error), "code": error.code})

    def _observe(self, action: LifecycleAction) -> CommandObservation | None:
        if action.command_id is None or action.state is ActionState.COMPLETED:
            return None
        try:
            return self._commands.observe(action.command_id, action.instance_id)
        except AwsCallError as error:
            # Unknown, not failed: the domain waits (or, past the deadline, completes) without it.
            self._metrics.count(Metric.LIFECYCLE_ERRORS)
            logger.warning("command status unreadable", extra={"command_id": action.command_id, "error": str(error)})
            return None

    def _completed(self, action: LifecycleAction, done: CompleteHook, now: float) -> None:
        """Count and log an action that has just been completed."""
        if action.outcome is Outcome.ALREADY_DONE:
            self._already_done(action)
            return
        self._metrics.count(Metric.LIFECYCLE_ACTIONS_COMPLETED)
        context = {
            "instance_id": action.instance_id,
            "action": action.key,
            "group": action.group,
            "result": str(done.result),
            "outcome": str(done.outcome),
            "reason": done.reason,
        }
        if done.outcome is Outcome.SUCCEEDED:
            if action.is_drain:
                self._metrics.seconds(Metric.DRAIN_SECONDS, now - action.started_at)
            logger.info("lifecycle action completed", extra=context)
        else:
            self._metrics.count(
                Metric.LIFECYCLE_ACTIONS_FORCED if done.outcome is Outcome.FORCED else Metric.LIFECYCLE_ACTIONS_FAILED
            )
            logger.error(
                "lifecycle action completed unsuccessfully", extra=context | {"output": log_tail(action.last_output)}
            )
            if not action.is_drain and done.result is HookResult.ABANDON:
                # A launch the gate gave up on: the instance is replaced, and a fleet whose workers
                # never turn healthy loops on this (the LaunchesAbandoned alarm).
                self._metrics.count(Metric.LAUNCHES_ABANDONED)

    def _already_done(self, action: LifecycleAction) -> None:
        self._metrics.count(Metric.LIFECYCLE_ACTIONS_ALREADY_DONE)
        logger.warning(
            "no active lifecycle action: already done", extra={"instance_id": action.instance_id, "action": action.key}
        )

    @staticmethod
    def _report(action: LifecycleAction, last: Command) -> ActionReport:
        outcome = str(action.outcome) if action.outcome is not None else None
        # Every completion records its reason; until then the report gives the step's.
        reason = action.reason if action.state is ActionState.COMPLETED else _reason(last)
        return ActionReport(action.instance_id, action.key, _step_name(last), reason, outcome)


def _kind_of(detail: LifecycleActionDetail) -> ActionKind:
    """The action a hook's event asks for, by its transition and, with a warm pool, its Origin and Destination.

    Into the warm pool at launch: warm it (health-check, then let it stop). Out of the pool into
    service: the same admission as a cold launch. Back into the pool on scale-in (ReuseOnScaleIn):
    drained exactly as a termination. Terminated from the pool: nothing runs there to drain.
    """
    kind = _TRANSITIONS[detail.transition]
    if kind is ActionKind.LAUNCH:
        return ActionKind.WARM if detail.into_warm_pool else ActionKind.LAUNCH
    return ActionKind.WARM_EXIT if detail.from_warm_pool else ActionKind.TERMINATE


def _step_name(command: Command) -> str:
    """The report's `step`: what the last command was (the names of the reports' contract)."""
    return {
        SendHeartbeat: "wait",
        RunCommand: "run_command",
        CompleteHook: "complete",
        Wait: "wait",
        Done: "none",
    }[type(command)]


def _reason(command: Command) -> str:
    return "heartbeat" if isinstance(command, SendHeartbeat) else command.reason


def _ref(action: LifecycleAction) -> HookRef:
    # Only hook actions heartbeat or complete; one found without its event has no token.
    assert action.hook is not None
    return HookRef(group=action.group, hook=action.hook, instance_id=action.instance_id, token=action.token)
