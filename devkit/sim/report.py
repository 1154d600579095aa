"""Human-readable tables of simulation metrics and the benchmark's goal check."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from devkit.sim.bench import DYNAMIC_PEERS, GAP_SHARE, NEAR, BenchResult, goal_check, goal_misses, ratios
from devkit.sim.policies import ORACLE, OURS, POLICIES


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def metrics_table(
    title: str, rows: dict[str, dict[str, Any]], extra_header: str | None = None, extra: dict[str, str] | None = None
) -> Table:
    """One row per policy: jobs, waits, instance-hours, actions, reversals, reaction, the worst queue's
    wait p95 over its objective, restarted jobs and adequacy (and `extra`)."""
    table = Table(title=title, title_justify="left")
    headers = [
        "policy",
        "jobs",
        "done",
        "lost",
        "wait p50",
        "p95",
        "p99",
        "max",
        "inst-h",
        "actions",
        "revers.",
        "react p50",
        "worst q/obj",
        "restart.",
        "adequ. p50",
    ]
    for header in [*headers, *([extra_header] if extra_header else [])]:
        # Fold, never truncate: a narrow terminal gets taller cells, not "pol…".
        table.add_column(header, justify="left" if header == "policy" else "right", overflow="fold")
    for policy, m in rows.items():
        cells = [
            policy,
            str(m["jobs"]),
            str(m["completed"]),
            str(m["lost"]),
            _num(m["wait_p50"]),
            _num(m["wait_p95"]),
            _num(m["wait_p99"]),
            _num(m["wait_max"]),
            _num(m["instance_seconds"] / 3600, 1),
            str(m["scale_actions"]),
            str(m["reversals"]),
            _num(m["reaction_seconds"], 1),
            _num(m.get("worst_objective_ratio"), 2),
            str(m.get("restarted", "-")),
            _num(m.get("adequate_seconds"), 1),
        ]
        if extra_header:
            cells.append((extra or {}).get(policy, ""))
        table.add_row(*cells)
    return table


def _ratio(value: float | None) -> str:
    return "inf" if value is None else f"{value:.2f}"


def print_bench(result: BenchResult, console: Console) -> None:
    """Every scenario's metrics with our ratios, then the goal check, then the speed figure."""
    for scenario, runs in result.runs.items():
        metrics = {p: r.metrics for p, r in runs.items()}
        ours_over = ratios(metrics)
        extra = {
            p: f"{_ratio(ours_over[p]['wait_p95'])}, {_ratio(ours_over[p]['instance_seconds'])}"
            for p in POLICIES
            if p != OURS
        }
        console.print(metrics_table(f"{scenario}  (waits in s)", metrics, f"{OURS}/it: wait p95, inst-s", extra))
    console.print(goal_table(result))
    checks = [goal_check({p: r.metrics for p, r in runs.items()}) for runs in result.runs.values()]
    console.print(f"goal met on {sum(c['met'] for c in checks)} of {len(checks)} scenarios")
    if result.speed is not None:
        speed = result.speed
        console.print(
            f"speed: {speed.scenario} ({speed.pools} pools, {speed.simulated_seconds:,.0f} s of traffic) "
            f"under {OURS} in {speed.wall_seconds:.2f} s: {speed.factor:,.0f}x real time"
        )
    console.print(f"bench wall time: {result.wall_seconds:.1f} s")


def goal_table(result: BenchResult) -> Table:
    """Per scenario: P, B, ours, the gap closed, the cost ratio and the verdict; the count met in the title."""
    checks = {scenario: goal_check({p: r.metrics for p, r in runs.items()}) for scenario, runs in result.runs.items()}
    met = sum(check["met"] for check in checks.values())
    table = Table(
        title=(
            f"Goal: {OURS} wait_p95 <= B + {GAP_SHARE:g} (P - B) (<= {1 + NEAR:g} B when P is within "
            f"{NEAR:.0%} of B), instance_seconds <= P's, nothing lost; B = {ORACLE}, P = the better of "
            f"{', '.join(DYNAMIC_PEERS)}. Met on {met} of {len(checks)} scenarios"
        ),
        title_justify="left",
    )
    headers = ("scenario", "P", "P p95", "B p95", "ours p95", "bound", "gap closed", "inst-s ours/P", "goal")
    for header in headers:
        table.add_column(header, justify="left" if header in ("scenario", "P", "goal") else "right", overflow="fold")
    for scenario, check in checks.items():
        misses = goal_misses(check)
        table.add_row(
            scenario,
            check["better_peer"],
            _num(check["peer_wait_p95"], 1),
            _num(check["oracle_wait_p95"], 1),
            _num(check["wait_p95"], 1),
            _num(check["wait_bound"], 1),
            "-" if check["gap_closed"] is None else f"{check['gap_closed']:.2f}",
            _ratio(check["instance_seconds_ratio"]),
            "met" if check["met"] else "missed: " + ", ".join(misses),
        )
    return table
