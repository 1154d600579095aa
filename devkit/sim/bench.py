"""The benchmark: every built-in scenario under every policy, ours compared with its peers.

The goal, per scenario (docs/benchmark.md, "The goal"), with P the better dynamic peer (the lowest
wait_p95 among the target-tracking and KEDA policies, ties going to the lower instance_seconds) and
B_r the reactive bound (the reactive oracle's lowest wait_p95, over its swept scale-down holds, at
instance_seconds no higher than P's; none when no hold is that cheap):
- nothing lost;
- instance_seconds no higher than P's;
- wait_p95 no higher than P's, and no higher than B_r + 0.5 (P - B_r) wherever P - B_r is at least
  max(10 s, 2 % of P) (a smaller gap is within the noise of one burst's boot);
- the worst queue's wait_p95 / objective no higher than P's.
The clairvoyant oracle's wait_p95 B is printed as a reference: most of the gap from P to B is out of
reach of any policy that cannot see the future. The fixed fleet is reported but is no peer: it is
sized from the whole run's average load, which no controller knows in advance.

Two sets are reported apart: the built-in scenarios, on which the recommended setting was chosen,
and the held-out scenarios (devkit/sim/heldout.py), drawn once from the same public traces and never
tuned on. A third, the feature scenarios (scenarios/features: days of a daily pattern or a recurring
burst, with queue-scaler's schedule or forecast on and the peers' equivalents), runs only when named
(`bench --scenario NAME`): it is not part of the default run.

`run_warm` (`bench --warm-pool STATE`) runs scenarios twice under ours and each dynamic peer: cold (no
warm pool) and with a warm pool in STATE on every pool at AWS's default sizing (PutWarmPool without
MaxGroupPreparedCapacity or MinSize: the group's max size minus its desired capacity; no reuse on
scale-in unless `--warm-reuse`), the same group for every policy, as target tracking and the Cluster
Autoscaler get it from Auto Scaling; each pair's wait p95 and cost (instance-seconds, a stopped
instance's storage included).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from devkit.sim.policies import DYNAMIC_PEERS, ORACLE, OURS, POLICIES, REACTIVE_BOUND
from devkit.sim.policies.registry import get
from devkit.sim.runner import RunResult, simulate
from devkit.sim.scenario import (
    Scenario,
    WarmPoolSpec,
    WarmState,
    builtin_names,
    feature_names,
    heldout_names,
    load_scenario,
)
from devkit.sim.workload import build_workload

#: Where the gap counts, ours must lie within this share of it from B_r: B_r + GAP_SHARE x (P - B_r).
GAP_SHARE = 0.5
#: The gap P - B_r counts when it is at least this many seconds...
MIN_GAP_SECONDS = 10.0
#: ...and at least this share of P.
MIN_GAP_SHARE = 0.02
#: Float slack for "at most": a wait exactly on the bound meets it.
_SLACK = 1e-9
#: The scenario the speed figure is measured on: a day of traffic on three pools.
SPEED_SCENARIO = "azure-functions-day"
#: The two sets `bench` reports apart.
BUILT_IN = "built-in"
HELD_OUT = "held-out"
FEATURES = "feature"


def all_names() -> list[str]:
    """Every scenario `bench` runs by default: the built-ins, then the held-out set."""
    return [*builtin_names(), *heldout_names()]


def known_names() -> list[str]:
    """Every scenario `bench --scenario` runs by name: the default run's and the feature scenarios."""
    return [*all_names(), *feature_names()]


def scenario_set(name: str) -> str:
    """The set a scenario belongs to: held-out or feature if it is one of them, else built-in."""
    if name in heldout_names():
        return HELD_OUT
    return FEATURES if name in feature_names() else BUILT_IN


def better_peer(metrics: dict[str, dict[str, Any]]) -> str:
    """The dynamic peer with the lowest wait_p95 (then the lowest instance_seconds)."""
    return min(DYNAMIC_PEERS, key=lambda p: (metrics[p]["wait_p95"], metrics[p]["instance_seconds"]))


def ratio(ours: float, peer: float) -> float | None:
    """ours / peer; None when the peer's figure is 0 (no finite ratio)."""
    if peer == 0:
        return 0.0 if ours == 0 else None
    return round(ours / peer, 3)


