"""The benchmark: every built-in scenario under every policy, ours compared with its peers.

"Better peer" of a scenario: among target-tracking, keda and fixed (the oracle is a bound, not a
peer), the one with the lowest wait_p95, ties going to the lower instance_seconds. The goal, per
scenario: our wait_p95 at most half the better peer's, our instance_seconds no higher than its,
and our reaction_seconds (median) at most 10 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from devkit.sim.policies import OURS, PEERS, POLICIES
from devkit.sim.runner import RunResult, simulate
from devkit.sim.scenario import Scenario, load_scenario
from devkit.sim.workload import build_workload

WAIT_GOAL = 0.5
REACTION_GOAL_SECONDS = 10.0
#: The scenario the speed figure is measured on: a day of traffic on three pools.
SPEED_SCENARIO = "azure-functions-day"


def better_peer(metrics: dict[str, dict[str, Any]]) -> str:
    """The peer with the lowest wait_p95 (then the lowest instance_seconds)."""
    return min(PEERS, key=lambda p: (metrics[p]["wait_p95"], metrics[p]["instance_seconds"]))


def ratio(ours: float, peer: float) -> float | None:
    """ours / peer; None when the peer's figure is 0 (no finite ratio)."""
    if peer == 0:
        return 0.0 if ours == 0 else None
    return round(ours / peer, 3)


def goal_check(metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The scenario's goal check against its better peer, with each part's verdict."""
    peer = better_peer(metrics)
    ours, theirs = metrics[OURS], metrics[peer]
    wait_ok = ours["wait_p95"] <= WAIT_GOAL * theirs["wait_p95"] or ours["wait_p95"] == theirs["wait_p95"] == 0
    cost_ok = ours["instance_seconds"] <= theirs["instance_seconds"]
    reaction = ours["reaction_seconds"]
    reaction_ok = reaction is None or reaction <= REACTION_GOAL_SECONDS
    return {
        "better_peer": peer,
        "wait_p95_ratio": ratio(ours["wait_p95"], theirs["wait_p95"]),
        "instance_seconds_ratio": ratio(ours["instance_seconds"], theirs["instance_seconds"]),
        "reaction_seconds": reaction,
        "wait_ok": wait_ok,
        "cost_ok": cost_ok,
        "reaction_ok": reaction_ok,
        "met": wait_ok and cost_ok and reaction_ok,
    }


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

    def as_json(self) -> dict[str, Any]:
        scenarios = {s: {p: r.metrics for p, r in runs.items()} for s, runs in self.runs.items()}
        result: dict[str, Any] = {
            "scenarios": scenarios,
            "comparison": {s: {"ratios": ratios(m), "goal": goal_check(m)} for s, m in scenarios.items()},
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
