"""The interfaces the services need from the outside world (hexagonal ports).

Adapters implement them over boto3; tests and the simulator implement them in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from queue_scaler.config import QueueConfig
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