def reactive_bound(metrics: dict[str, dict[str, Any]], peer: str) -> tuple[float | None, str | None]:
    """(B_r, the setting giving it): the reactive oracle's lowest wait_p95 over its sweep at
    instance_seconds no higher than `peer`'s (ties to the cheaper); (None, None) when no setting is
    that cheap. A run without a sweep (`simulate`) counts as its one setting."""
    row = metrics[REACTIVE_BOUND]
    settings: dict[str, dict[str, Any]] = row.get("sweep") or {row.get("setting", REACTIVE_BOUND): row}
    budget = metrics[peer]["instance_seconds"]
    within = [(m["wait_p95"], m["instance_seconds"], label) for label, m in settings.items()]
    affordable = [s for s in within if s[1] <= budget]
    if not affordable:
        return None, None
    wait, _, label = min(affordable)
    return wait, label


def gap_counts(peer: float, reactive: float | None) -> bool:
    """Whether P - B_r is a gap worth closing: at least max(10 s, 2 % of P)."""
    return reactive is not None and peer - reactive >= max(MIN_GAP_SECONDS, MIN_GAP_SHARE * peer)


def wait_bound(peer: float, reactive: float | None) -> float:
    """The most wait_p95 ours may have: B_r + 0.5 (P - B_r) where the gap counts, else P."""
    if reactive is not None and gap_counts(peer, reactive):
        return reactive + GAP_SHARE * (peer - reactive)
    return peer


def gap_closed(ours: float, peer: float, reactive: float | None) -> float | None:
    """(P - ours) / (P - B_r): 1 at the reactive bound, 0 at the peer, negative when worse than the
    peer; None when there is no B_r or P equals it (no gap)."""
    if reactive is None or peer == reactive:
        return None
    return round((peer - ours) / (peer - reactive), 3)


def queue_within(ours: float | None, peer: float | None) -> bool:
    """Whether ours' worst queue p95/objective is no higher than P's (no objective: nothing to judge)."""
    return ours is None or peer is None or ours <= peer + _SLACK


