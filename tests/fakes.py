"""In-memory implementations of the ports, for unit tests (no sockets)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from queue_scaler.config import QueueConfig
from queue_scaler.domain.models import FleetObservation, History, QueueObservation
from queue_scaler.errors import ConcurrentUpdate
from queue_scaler.ports import VersionedHistory


@dataclass
class FakeQueues:
    depth: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def read(self, queues: Sequence[QueueConfig]) -> list[QueueObservation]:
        return [
            QueueObservation(name=q.name, error=self.errors[q.name])
            if q.name in self.errors
            else QueueObservation(name=q.name, visible=self.depth.get(q.name, 0))
            for q in queues
        ]


@dataclass
class FakeFleet:
    desired: dict[str, int] = field(default_factory=dict)
    set_calls: list[tuple[str, int]] = field(default_factory=list)
    fail_set: Exception | None = None

    def describe(self, groups: Sequence[str]) -> Mapping[str, FleetObservation]:
        return {
            g: FleetObservation(desired=self.desired[g], in_service=self.desired[g])
            for g in groups
            if g in self.desired
        }

    def set_desired(self, group: str, desired: int) -> None:
        if self.fail_set is not None:
            raise self.fail_set
        self.set_calls.append((group, desired))
        self.desired[group] = desired


@dataclass
class FakeHistory:
    items: dict[str, VersionedHistory] = field(default_factory=dict)

    def load(self, pool: str) -> VersionedHistory:
        return self.items.get(pool, VersionedHistory(History(), 0))

    def save(self, pool: str, history: History, expected_version: int) -> int:
        if self.load(pool).version != expected_version:
            raise ConcurrentUpdate(pool)
        self.items[pool] = VersionedHistory(history, expected_version + 1)
        return expected_version + 1


@dataclass
class RecordingMetrics:
    pools: dict[str, list[Mapping[str, float]]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[tuple[str, str | None], float] = field(default_factory=lambda: defaultdict(float))

    def pool_metrics(self, pool: str, values: Mapping[str, float]) -> None:
        self.pools[pool].append(dict(values))

    def count(self, name: str, value: float = 1, pool: str | None = None) -> None:
        self.counts[(name, pool)] += value
