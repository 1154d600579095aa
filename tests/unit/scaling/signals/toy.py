"""A toy signal, as a new signal is written: one class with its settings model, registered by name.

It proposes a fixed number of instances; the decision tests only need a second proposal they control.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from queue_scaler.scaling.domain import signals
from queue_scaler.scaling.domain.models import QUEUE_COUNTS, History, Observation, WorkSample
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.domain.signals import Proposal
from queue_scaler.shared.domain.text import fmt


class ToySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instances: Annotated[float, Field(ge=0, le=10_000)]


class ToySignal:
    name = "toy"
    settings = ToySettings
    inputs = frozenset({QUEUE_COUNTS})

    def check(self, pool: PoolConfig, settings: BaseModel) -> None:
        """Any pool can use it."""

    def history_seconds(self, settings: BaseModel) -> float:
        return 0.0

    def remember(self, observation: Observation, now: float) -> WorkSample | None:
        return None

    def need(self, pool: PoolConfig, observation: Observation, history: History, now: float) -> Proposal:
        settings = pool.signals[self.name]
        assert isinstance(settings, ToySettings)
        return Proposal(
            signal=self.name,
            raw_need=settings.instances,
            lines=(f"toy: {fmt(settings.instances)} instance(s)",),
            active=settings.instances > 0,
            activity=f"toy {fmt(settings.instances)} > 0" if settings.instances > 0 else "toy 0",
        )


signals.register(ToySignal())