def goal_check(metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The scenario's goal check (see the module docstring), with each part's verdict."""
    peer = better_peer(metrics)
    ours, theirs = metrics[OURS], metrics[peer]
    p, wait = theirs["wait_p95"], ours["wait_p95"]
    reactive, setting = reactive_bound(metrics, peer)
    bound = wait_bound(p, reactive)
    wait_ok = wait <= bound + _SLACK
    cost_ok = ours["instance_seconds"] <= theirs["instance_seconds"]
    worst, peer_worst = ours.get("worst_objective_ratio"), theirs.get("worst_objective_ratio")
    queue_ok = queue_within(worst, peer_worst)
    lost_ok = ours["lost"] == 0
    return {
        "better_peer": peer,
        "peer_wait_p95": p,
        "reactive_wait_p95": reactive,
        "reactive_setting": setting,
        "gap_counts": gap_counts(p, reactive),
        "oracle_wait_p95": metrics[ORACLE]["wait_p95"],
        "wait_p95": wait,
        "wait_bound": round(bound, 3),
        "gap_closed": gap_closed(wait, p, reactive),
        "instance_seconds_ratio": ratio(ours["instance_seconds"], theirs["instance_seconds"]),
        "worst_objective_ratio": worst,
        "peer_worst_objective_ratio": peer_worst,
        "lost": ours["lost"],
        "wait_ok": wait_ok,
        "cost_ok": cost_ok,
        "queue_ok": queue_ok,
        "lost_ok": lost_ok,
        "met": wait_ok and cost_ok and queue_ok and lost_ok,
    }


def winner(metrics: dict[str, dict[str, Any]]) -> str:
    """The scenario's winner by the goal's rule: ours where it meets the goal, else the better peer P."""
    return OURS if goal_check(metrics)["met"] else better_peer(metrics)


#: The goal's parts, in the order a miss is reported.
GOAL_PARTS = ("wait", "cost", "queue", "lost")


def goal_misses(check: dict[str, Any]) -> list[str]:
    """The parts of a goal check that failed, by name."""
    return [name for name in GOAL_PARTS if not check[f"{name}_ok"]]


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
        grouped: dict[str, list[str]] = {BUILT_IN: [], HELD_OUT: [], FEATURES: []}
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


def swept(runs: dict[str, RunResult], policy: str, settings: dict[str, RunResult]) -> RunResult:
    """The run the report shows for a swept policy (the reactive bound): the setting giving B_r (the
    cheapest when none is within P's instance-seconds), its metrics carrying the whole sweep."""
    sweep = {
        label: {k: r.metrics[k] for k in ("wait_p95", "instance_seconds", "lost")} for label, r in settings.items()
    }
    metrics = {p: r.metrics for p, r in runs.items() if p != policy}
    metrics[policy] = {"sweep": sweep}
    _, label = reactive_bound(metrics, better_peer(metrics))
    if label is None:
        label = min(settings, key=lambda s: settings[s].metrics["instance_seconds"])
    chosen = settings[label]
    return replace(chosen, metrics={**chosen.metrics, "setting": label, "sweep": sweep})


def run_bench(
    names: Sequence[str],
    record_series: bool = True,
    on_run: Callable[[str, str], None] | None = None,
) -> BenchResult:
    """Run each scenario under each policy (a policy with a sweep under each of its settings);
    `on_run(scenario, policy)` after each policy."""
    began = time.perf_counter()
    runs: dict[str, dict[str, RunResult]] = {}
    speed: Speed | None = None
    for name in names:
        scenario: Scenario = load_scenario(name)
        drawn = time.perf_counter()
        workload = build_workload(scenario)
        draw_seconds = time.perf_counter() - drawn
        here: dict[str, RunResult] = {}
        sweeps: dict[str, dict[str, RunResult]] = {}
        for policy in POLICIES:
            sweep = get(policy).sweep
            if sweep:
                sweeps[policy] = {label: simulate(scenario, policy, workload, record_series, b) for label, b in sweep}
            else:
                result = simulate(scenario, policy, workload, record_series)
                here[policy] = result
                if scenario.name == SPEED_SCENARIO and policy == OURS:
                    # The speed figure counts drawing the day's jobs as well as simulating it.
                    speed = Speed(
                        scenario.name,
                        len(scenario.pools),
                        scenario.duration_seconds,
                        draw_seconds + result.wall_seconds,
                    )
            if on_run is not None:
                on_run(scenario.name, policy)
        for policy, settings in sweeps.items():
            here[policy] = swept(here, policy, settings)
        runs[scenario.name] = {p: here[p] for p in POLICIES}
    return BenchResult(runs, speed, time.perf_counter() - began)


#: The policies `run_warm` compares cold and warm: ours and the dynamic peers (the bounds and the fixed
#: fleet plan on the boot they know and are left out).
WARM_POLICIES = (OURS, *DYNAMIC_PEERS)


def with_warm_pools(scenario: Scenario, state: WarmState | None, reuse: bool = False) -> Scenario:
    """The scenario with a warm pool in `state` on every pool at AWS's default sizing, reusing scaled-in
    instances with `reuse` (None: no warm pool)."""
    warm = None if state is None else WarmPoolSpec(state=state, reuse_on_scale_in=reuse)
    return scenario.model_copy(update={"pools": [p.model_copy(update={"warm_pool": warm}) for p in scenario.pools]})


@dataclass(frozen=True)
class WarmComparison:
    """Per scenario and policy, the cold run's metrics and the warm run's."""

    state: WarmState
    reuse: bool
    runs: dict[str, dict[str, tuple[dict[str, Any], dict[str, Any]]]]

    def as_json(self) -> dict[str, Any]:
        return {
            "warm_pool": self.state,
            "reuse_on_scale_in": self.reuse,
            "scenarios": {
                s: {p: {"cold": cold, "warm": warm} for p, (cold, warm) in runs.items()}
                for s, runs in self.runs.items()
            },
        }


def run_warm(
    names: Sequence[str],
    state: WarmState,
    on_run: Callable[[str, str], None] | None = None,
    reuse: bool = False,
) -> WarmComparison:
    """Each scenario cold and with warm pools in `state` (reusing scaled-in instances with `reuse`),
    under each of WARM_POLICIES (the same jobs)."""
    runs: dict[str, dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {}
    for name in names:
        scenario = load_scenario(name)
        cold, warm = with_warm_pools(scenario, None), with_warm_pools(scenario, state, reuse)
        workload = build_workload(scenario)
        here = {}
        for policy in WARM_POLICIES:
            here[policy] = (
                simulate(cold, policy, workload, record_series=False).metrics,
                simulate(warm, policy, workload, record_series=False).metrics,
            )
            if on_run is not None:
                on_run(scenario.name, policy)
        runs[scenario.name] = here
    return WarmComparison(state, reuse, runs)
