"""The benchmark: every built-in scenario under every policy, ours compared with its peers.

The goal, per scenario (docs/benchmark.md, "The goal"): with B the oracle's wait_p95 (the least wait
a clairvoyant plan gives within max_size) and P the better dynamic peer's (the lowest wait_p95 among
the target-tracking and KEDA policies, ties going to the lower instance_seconds), our wait_p95 must
close at least 60 % of the gap from P to B, `<= B + 0.4 (P - B)` (`<= 1.05 B` when P is within 5 % of
B: there is no gap worth the name to close), at instance_seconds no higher than P's, with no job lost.
The fixed fleet is reported but is no peer: it is sized from the whole run's average load, which
no controller knows in advance.

Two sets are reported apart: the built-in scenarios, on which the recommended setting was chosen,
and the held-out scenarios (devkit/sim/heldout.py), drawn once from the same public traces and never
tuned on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from devkit.sim.policies import DYNAMIC_PEERS, ORACLE, OURS, POLICIES
from devkit.sim.runner import RunResult, simulate
from devkit.sim.scenario import Scenario, builtin_names, heldout_names, load_scenario
from devkit.sim.workload import build_workload

#: Ours must lie within this share of the gap from B to P: B + GAP_SHARE x (P - B).
GAP_SHARE = 0.4
#: When P is within this fraction of B, the bound is (1 + NEAR) x B.
NEAR = 0.05
#: Float slack for "at most": a wait exactly on the bound meets it.
_SLACK = 1e-9
#: The scenario the speed figure is measured on: a day of traffic on three pools.
SPEED_SCENARIO = "azure-functions-day"
#: The two sets `bench` reports apart.
BUILT_IN = "built-in"
HELD_OUT = "held-out"


def all_names() -> list[str]:
    """Every scenario `bench` runs by default: the built-ins, then the held-out set."""
    return [*builtin_names(), *heldout_names()]


def scenario_set(name: str) -> str:
    """The set a scenario belongs to: held-out if it is one of them, else built-in."""
    return HELD_OUT if name in heldout_names() else BUILT_IN


def better_peer(metrics: dict[str, dict[str, Any]]) -> str:
    """The dynamic peer with the lowest wait_p95 (then the lowest instance_seconds)."""
    return min(DYNAMIC_PEERS, key=lambda p: (metrics[p]["wait_p95"], metrics[p]["instance_seconds"]))


def ratio(ours: float, peer: float) -> float | None:
    """ours / peer; None when the peer's figure is 0 (no finite ratio)."""
    if peer == 0:
        return 0.0 if ours == 0 else None
    return round(ours / peer, 3)


def wait_bound(peer: float, oracle: float) -> float:
    """The most wait_p95 ours may have: B + 0.4 (P - B), or 1.05 B when P is within 5 % of B."""
    if peer <= (1 + NEAR) * oracle:
        return (1 + NEAR) * oracle
    return oracle + GAP_SHARE * (peer - oracle)


def gap_closed(ours: float, peer: float, oracle: float) -> float | None:
    """(P - ours) / (P - B): 1 at the oracle, 0 at the peer, negative when worse than the peer; None
    when P equals B (no gap)."""
    if peer == oracle:
        return None
    return round((peer - ours) / (peer - oracle), 3)


