"""In-memory implementations of the scaler's ports: the one set that unit tests, the simulator and
`queue-scaler explain` use (no sockets, no boto3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from queue_scaler.scaling.domain.fleet import GroupState, InstanceState, LeavingRecord
from queue_scaler.scaling.domain.models import History, QueueObservation
from queue_scaler.scaling.domain.pool import QueueConfig
from queue_scaler.scaling.ports import VersionedHistory
from queue_scaler.shared.errors import ConcurrentUpdate
from queue_scaler.shared.metric_names import Metric


@dataclass
class MemoryHistory:
    """Implements ports.HistoryStore with DynamoDB's version rule: a stale writer gets ConcurrentUpdate."""

    items: dict[str, VersionedHistory] = field(default_factory=dict)
    saves: int = 0

    def load(self, pool: str) -> VersionedHistory:
        return self.items.get(pool, VersionedHistory(History(), 0))

    def save(self, pool: str, history: History, expected_version: int) -> int:
        if self.load(pool).version != expected_version:
            raise ConcurrentUpdate(pool)
        self.items[pool] = VersionedHistory(history, expected_version + 1)
        self.saves += 1
        return expected_version + 1


@dataclass
class MemoryQueues:
    """Implements ports.QueueMetrics over counts held in memory; a queue in `errors` fails with its code."""

    depth: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def read(self, queues: Sequence[QueueConfig]) -> list[QueueObservation]:
        return [
            QueueObservation(name=q.name, error=self.errors[q.name])
            if q.name in self.errors
            else QueueObservation(
                name=q.name, visible=self.depth.get(q.name, 0), in_flight=self.in_flight.get(q.name, 0)
            )
            for q in queues
        ]


@dataclass
class MemoryFleet:
    """Implements ports.Fleet: groups whose instances are all in service, sized by `desired`."""

    desired: dict[str, int] = field(default_factory=dict)
    set_calls: list[tuple[str, int]] = field(default_factory=list)

    def describe(self, groups: Sequence[str]) -> Mapping[str, GroupState]:
        return {
            g: GroupState(
                desired=self.desired[g],
                instances=[
                    InstanceState(instance_id=f"{g}-{i}", lifecycle_state="InService") for i in range(self.desired[g])
                ],
            )
            for g in groups
            if g in self.desired
        }

    def set_desired(self, group: str, desired: int) -> None:
        self.set_calls.append((group, desired))
        self.desired[group] = desired


@dataclass
class MemoryLeaving:
    """Implements ports.LeavingInstances over records held in memory."""

    stored: list[LeavingRecord] = field(default_factory=list)

    def records(self, instance_ids: Sequence[str]) -> list[LeavingRecord]:
        wanted = set(instance_ids)
        return [r for r in self.stored if r.instance_id in wanted]


class NullMetrics:
    """Implements ports.MetricsSink and LoadMetricsSink for tools that publish nothing (`explain`, the
    simulator, which measures its own figures)."""

    def pool_metrics(self, pool: str, values: Mapping[Metric, float]) -> None:
        """Nothing to publish."""

    def count(self, name: Metric, value: float = 1, pool: str | None = None) -> None:
        """Nothing to publish."""

    def queue_metrics(self, pool: str, queue: str, values: Mapping[str, float], unit: str = "Count") -> None:
        """Nothing to publish."""

    def seconds(self, name: Metric, value: float, pool: str | None = None) -> None:
        """Nothing to publish."""
