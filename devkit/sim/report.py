"""Human-readable tables of simulation metrics and the benchmark's goal check.

Every table fits 100 columns without wrapping a cell: one block per scenario (waits and cost, then
how each policy scaled, then the goal's verdict as a sentence), then one summary row per scenario and
the rule the goal checks. Columns are separated by one space and carry their units in the header.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table

from devkit.sim.bench import (
    FEATURES,
    GAP_SHARE,
    HELD_OUT,
    MIN_GAP_SECONDS,
    MIN_GAP_SHARE,
    BenchResult,
    WarmComparison,
    goal_check,
    goal_misses,
    ratio,
    ratios,
    winner,
)
from devkit.sim.policies import DYNAMIC_PEERS, ORACLE, OURS, POLICIES, REACTIVE_BOUND


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "inf" if value is None else f"{value:.2f}"


def _table(title: str | None, headers: list[str], texts: int = 1) -> Table:
    """A compact table: no vertical rules, one space between columns, headers over a rule. The first
    `texts` columns (names) and the last (a verdict) when `texts` > 1 are left-aligned, every figure
    right-aligned. Cells fold on a terminal too narrow for the table, never truncate."""
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=0,
    )
    for index, header in enumerate(headers):
        left = index < texts or (texts > 1 and index >= len(headers) - 2)
        table.add_column(header, justify="left" if left else "right", overflow="fold")
    return table


def waits_table(title: str | None, rows: dict[str, dict[str, Any]], ours_over: dict[str, list[str]] | None) -> Table:
    """One row per policy: jobs done and lost, the wait percentiles, instance-hours (and, with
    `ours_over`, ours divided by the row's policy: wait p95 and instance-seconds)."""
    headers = ["policy", "done", "lost", "wait p50\n(s)", "p95\n(s)", "p99\n(s)", "max\n(s)", "inst-h"]
    if ours_over is not None:
        headers += ["ours/it\np95", "ours/it\ninst-s"]
    table = _table(title, headers)
    for policy, m in rows.items():
        cells = [
            policy,
            _num(m["completed"]),
            _num(m["lost"]),
            _num(m["wait_p50"]),
            _num(m["wait_p95"]),
            _num(m["wait_p99"]),
            _num(m["wait_max"]),
            _num(m["instance_seconds"] / 3600, 1),
        ]
        if ours_over is not None:
            cells += ours_over.get(policy, ["", ""])
        table.add_row(*cells)
    return table


def scaling_table(rows: dict[str, dict[str, Any]]) -> Table:
    """One row per policy: scale actions, reversals, reaction and adequacy p50, the worst queue's wait
    p95 over its objective, restarted jobs."""
    headers = [
        "policy",
        "scale\nactions",
        "rever-\nsals",
        "reaction\np50 (s)",
        "adequate\np50 (s)",
        "worst queue\np95/objective",
        "restarted\njobs",
    ]
    table = _table(None, headers)
    for policy, m in rows.items():
        table.add_row(
            policy,
            _num(m["scale_actions"]),
            _num(m["reversals"]),
            _num(m["reaction_seconds"], 1),
            _num(m.get("adequate_seconds"), 1),
            _num(m.get("worst_objective_ratio"), 2),
            _num(m.get("restarted")),
        )
    return table


def metrics_table(title: str, rows: dict[str, dict[str, Any]]) -> Group:
    """One row per policy in each of two tables: waits and cost, then how it scaled."""
    return Group(waits_table(title, rows, None), scaling_table(rows))


def goal_rule() -> str:
    """The rule the goal line counts, in one sentence, from the goal's own constants."""
    return (
        f"The goal, per scenario: nothing lost; {OURS}'s instance-seconds at most P's; its wait p95 at most "
        f"P's, and at most B_r + {GAP_SHARE:g} (P - B_r) wherever P - B_r >= max({MIN_GAP_SECONDS:g} s, "
        f"{MIN_GAP_SHARE:.0%} of P); its worst queue's p95/objective at most P's. P is the better dynamic peer "
        f"(the lowest wait p95 among {', '.join(DYNAMIC_PEERS)}); B_r is the {REACTIVE_BOUND}'s lowest wait p95 "
        f"over its scale-down holds at instance-seconds no higher than P's (the best a scaler that cannot see "
        f"the future does); B, the clairvoyant {ORACLE}'s wait p95, is a reference only. The fixed fleet is no "
        f"peer: it is sized from the whole run's load, which no controller knows in advance. The winner is "
        f"{OURS} where it meets the goal, else P."
    )


def verdict(check: dict[str, Any]) -> str:
    """A scenario's goal check as a sentence: what was compared with what, and the result."""
    misses = goal_misses(check)
    head = "goal met" if check["met"] else f"goal missed ({', '.join(misses)})"
    gap = "" if check["gap_closed"] is None else f", gap closed {check['gap_closed']:.2f}"
    setting = "" if check["reactive_setting"] is None else f" ({check['reactive_setting']})"
    return (
        f"{head}: {OURS} wait p95 {_num(check['wait_p95'], 1)} s against the bound "
        f"{_num(check['wait_bound'], 1)} s (P = {check['better_peer']} {_num(check['peer_wait_p95'], 1)} s, "
        f"B_r = {_num(check['reactive_wait_p95'], 1)} s{setting}{gap}; B = {_num(check['oracle_wait_p95'], 1)} s); "
        f"instance-seconds {_ratio(check['instance_seconds_ratio'])} of P's; worst queue p95/objective "
        f"{_num(check['worst_objective_ratio'], 2)} (P {_num(check['peer_worst_objective_ratio'], 2)}); "
        f"{check['lost']} lost"
    )


def variants_line(metrics: dict[str, dict[str, Any]]) -> str:
    """Which variant counted for each policy run in several (runner.simulate), with each variant's
    wait p95 and instance-hours; empty when no policy has variants."""
    parts = [
        f"{policy} counts as {m['variant']} ("
        + ", ".join(
            f"{name}: p95 {_num(v['wait_p95'], 1)} s, {_num(v['instance_seconds'] / 3600, 1)} inst-h"
            for name, v in m["variants"].items()
        )
        + ")"
        for policy, m in metrics.items()
        if m.get("variant")
    ]
    return "; ".join(parts)


def print_bench(result: BenchResult, console: Console) -> None:
    """Per scenario: its two tables and the goal's verdict; then the summary, the rule, the speed."""
    for scenario, runs in result.runs.items():
        metrics = {p: r.metrics for p, r in runs.items()}
        over = ratios(metrics)
        ours_over = {
            p: [_ratio(over[p]["wait_p95"]), _ratio(over[p]["instance_seconds"])] for p in POLICIES if p != OURS
        }
        jobs = next(iter(metrics.values()))["jobs"]
        title = f"[bold]{scenario}[/]: {_num(jobs)} jobs; ours/it: {OURS}'s figure over the row's"
        console.print(waits_table(title, metrics, ours_over))
        console.print(scaling_table(metrics))
        if chosen := variants_line(metrics):
            console.print(chosen)
        console.print(f"{verdict(goal_check(metrics))}. Winner: {winner(metrics)}.")
        console.print()
    for label, names in result.sets().items():
        console.print(goal_table(result, label, names))
        console.print(goal_line(result, label, names))
    console.print(goal_rule())
    if result.speed is not None:
        speed = result.speed
        console.print(
            f"speed: {speed.scenario} ({speed.pools} pools, {speed.simulated_seconds:,.0f} s of traffic) "
            f"under {OURS} in {speed.wall_seconds:.2f} s: {speed.factor:,.0f}x real time"
        )
    console.print(f"bench wall time: {result.wall_seconds:.1f} s")


#: What each set's title says about it.
SET_NOTES = {HELD_OUT: "never tuned on", FEATURES: "schedule or forecast on, the peers' equivalents too"}


def goal_line(result: BenchResult, label: str, names: list[str]) -> str:
    """The count of a set's scenarios that meet the goal."""
    return f"goal met on {result.goal_met(names)} of {len(names)} {label} scenarios"


def goal_table(result: BenchResult, label: str, names: list[str]) -> Table:
    """Per scenario of a set: P, ours against B_r and the bound, the cost ratio, the verdict (the gap
    closed and the winner are in each scenario's verdict sentence: 100 columns hold no more)."""
    headers = [
        "scenario",
        "P (better peer)",
        "ours p95\n(s)",
        "B_r\n(s)",
        "bound\n(s)",
        "inst-s\nours/P",
        "goal: met,\nor missed on",
    ]
    note = f", {SET_NOTES[label]}" if label in SET_NOTES else ""
    table = _table(f"Goal check, {label} scenarios{note} (the rule is below)", headers, texts=2)
    for runs in (result.runs[name] for name in names):
        check = goal_check({p: r.metrics for p, r in runs.items()})
        table.add_row(
            runs[OURS].scenario,
            check["better_peer"],
            _num(check["wait_p95"], 1),
            _num(check["reactive_wait_p95"], 1),
            _num(check["wait_bound"], 1),
            _ratio(check["instance_seconds_ratio"]),
            "met" if check["met"] else ", ".join(goal_misses(check)),
        )
    return table


def warm_table(scenario: str, runs: dict[str, tuple[dict[str, Any], dict[str, Any]]], pool: str) -> Table:
    """One row per policy: wait p95 and cost (instance-hours, a stopped warm instance's storage
    included) without a warm pool and with one, each warm figure over its cold one; the storage's
    part of the warm cost and the scale-outs the warm pool served."""
    headers = [
        "policy",
        "p95 cold\n(s)",
        "p95 warm\n(s)",
        "warm/\ncold",
        "inst-h\ncold",
        "inst-h\nwarm",
        "warm/\ncold",
        "storage\ninst-h",
        "warm\nstarts",
    ]
    title = f"[bold]{scenario}[/]: no warm pool (cold) against {pool}"
    table = _table(title, headers)
    for policy, (cold, warm) in runs.items():
        table.add_row(
            policy,
            _num(cold["wait_p95"], 1),
            _num(warm["wait_p95"], 1),
            _ratio(ratio(warm["wait_p95"], cold["wait_p95"])),
            _num(cold["instance_seconds"] / 3600, 1),
            _num(warm["instance_seconds"] / 3600, 1),
            _ratio(ratio(warm["instance_seconds"], cold["instance_seconds"])),
            _num(warm["storage_instance_seconds"] / 3600, 2),
            _num(warm["warm_starts"]),
        )
    return table


def print_warm(comparison: WarmComparison, console: Console) -> None:
    """Per scenario, the warm comparison's table; then what the cost counts."""
    reuse = ", reusing scaled-in instances" if comparison.reuse else ""
    pool = f"a {comparison.state} warm pool of AWS's default size{reuse}"
    for scenario, runs in comparison.runs.items():
        console.print(warm_table(scenario, runs, pool))
        console.print()
    console.print(
        "inst-h: instance-hours billed as running (in service, booting, draining, being prepared for the warm "
        "pool, or waiting in a Running one) plus the root volume of each instance waiting Stopped or Hibernated, "
        "priced in hours of the pool's instance type (devkit/sim/billing.py). AWS's default size: "
        "MaxGroupPreparedCapacity unset, so the warm pool holds max_size - desired."
    )
