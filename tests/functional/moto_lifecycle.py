"""What moto lacks for lifecycle hooks: pending lifecycle actions, and the instance side of Run Command.

moto 5.2.5 stores hooks but never fires them, has no CompleteLifecycleAction nor
RecordLifecycleActionHeartbeat, and its SendCommand answers Success and runs nothing. This module
adds the two actions to moto's AutoScalingResponse (moto dispatches a query-protocol call to the
method named after the action), backed by a registry of pending actions, and lets a test say how
each command ends on its instance. The project's boto3 adapters stay unchanged; the local cloud can
install the same two methods in its moto server.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import EmptyResult
from moto.ssm.models import SimpleSystemManagerBackend

from devkit.localcloud.emulation import STDOUT_CONTENT_CHARS, check_send_command
from queue_scaler.lifecycle.domain.commands import parse_comment
from tests.functional.moto_stack import REGION

#: The result of an action whose hook timed out (Auto Scaling then applies the hook's DefaultResult).
EXPIRED = "expired"


@dataclass
class PendingAction:
    group: str
    hook: str
    instance_id: str
    heartbeats: int = 0
    result: str | None = None
    #: The hook's HeartbeatTimeout, when the test wants it to expire as Auto Scaling's would.
    timeout: float | None = None
    started_at: float = field(default_factory=time.time)
    beats: list[float] = field(default_factory=list)
    completed_at: float | None = None

    def expire(self, now: float) -> None:
        """Auto Scaling ends an action whose heartbeat timer ran out."""
        last = max([self.started_at, *self.beats])
        if self.result is None and self.timeout is not None and now - last > self.timeout:
            self.result, self.completed_at = EXPIRED, last + self.timeout


@dataclass
class LifecycleActions:
    """Auto Scaling's side of lifecycle actions: tokens it handed out, and what was done with them."""

    actions: dict[str, PendingAction] = field(default_factory=dict)

    def start(
        self, group: str, hook: str, instance_id: str, *, timeout: float | None = None, hold: str | None = None
    ) -> str:
        """An instance enters a wait state: the token its event carries. `hold` puts the instance in that
        lifecycle state (e.g. Terminating:Wait) for DescribeAutoScalingInstances until the action ends."""
        token = str(uuid.uuid4())
        self.actions[token] = PendingAction(group, hook, instance_id, timeout=timeout)
        if hold is not None:
            _set_state(group, instance_id, hold)
        return token

    def active(self, params: dict[str, Any]) -> PendingAction:
        for action in self.actions.values():
            action.expire(time.time())
        token = params.get("LifecycleActionToken", "")
        if token:
            action = self.actions.get(token)
        else:  # Auto Scaling also finds an action by its instance, when no token is given
            instance = params.get("InstanceId")
            action = next((a for a in self.actions.values() if a.instance_id == instance and a.result is None), None)
        if (
            action is None
            or action.result is not None
            or (action.group, action.hook) != (params.get("AutoScalingGroupName"), params.get("LifecycleHookName"))
        ):
            raise ValidationError(f"No active Lifecycle Action found with token {token}")
        return action


@dataclass
class SentCommand:
    command_id: str
    instance_id: str
    purpose: str  # "drain" or "health", from the Comment the adapter sets
    script: list[str]
    invocation: dict[str, Any]
    sent_at: float = field(default_factory=time.time)

    @property
    def running(self) -> bool:
        return self.invocation["Status"] in ("Pending", "InProgress")

    def finish(self, status: str, output: str = "") -> None:
        """The command ends on its instance; SSM hands over only the first 24,000 characters of stdout."""
        self.invocation.update(Status=status, StatusDetails=status, StandardOutputContent=output[:STDOUT_CONTENT_CHARS])


@dataclass
class SsmAgent:
    """The instances' SSM agent: a command runs (InProgress) until the test finishes it, unless replied at once."""

    sent: list[SentCommand] = field(default_factory=list)
    replies: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def reply(self, instance_id: str, purpose: str, status: str, output: str = "") -> None:
        """Commands of this purpose on this instance end at once with this status and output."""
        self.replies[(instance_id, purpose)] = (status, output)

    def of(self, purpose: str) -> list[SentCommand]:
        return [c for c in self.sent if c.purpose == purpose]


def install(monkeypatch: pytest.MonkeyPatch) -> tuple[LifecycleActions, SsmAgent]:
    """Patch moto for this test; returns the pending-actions registry and the SSM agent."""
    actions, agent = LifecycleActions(), SsmAgent()

    def complete_lifecycle_action(self: AutoScalingResponse) -> EmptyResult:
        action = actions.active(self._get_params())
        action.result = self._get_param("LifecycleActionResult")
        action.completed_at = time.time()
        _set_state(action.group, action.instance_id, "Terminating:Proceed", only_from="Terminating:Wait")
        _set_state(action.group, action.instance_id, "InService", only_from="Pending:Wait")
        return EmptyResult()

    def record_lifecycle_action_heartbeat(self: AutoScalingResponse) -> EmptyResult:
        action = actions.active(self._get_params())
        action.heartbeats += 1
        action.beats.append(time.time())
        return EmptyResult()

    monkeypatch.setattr(AutoScalingResponse, "complete_lifecycle_action", complete_lifecycle_action, raising=False)
    monkeypatch.setattr(
        AutoScalingResponse, "record_lifecycle_action_heartbeat", record_lifecycle_action_heartbeat, raising=False
    )

    send_command = SimpleSystemManagerBackend.send_command

    def send_and_run(backend: SimpleSystemManagerBackend, **kwargs: Any) -> Any:
        asked = list(kwargs.get("instance_ids") or [])
        check_send_command(kwargs.get("comment") or "")
        command = send_command(backend, **kwargs)
        purpose = [str(parse_comment(kwargs.get("comment") or "").purpose)]
        # moto also adds every EC2 instance it knows when Targets is empty: keep the instances asked for.
        command.invocations = [i for i in command.invocations if i["InstanceId"] in asked]
        command.instance_ids = asked  # what ListCommands(InstanceId=...) matches, as SSM's own targets
        for invocation in command.invocations:
            sent = SentCommand(
                command.command_id,
                invocation["InstanceId"],
                purpose[0],
                list(kwargs.get("parameters", {}).get("commands", [])),
                invocation,
            )
            status, output = agent.replies.get((sent.instance_id, sent.purpose), ("InProgress", ""))
            sent.finish(status, output)
            agent.sent.append(sent)
        return command

    monkeypatch.setattr(SimpleSystemManagerBackend, "send_command", send_and_run)
    return actions, agent


def _set_state(group: str, instance_id: str, state: str, only_from: str | None = None) -> None:
    """Put one of moto's group members in a lifecycle state (moto has no wait states of its own)."""
    found = autoscaling_backends[DEFAULT_ACCOUNT_ID][REGION].autoscaling_groups.get(group)
    for member in found.instance_states if found is not None else []:
        if member.instance.id == instance_id and (only_from is None or member.lifecycle_state == only_from):
            member.lifecycle_state = state
