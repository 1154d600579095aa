"""`make bench` writes the result tables of docs/benchmark.md itself, so the doc cannot go stale.

The block between the doc's `bench-results` markers is replaced by the tables of a bench run (as
devkit/testtimes.py writes the README's test-times table): per set (built-in, then held-out), one
row per scenario and policy, then the goal check per scenario and the count met; then the speed
figure. Everything outside the markers is left as it was. `queue-scaler bench --write-doc PATH`
calls it after a full run (every built-in and held-out scenario: a partial run would drop rows).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from devkit.sim.bench import HELD_OUT, BenchResult, goal_check, goal_misses
from devkit.sim.policies import OURS

BEGIN = "<!-- bench-results:begin (make bench writes this block: queue-scaler bench --write-doc) -->"
END = "<!-- bench-results:end -->"
#: How each set is introduced in the doc.
SET_TITLES = {
    "built-in": "Built-in scenarios (the recommended setting was chosen on these)",
    HELD_OUT: "Held-out scenarios (drawn once by devkit/sim/heldout.py, never tuned on)",
}
METRIC_HEADERS = (
    "scenario | policy | jobs | lost | wait p50 | wait p95 | wait max | worst queue p95/objective | restarted | "
    "instance-h | actions | adequate p50 (s)"
)
GOAL_HEADERS = (
    "scenario | P | P wait p95 | B_r wait p95 | B wait p95 | ours | bound | gap closed | instance-s ours/P | "
    "worst queue ours/P | goal"
)


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _rule(headers: str, left: set[int]) -> str:
    """The markdown rule under a header: columns in `left` (names, verdicts) left-aligned, figures right."""
    count = headers.count("|") + 1
    return "|" + "|".join("---" if i in left else "--:" for i in range(count)) + "|"


def metrics_rows(scenario: str, metrics: dict[str, dict[str, Any]]) -> list[str]:
    """One row per policy of a scenario: waits, cost, how it scaled."""
    rows = []
    for policy, m in metrics.items():
        rows.append(
            _row(
                [
                    scenario,
                    policy,
                    str(m["jobs"]),
                    _num(m["lost"]),
                    _num(m["wait_p50"]),
                    _num(m["wait_p95"]),
                    _num(m["wait_max"]),
                    _num(m.get("worst_objective_ratio"), 2),
                    _num(m.get("restarted")),
                    _num(m["instance_seconds"] / 3600, 1),
                    _num(m["scale_actions"]),
                    _num(m.get("adequate_seconds"), 1),
                ]
            )
        )
    return rows


def goal_row(scenario: str, metrics: dict[str, dict[str, Any]]) -> str:
    """A scenario's goal check: P, the waits compared, the gap closed, the cost ratio, the verdict."""
    check = goal_check(metrics)
    ratio = check["instance_seconds_ratio"]
    verdict = "met" if check["met"] else "missed: " + ", ".join(goal_misses(check))
    return _row(
        [
            scenario,
            check["better_peer"],
            _num(check["peer_wait_p95"], 1),
            _num(check["reactive_wait_p95"], 1),
            _num(check["oracle_wait_p95"], 1),
            _num(check["wait_p95"], 1),
            _num(check["wait_bound"], 1),
            _num(check["gap_closed"], 2),
            "inf" if ratio is None else f"{ratio:.3f}",
            f"{_num(check['worst_objective_ratio'], 2)} / {_num(check['peer_worst_objective_ratio'], 2)}",
            verdict,
        ]
    )


def results_block(result: BenchResult, day: str, cores: int, load: float) -> str:
    """The doc's block, markers included, from one bench run; `load` is the 1-minute load average at its
    end, since the wall-clock figures (the speed) depend on what else the machine ran."""
    lines = [
        BEGIN,
        f"Written by `make bench` on {day}, {cores} cores, load average {load:.1f} at the end (seed as in each file).",
        "",
    ]
    for label, names in result.sets().items():
        runs = {name: {p: r.metrics for p, r in result.runs[name].items()} for name in names}
        lines += [f"**{SET_TITLES[label]}**", "", f"| {METRIC_HEADERS} |", _rule(METRIC_HEADERS, {0, 1})]
        for name in names:
            lines += metrics_rows(name, runs[name])
        lines += ["", f"| {GOAL_HEADERS} |", _rule(GOAL_HEADERS, {0, 1, GOAL_HEADERS.count("|")})]
        lines += [goal_row(name, runs[name]) for name in names]
        lines += ["", f"Goal met on {result.goal_met(names)} of {len(names)} {label} scenarios.", ""]
    if result.speed is not None:
        speed = result.speed
        lines += [
            f"Speed: {speed.scenario} ({speed.pools} pools, {speed.simulated_seconds:,.0f} s of traffic) under "
            f"{OURS} in {speed.wall_seconds:.2f} s: {speed.factor:,.0f}x real time.",
            "",
        ]
    lines.append(END)
    return "\n".join(lines)


def replace_block(text: str, block: str, name: str) -> str:
    """`text` with its bench-results block replaced; fails loudly when the markers are missing."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), flags=re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{name} has no bench-results markers ({BEGIN} ... {END}): add them where the tables go")
    return pattern.sub(lambda _match: block, text, count=1)


def write_doc(path: Path, result: BenchResult, day: str, cores: int, load: float) -> None:
    """Replace the tables between the markers of the doc at `path` with `result`'s."""
    text = path.read_text(encoding="utf-8")
    path.write_text(replace_block(text, results_block(result, day, cores, load), str(path)), encoding="utf-8")
