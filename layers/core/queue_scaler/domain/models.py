"""Inputs and output of one scaling decision (CONTRACTS.md section 1), as validated models."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from queue_scaler.config import PoolConfig


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class QueueObservation(_Model):
    """One queue's SQS counters, or the error that kept them from being read."""

    name: str
    visible: Annotated[int, Field(ge=0)] = 0
    in_flight: Annotated[int, Field(ge=0)] = 0
    delayed: Annotated[int, Field(ge=0)] = 0
    error: str | None = Field(default=None, description="Why the queue could not be read")


class FleetObservation(_Model):
    """The Auto Scaling group: its desired capacity and the instances serving or booting."""

    desired: Annotated[int, Field(ge=0)]
    in_service: Annotated[int, Field(ge=0)] = 0
    pending: Annotated[int, Field(ge=0)] = 0
    leaving: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description="Instances on their way out (Spot interruption, rebalance recommendation): counted in "
        "desired until they terminate, but capacity that is going away",
    )


class Observation(_Model):
    queues: list[QueueObservation]
    fleet: FleetObservation


class Recommendation(_Model):
    at: float
    desired: Annotated[int, Field(ge=0)]


class ScaleEvent(_Model):
    at: float
    change: int


class History(_Model):
    """What the scaler recommended and changed recently: the memory behind stabilization and rates."""

    recommendations: list[Recommendation] = Field(default_factory=list)
    scale_events: list[ScaleEvent] = Field(default_factory=list)

    def pruned(self, now: float, keep_seconds: float) -> History:
        """Only the entries a decision at `now` can still look at."""
        horizon = now - keep_seconds
        return History(
            recommendations=[r for r in self.recommendations if r.at > horizon],
            scale_events=[e for e in self.scale_events if e.at > horizon],
        )


class LimitedBy(StrEnum):
    """The last rule that moved the result away from the plain need."""

    NONE = "None"
    WITHIN_TOLERANCE = "WithinTolerance"
    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"
    MAX_SIZE = "MaxSize"
    MIN_SIZE = "MinSize"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    ACTIVATION = "Activation"


class Decision(_Model):
    """One pool's decision, with a human-readable line for every step that shaped it."""

    pool: str
    current: int
    recommendation: int = Field(description="The need after tolerance and activation; what history keeps")
    desired: int
    limited_by: LimitedBy
    explanation: list[str]
    raw_need: float = Field(description="Sum over readable queues of backlog / target")
    backlog: int = Field(description="Backlog counted over readable queues")
    unavailable_queues: list[str] = Field(default_factory=list)

    @property
    def change(self) -> int:
        return self.desired - self.current


class DecisionRequest(_Model):
    """The input of `queue-scaler decide`: everything a decision depends on, `now` included."""

    now: float
    pool: PoolConfig
    observation: Observation
    history: History = Field(default_factory=History)

    @model_validator(mode="after")
    def _queues_known(self) -> DecisionRequest:
        configured = {q.name for q in self.pool.queues}
        for index, queue in enumerate(self.observation.queues):
            if queue.name not in configured:
                raise ValueError(
                    f"observation.queues.{index}.name: {queue.name!r} is not a queue of pool {self.pool.name!r}"
                )
        return self
