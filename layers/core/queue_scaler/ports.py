"""The interfaces the services need from the outside world (hexagonal ports).

Adapters implement them over boto3; tests and the simulator implement them in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from queue_scaler.config import QueueConfig
from queue_scaler.domain.lifecycle import CommandObservation, CommandRequest, HookResult, LifecycleAction
from queue_scaler.domain.models import FleetObservation, History, QueueObservation


class QueueMetrics(Protocol):
    def read(self, queues: Sequence[QueueConfig]) -> list[QueueObservation]:
        """One observation per queue, in order; a queue that cannot be read carries `error`."""
        ...


class Fleet(Protocol):
    def describe(self, groups: Sequence[str]) -> Mapping[str, FleetObservation]:
        """The named groups' state; a group that does not exist is absent from the result."""
        ...

    def set_desired(self, group: str, desired: int) -> None:
        """Set the group's desired capacity now (no cooldown: the decision already rate-limits)."""
        ...


@dataclass(frozen=True)
class VersionedHistory:
    history: History
    version: int


class HistoryStore(Protocol):
    def load(self, pool: str) -> VersionedHistory:
        """The pool's history and its version (0 when there is none yet)."""
        ...

    def save(self, pool: str, history: History, expected_version: int) -> int:
        """Write `history` if the stored version is still `expected_version`; returns the new version.

        Raises ConcurrentUpdate when another writer got there first.
        """
        ...


class MetricsSink(Protocol):
    def pool_metrics(self, pool: str, values: Mapping[str, float]) -> None:
        """Record one pool's figures (Count units) for this tick."""
        ...

    def count(self, name: str, value: float = 1, pool: str | None = None) -> None:
        """Count an event, such as a failure, optionally for one pool."""
        ...


class LifecycleMetricsSink(MetricsSink, Protocol):
    def seconds(self, name: str, value: float, pool: str | None = None) -> None:
        """Record a duration (Seconds unit), such as how long a drain took."""
        ...


@dataclass(frozen=True)
class HookRef:
    """What Auto Scaling needs to find one lifecycle action."""

    group: str
    hook: str
    instance_id: str
    token: str


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


class RemoteCommands(Protocol):
    def run(self, instance_id: str, command: CommandRequest) -> str:
        """Start a shell command on the instance; returns the command id."""
        ...

    def observe(self, command_id: str, instance_id: str) -> CommandObservation:
        """The command's status and output on the instance (Pending while SSM does not know it yet)."""
        ...


class ActionStore(Protocol):
    def create(self, action: LifecycleAction) -> LifecycleAction | None:
        """Record a new action (returned with its stored version); None when it exists (a duplicate event)."""
        ...

    def get(self, instance_id: str, key: str) -> LifecycleAction | None: ...

    def for_instance(self, instance_id: str) -> list[LifecycleAction]:
        """Every recorded action of the instance."""
        ...

    def pending(self) -> list[LifecycleAction]:
        """Every action not yet completed, for the reconciler."""
        ...

    def save(self, action: LifecycleAction) -> LifecycleAction:
        """Replace the action if its stored version is still `action.version`; returns it with the new version.

        Raises ActionConflict when another invocation saved it first.
        """
        ...


class LeavingInstances(Protocol):
    def leaving(self, now: float) -> frozenset[str]:
        """Instances known to be on their way out (terminating, Spot-interrupted, rebalance-recommended).

        The scaler may count them as capacity that is going away; see README "Lifecycle hooks".
        """
        ...