def goal_check(metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The scenario's goal check (see the module docstring), with each part's verdict."""
    peer = better_peer(metrics)
    ours, theirs, oracle = metrics[OURS], metrics[peer], metrics[ORACLE]
    p, b, wait = theirs["wait_p95"], oracle["wait_p95"], ours["wait_p95"]
    bound = wait_bound(p, b)
    wait_ok = wait <= bound + _SLACK
    cost_ok = ours["instance_seconds"] <= theirs["instance_seconds"]
    lost_ok = ours["lost"] == 0
    return {
        "better_peer": peer,
        "peer_wait_p95": p,
        "oracle_wait_p95": b,
        "wait_p95": wait,
        "wait_bound": round(bound, 3),
        "gap_closed": gap_closed(wait, p, b),
        "instance_seconds_ratio": ratio(ours["instance_seconds"], theirs["instance_seconds"]),
        "lost": ours["lost"],
        "wait_ok": wait_ok,
        "cost_ok": cost_ok,
        "lost_ok": lost_ok,
        "met": wait_ok and cost_ok and lost_ok,
    }


def winner(metrics: dict[str, dict[str, Any]]) -> str:
    """The scenario's winner by the goal's rule: ours where it meets the goal, else the better peer P."""
    return OURS if goal_check(metrics)["met"] else better_peer(metrics)


def goal_misses(check: dict[str, Any]) -> list[str]:
    """The parts of a goal check that failed, by name."""
    return [name for name in ("wait", "cost", "lost") if not check[f"{name}_ok"]]


def ratios(metrics: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Ours over each peer and the oracle: wait_p95 and instance_seconds."""
    ours = metrics[OURS]
    return {
        p: {
            "wait_p95": ratio(ours["wait_p95"], metrics[p]["wait_p95"]),
            "instance_seconds": ratio(ours["instance_seconds"], metrics[p]["instance_seconds"]),
        }
        for p in POLICIES
        if p != OURS
    }


@dataclass(frozen=True)
class Speed:
    scenario: str
    pools: int
    simulated_seconds: float
    wall_seconds: float

    @property
    def factor(self) -> float:
        return self.simulated_seconds / self.wall_seconds if self.wall_seconds else float("inf")


@dataclass(frozen=True)
class BenchResult:
    runs: dict[str, dict[str, RunResult]]
    speed: Speed | None
    wall_seconds: float

    def sets(self) -> dict[str, list[str]]:
        """The scenarios that ran, by set (built-in first), in the order they ran; empty sets left out."""
        grouped: dict[str, list[str]] = {BUILT_IN: [], HELD_OUT: []}
        for name in self.runs:
            grouped[scenario_set(name)].append(name)
        return {label: names for label, names in grouped.items() if names}

    def goal_met(self, names: Sequence[str]) -> int:
        """How many of `names` meet the goal."""
        return sum(goal_check({p: r.metrics for p, r in self.runs[n].items()})["met"] for n in names)

    def as_json(self) -> dict[str, Any]:
        scenarios = {s: {p: r.metrics for p, r in runs.items()} for s, runs in self.runs.items()}
        result: dict[str, Any] = {
            "scenarios": scenarios,
            "comparison": {s: {"ratios": ratios(m), "goal": goal_check(m)} for s, m in scenarios.items()},
            "goal_met": sum(goal_check(m)["met"] for m in scenarios.values()),
            "sets": {
                label: {"scenarios": names, "goal_met": self.goal_met(names)} for label, names in self.sets().items()
            },
            "wall_seconds": round(self.wall_seconds, 2),
        }
        if self.speed is not None:
            result["speed"] = {
                "scenario": self.speed.scenario,
                "pools": self.speed.pools,
                "simulated_seconds": self.speed.simulated_seconds,
                "wall_seconds": round(self.speed.wall_seconds, 3),
                "times_real_time": round(self.speed.factor),
            }
        return result


def run_bench(
    names: Sequence[str],
    record_series: bool = True,
    on_run: Callable[[str, str], None] | None = None,
) -> BenchResult:
    """Run each scenario under each policy; `on_run(scenario, policy)` after each run."""
    began = time.perf_counter()
    runs: dict[str, dict[str, RunResult]] = {}
    speed: Speed | None = None
    for name in names:
        scenario: Scenario = load_scenario(name)
        drawn = time.perf_counter()
        workload = build_workload(scenario)
        draw_seconds = time.perf_counter() - drawn
        runs[scenario.name] = {}
        for policy in POLICIES:
            result = simulate(scenario, policy, workload, record_series)
            runs[scenario.name][policy] = result
            if scenario.name == SPEED_SCENARIO and policy == OURS:
                # The speed figure counts drawing the day's jobs as well as simulating it.
                speed = Speed(
                    scenario.name, len(scenario.pools), scenario.duration_seconds, draw_seconds + result.wall_seconds
                )
            if on_run is not None:
                on_run(scenario.name, policy)
    return BenchResult(runs, speed, time.perf_counter() - began)
