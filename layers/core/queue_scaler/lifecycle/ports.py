"""The lifecycle area's ports: lifecycle hooks, remote commands, the actions table, lifecycle metrics.

Adapters implement them over boto3; tests and the simulator implement them in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from queue_scaler.lifecycle.domain.commands import CommandRequest, Purpose
from queue_scaler.lifecycle.domain.lifecycle import CommandObservation, HookResult, LifecycleAction
from queue_scaler.shared.metric_names import Metric
from queue_scaler.shared.ports import MetricsSink


class LifecycleMetricsSink(MetricsSink, Protocol):
    def seconds(self, name: Metric, value: float, pool: str | None = None) -> None:
        """Record a duration (Seconds unit), such as how long a drain took."""
        ...


@dataclass(frozen=True)
class HookRef:
    """What Auto Scaling needs to find one lifecycle action."""

    group: str
    hook: str
    instance_id: str
    #: None for an action the reconciler found without its event: Auto Scaling finds it by instance id.
    token: str | None


@dataclass(frozen=True)
class WaitingInstance:
    """An instance Auto Scaling holds at a lifecycle hook (Pending:Wait or Terminating:Wait)."""

    instance_id: str
    group: str
    lifecycle_state: str


@dataclass(frozen=True)
class PendingActions:
    """The actions not yet completed, and the items that could not be read as actions (with why)."""

    actions: list[LifecycleAction]
    unreadable: list[str]


class LifecycleHooks(Protocol):
    def complete(self, ref: HookRef, result: HookResult) -> bool:
        """CompleteLifecycleAction; False when Auto Scaling has no active action for the token (already done)."""
        ...

    def heartbeat(self, ref: HookRef) -> bool:
        """RecordLifecycleActionHeartbeat; False when Auto Scaling has no active action for the token."""
        ...

    def group_of(self, instance_id: str) -> str | None:
        """The Auto Scaling group the instance belongs to, None when it is in none."""
        ...

    def waiting(self, groups: frozenset[str]) -> list[WaitingInstance]:
        """Every instance of `groups` in Pending:Wait or Terminating:Wait (DescribeAutoScalingInstances)."""
        ...

    def hook_name(self, group: str, transition: str) -> str | None:
        """The group's lifecycle hook for `transition` (autoscaling:EC2_INSTANCE_...), None when it has none."""
        ...

    def in_service(self, groups: frozenset[str]) -> list[str]:
        """Every instance of `groups` InService and still Healthy (DescribeAutoScalingInstances)."""
        ...

    def mark_unhealthy(self, instance_id: str) -> None:
        """SetInstanceHealth Unhealthy (respecting the grace period): Auto Scaling replaces the instance."""
        ...


class RemoteCommands(Protocol):
    def run(self, instance_id: str, command: CommandRequest) -> str:
        """Start a shell command on the instance; returns the command id."""
        ...

    def observe(self, command_id: str, instance_id: str) -> CommandObservation:
        """The command's status and output on the instance (Pending while SSM does not know it yet)."""
        ...

    def sweep(self, instance_ids: Sequence[str], command: CommandRequest) -> list[str]:
        """Start one shell command on many instances (as few calls as SSM allows); the command ids."""
        ...

    def find(self, instance_id: str, purpose: Purpose, since: float) -> str | None:
        """The newest command of ours with this purpose sent to the instance at or after `since` (epoch
        seconds), whatever its status; None if none. `since` keeps an instance that the warm pool
        reuses from adopting the drain of an earlier trip (lifecycle.drain_horizon).

        SSM's own record, not the actions table's: what converges every actor on one drain when the
        table lost (or never took) the record of the one already sent.
        """
        ...


class ActionStore(Protocol):
    def create(self, action: LifecycleAction) -> LifecycleAction | None:
        """Record a new action (returned with its stored version); None when it exists (a duplicate event)."""
        ...

    def get(self, instance_id: str, key: str) -> LifecycleAction | None: ...

    def for_instance(self, instance_id: str) -> list[LifecycleAction]:
        """Every recorded action of the instance."""
        ...

    def pending(self) -> PendingActions:
        """Every action not yet completed, for the reconciler; a malformed item is reported, not raised."""
        ...

    def save(self, action: LifecycleAction) -> LifecycleAction:
        """Replace the action if its stored version is still `action.version`; returns it with the new version.

        Raises ActionConflict when another invocation saved it first.
        """
        ...
