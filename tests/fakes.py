"""In-memory implementations of the ports, for unit tests (no sockets)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from queue_scaler.config import QueueConfig
from queue_scaler.domain.lifecycle import (
    ActionState,
    CommandObservation,
    CommandRequest,
    HookResult,
    LifecycleAction,
)
from queue_scaler.domain.models import FleetObservation, History, QueueObservation
from queue_scaler.errors import ActionConflict, ConcurrentUpdate
from queue_scaler.ports import HookRef, VersionedHistory


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


@dataclass
class TimingMetrics(RecordingMetrics):
    """RecordingMetrics that also records durations (ports.LifecycleMetricsSink)."""

    durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def seconds(self, name: str, value: float, pool: str | None = None) -> None:
        self.durations[name].append(value)


@dataclass
class FakeActionStore:
    """ports.ActionStore and ports.LeavingInstances in memory, with the same version rule as DynamoDB's."""

    items: dict[tuple[str, str], LifecycleAction] = field(default_factory=dict)
    #: Called before each save, to let a rival invocation act in between (a race).
    before_save: Callable[[LifecycleAction], None] | None = None

    def create(self, action: LifecycleAction) -> LifecycleAction | None:
        if (action.instance_id, action.key) in self.items:
            return None
        stored = action.model_copy(update={"version": 1})
        self.items[(action.instance_id, action.key)] = stored
        return stored

    def get(self, instance_id: str, key: str) -> LifecycleAction | None:
        return self.items.get((instance_id, key))

    def for_instance(self, instance_id: str) -> list[LifecycleAction]:
        return [a for (i, _), a in self.items.items() if i == instance_id]

    def pending(self) -> list[LifecycleAction]:
        return [a for a in self.items.values() if a.state is ActionState.PENDING]

    def save(self, action: LifecycleAction) -> LifecycleAction:
        if self.before_save is not None:
            hook, self.before_save = self.before_save, None
            hook(action)
        stored = self.items.get((action.instance_id, action.key))
        if stored is None or stored.version != action.version:
            raise ActionConflict(action.instance_id, action.key)
        saved = action.model_copy(update={"version": action.version + 1})
        self.items[(action.instance_id, action.key)] = saved
        return saved


@dataclass
class FakeHooks:
    """ports.LifecycleHooks: `active` tokens answer; any other token is "No active Lifecycle Action found"."""

    active: set[str] = field(default_factory=set)
    groups: dict[str, str] = field(default_factory=dict)
    completed: dict[str, HookResult] = field(default_factory=dict)
    heartbeats: list[str] = field(default_factory=list)
    fail: Exception | None = None

    def complete(self, ref: HookRef, result: HookResult) -> bool:
        if self.fail is not None:
            raise self.fail
        if ref.token not in self.active:
            return False
        self.active.discard(ref.token)
        self.completed[ref.token] = result
        return True

    def heartbeat(self, ref: HookRef) -> bool:
        if self.fail is not None:
            raise self.fail
        if ref.token not in self.active:
            return False
        self.heartbeats.append(ref.token)
        return True

    def group_of(self, instance_id: str) -> str | None:
        return self.groups.get(instance_id)


@dataclass
class FakeCommands:
    """ports.RemoteCommands: every command runs until `finish`; `fail_send` makes SendCommand fail."""

    sent: list[tuple[str, str, CommandRequest]] = field(default_factory=list)
    status: dict[str, CommandObservation] = field(default_factory=dict)
    fail_send: Exception | None = None

    def run(self, instance_id: str, command: CommandRequest) -> str:
        if self.fail_send is not None:
            raise self.fail_send
        command_id = f"cmd-{len(self.sent) + 1}"
        self.sent.append((command_id, instance_id, command))
        self.status[command_id] = CommandObservation(status="InProgress")
        return command_id

    def observe(self, command_id: str, instance_id: str) -> CommandObservation:
        return self.status[command_id]

    def finish(self, command_id: str, status: str, output: str = "") -> None:
        self.status[command_id] = CommandObservation(status=status, output=output)
