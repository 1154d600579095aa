"""Scaling signals: each one turns an observation into a proposal of how many instances a pool needs.

A signal is a plug-in: one module in this package (docs/signals.md, "Adding a signal") holding a
class that implements `Signal` and a call to `register` with its instance. The registry loads every
module of this package the first time it is asked, so no list names the built-in signals and no
service or builder changes for a new one. A signal declares its name, its settings model and their
check against the pool, the inputs it needs observed (by kind, `domain.models.QUEUE_COUNTS` or a
kind the composition root has a reader for), how far back it looks and what the history keeps for it.

A pool names the signals it uses in `PoolConfig.signals` (backlog on by default). The decision
takes the largest proposal, as the Kubernetes HPA takes the largest replica count over its metrics
(`computeReplicasForMetrics`), and names the signal that won.

This module imports no pool model: the pool validates its signals through this registry, and the
signal modules import the pool (so a signal's pool parameter is typed in its own module, and the
registry holds `Signal[Any]`).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from queue_scaler.scaling.domain.models import History, Observation, WorkSample
from queue_scaler.shared.metric_names import Metric


@dataclass(frozen=True)
class Cap:
    """The most instances a signal allows now (a schedule's `maximum`), and why, as the explanation says it."""

    value: int
    reason: str


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
    figures: tuple[tuple[Metric, float], ...] = ()
    """The signal's own figures, published per pool each tick (`shared.metric_names`)."""
    added: Metric | None = None
    """Where set, the decision publishes under this name the instances this proposal adds to the need
    over the other signals' largest (0 when it adds none)."""
    cap: Cap | None = None
    """A cap on the desired capacity while it holds (the decision's `signal_cap` rule)."""


PoolT_contra = TypeVar("PoolT_contra", contravariant=True)


class Signal(Protocol[PoolT_contra]):
    """A source of scaling need (KEDA's `Scaler`): pure, deterministic, `now` passed in.

    `PoolT_contra` is `queue_scaler.scaling.domain.pool.PoolConfig` in every signal module."""

    name: str
    inputs: frozenset[str]
    """The input kinds this signal reads from the observation (`Observation.queues` is `QUEUE_COUNTS`;
    any other kind is in `Observation.inputs`, read by the reader the composition root maps it to)."""

    @property
    def settings(self) -> type[BaseModel]:
        """What a pool writes under `signals.<name>`; its settings are `pool.signals[name]`, of this type."""
        ...

    def check(self, pool: PoolT_contra, settings: BaseModel) -> None:
        """Raise ValueError, naming the field, when `pool` cannot use this signal with `settings`."""
        ...

    def history_seconds(self, settings: BaseModel) -> float:
        """How far back this signal looks into the history (0: it reads none)."""
        ...

    def remember(self, observation: Observation, now: float) -> WorkSample | None:
        """What the history keeps of this decision for this signal (None: nothing)."""
        ...

    def need(self, pool: PoolT_contra, observation: Observation, history: History, now: float) -> Proposal:
        """The instances this signal says `pool` needs; its settings are `pool.signals[self.name]`."""
        ...


_REGISTRY: dict[str, Signal[Any]] = {}


def register(signal: Signal[Any]) -> None:
    """Make `signal` available to pools under its name (a signal module calls it on import)."""
    _REGISTRY[signal.name] = signal


def registered() -> dict[str, Signal[Any]]:
    """Every known signal by name: each module of this package, and any registered since."""
    _load_modules()
    return dict(_REGISTRY)


def get(name: str) -> Signal[Any]:
    _load_modules()
    return _REGISTRY[name]


def modules() -> list[str]:
    """The names of this package's signal modules: one signal each, registered on import."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__))


@functools.cache
def _load_modules() -> None:
    # Imported by name, not at the top: a signal module imports the pool model, which imports this
    # registry, so a static import here would be a cycle. Loading them all on first use is what makes
    # a new module a plug-in. Cached: once per process (a failed import is tried again).
    for name in modules():
        importlib.import_module(f"{__name__}.{name}")
