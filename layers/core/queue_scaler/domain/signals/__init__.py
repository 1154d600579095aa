"""Scaling signals: each one turns an observation into a proposal of how many instances a pool needs.

A signal is one module here with its settings model and its table tests. It implements `Signal`
and registers itself with `register`; a pool names the signals it uses in `PoolConfig.signals`
(backlog on by default). The decision takes the largest proposal, as the Kubernetes HPA takes the
largest replica count over its metrics (`computeReplicasForMetrics`), and names the signal that won.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from queue_scaler.config import PoolConfig
from queue_scaler.domain.models import History, Observation


@dataclass(frozen=True)
class Proposal:
    """One signal's view of the pool's need, with the lines that explain it."""

    signal: str
    raw_need: float
    """Instances needed, unrounded: the decision rounds up the largest proposal."""
    lines: tuple[str, ...]
    active: bool
    """Whether this signal alone would wake a pool at zero (KEDA's activation)."""
    activity: str
    """Why it is or is not active, as the explanation says it: `backlog 14 > activation 0`."""
    unavailable: tuple[str, ...] = ()
    """Inputs the signal could not read: a scale-down on partial data is blocked."""
    backlog: int = 0
    """Messages the signal counted (0 for signals that count no queue)."""
    work: int = 0
    """Messages that occupy or wait for a worker slot (the keep-busy floor reads it)."""
    held: float = 0.0
    """The part of `raw_need` the running messages hold (their slots); the rest is queue-driven."""


class Signal(Protocol):
    """A source of scaling need (KEDA's `Scaler`): pure, deterministic, `now` passed in."""

    name: str

    def need(self, pool: PoolConfig, observation: Observation, history: History, now: float) -> Proposal:
        """The instances this signal says `pool` needs; its settings are `pool.signals[self.name]`."""
        ...


@dataclass(frozen=True)
class SignalSpec:
    signal: Signal
    settings: type[BaseModel]


_REGISTRY: dict[str, SignalSpec] = {}


def register(signal: Signal, settings: type[BaseModel]) -> None:
    """Make `signal` available to pools under its name, its settings validated by `settings`."""
    _REGISTRY[signal.name] = SignalSpec(signal, settings)


def registered() -> dict[str, SignalSpec]:
    """Every known signal by name (the built-in ones are registered on import of this package)."""
    return dict(_REGISTRY)


def get(name: str) -> Signal:
    return _REGISTRY[name].signal


def _builtin() -> None:
    # Imported here, not at the top: the signal modules import this package's Proposal.
    from queue_scaler.domain.signals import arrival_rate, backlog

    register(backlog.BACKLOG, backlog.BacklogSettings)
    register(arrival_rate.ARRIVAL_RATE, arrival_rate.ArrivalRateSettings)


_builtin()
