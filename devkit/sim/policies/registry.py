"""The simulator's one list of policies: each policy module registers itself here, and every other
list (`POLICIES`, `PEERS`, the benchmark's dynamic peers, ours, the oracle, the CLI's choices) is
derived from it.

Adding a peer (ARCHITECTURE.md, "Add a peer"), measured by adding a toy dynamic peer on a scratch
branch (`git diff --stat`: 2 files, +27 lines): a module in this package that defines its controller
and calls `register` once per name, and one import line in `devkit/sim/policies/__init__.py` (the
order of those imports is the order of the reports' rows within a role). `simulate --policy`,
`bench`, the reports, the plots and every test parametrized over `POLICIES` take it from there; its
own pinning test (tests/unit/sim/test_sim_peers.py) and its paragraph in docs/benchmark.md complete it.
A peer with several documented configurations (target tracking's two recipes) registers them as
`variants` with a `choose` rule: `runner.simulate` runs each and reports the chosen one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from devkit.sim.engine import ControllerFactory
from devkit.sim.scenario import Scenario
from devkit.sim.workload import Workload


class Role(Enum):
    """What a policy is to the benchmark (docs/benchmark.md, "The goal")."""

    #: The policy the product deploys; exactly one.
    OURS = "ours"
    #: A peer that scales with the load; the benchmark's better peer P is chosen among these.
    DYNAMIC_PEER = "dynamic peer"
    #: A peer that does not scale (compared, never P).
    STATIC_PEER = "static peer"
    #: The reactive bound B_r (the best a scaler that cannot see the future does); exactly one.
    REACTIVE_BOUND = "reactive bound"
    #: The clairvoyant bound B, printed as a reference; exactly one.
    ORACLE = "oracle"


#: How a policy builds each pool's controller for one scenario and its workload.
Builder = Callable[[Scenario, Workload], ControllerFactory]
#: Which of a policy's variants counts as the policy, from each variant's run metrics (by variant name).
Chooser = Callable[[Mapping[str, Mapping[str, Any]]], str]


@dataclass(frozen=True)
class Policy:
    name: str
    build: Builder
    role: Role
    #: Where its model comes from (the documentation or source it follows), shown by `simulate --help`.
    citation: str
    #: (label, builder) of each setting the benchmark runs it under (the reactive bound's holds);
    #: empty: it runs as registered.
    sweep: tuple[tuple[str, Builder], ...] = ()
    #: Documented alternatives the policy may be configured as (variant name -> builder): the runner
    #: simulates each and `choose` picks the one that counts as the policy (an operator tunes toward
    #: it). Empty: `build` alone.
    variants: Mapping[str, Builder] = field(default_factory=dict)
    choose: Chooser | None = None


_POLICIES: dict[str, Policy] = {}

#: The roles that exactly one policy holds.
_SINGLE = (Role.OURS, Role.REACTIVE_BOUND, Role.ORACLE)


def register(
    name: str,
    build: Builder,
    role: Role,
    citation: str,
    sweep: tuple[tuple[str, Builder], ...] = (),
    *,
    variants: Mapping[str, Builder] | None = None,
    choose: Chooser | None = None,
) -> Policy:
    """Add a policy under `name`; a name taken, a second OURS/REACTIVE_BOUND/ORACLE, or variants
    without a chooser (or a chooser without variants) is a programming error."""
    if bool(variants) != (choose is not None):
        raise ValueError(f"policy {name!r}: variants and choose come together")
    if name in _POLICIES:
        raise ValueError(f"policy {name!r} is registered twice")
    if role in _SINGLE and any(p.role is role for p in _POLICIES.values()):
        raise ValueError(f"policy {name!r}: a {role.value} policy is already registered ({the(role).name!r})")
    policy = Policy(name, build, role, citation, sweep, dict(variants or {}), choose)
    _POLICIES[name] = policy
    return policy


def unregister(name: str) -> None:
    """Remove a policy (a test's toy policy); an unknown name is an error."""
    del _POLICIES[name]


def get(name: str) -> Policy:
    try:
        return _POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r} (one of {', '.join(names())})") from None


def the(role: Role) -> Policy:
    """The one policy holding OURS, REACTIVE_BOUND or ORACLE."""
    return next(p for p in _POLICIES.values() if p.role is role)


def names(*roles: Role) -> tuple[str, ...]:
    """Every policy's name (or those with one of `roles`): ours first, then the peers in registration
    order, the reactive bound, the oracle last."""
    order = (Role.OURS, Role.DYNAMIC_PEER, Role.STATIC_PEER, Role.REACTIVE_BOUND, Role.ORACLE)
    wanted = roles or order
    ranked = sorted(_POLICIES.values(), key=lambda p: order.index(p.role))
    return tuple(p.name for p in ranked if p.role in wanted)
