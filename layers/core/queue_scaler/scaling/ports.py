"""The scaling area's ports: queue counters and inputs, the fleet, the history a tick keeps, leaving
instances.

Adapters implement them over boto3; tests and the simulator implement them in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from queue_scaler.scaling.domain.fleet import GroupState, LeavingRecord
from queue_scaler.scaling.domain.models import History, QueueObservation, QueueReading, RefreshState
from queue_scaler.scaling.domain.pool import QueueConfig


class QueueMetrics(Protocol):
    def read(self, queues: Sequence[QueueConfig]) -> list[QueueObservation]:
        """One observation per queue, in order; a queue that cannot be read carries `error`."""
        ...


class InputReader(Protocol):
    """Reads one input kind a signal needs (`Signal.inputs`) beyond the queue counters; the composition
    root maps each kind to its reader."""

    def read(self, queues: Sequence[QueueConfig]) -> list[QueueReading]:
        """One reading per queue, in order; a queue whose value cannot be read carries `error`."""
        ...


class Fleet(Protocol):
    def describe(self, groups: Sequence[str]) -> Mapping[str, GroupState]:
        """The named groups' raw state; a group that does not exist is absent from the result."""
        ...

    def set_desired(self, group: str, desired: int) -> None:
        """Set the group's desired capacity now (no cooldown: the decision already rate-limits)."""
        ...


class InstanceRefreshes(Protocol):
    def refresh_state(self, group: str, now: float) -> RefreshState:
        """The group's latest instance refresh: running (Pending, InProgress, Cancelling,
        RollbackInProgress, Baking), failed (ended without rolling out, recently: domain.fleet's
        refresh_state) or none."""
        ...

    def start_refresh(self, group: str) -> bool:
        """Start an instance refresh that replaces the group's instances of another launch template
        version, launching each replacement before its old instance leaves (through the terminate hook)
        and replacing scale-in protected instances too. False when one was already running (AWS's
        InstanceRefreshInProgress: another tick started it)."""
        ...


@dataclass(frozen=True)
class VersionedHistory:
    history: History
    version: int
    skipped: int = 0
    """Entries of the stored item that could not be read (a missing field, a value out of range): left
    out of `history`, so they are dropped when it is next written."""


class HistoryStore(Protocol):
    def load(self, pool: str) -> VersionedHistory:
        """The pool's history and its version (0 when there is none yet)."""
        ...

    def save(self, pool: str, history: History, expected_version: int) -> int:
        """Write `history` if the stored version is still `expected_version`; returns the new version.

        Raises ConcurrentUpdate when another writer got there first.
        """
        ...


class LeavingInstances(Protocol):
    def records(self, instance_ids: Sequence[str]) -> list[LeavingRecord]:
        """What the lifecycle function recorded about these instances leaving (Spot interruption,
        rebalance recommendation), as stored: whether a record still counts is the domain's rule
        (domain.fleet.leaving_instances). See README "Lifecycle hooks".
        """
        ...
