"""`make bench` writes docs/benchmark.md's result tables (devkit/sim/doc.py): between the markers only,
every scenario of both sets, the goal verdicts and counts, and loudly nothing without the markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devkit.cli import main
from devkit.sim import doc
from devkit.sim.bench import BenchResult, Speed
from devkit.sim.policies import OURS, POLICIES
from devkit.sim.runner import RunResult
from devkit.sim.scenario import REPO_ROOT, builtin_names, heldout_names

DOC = REPO_ROOT / "docs" / "benchmark.md"


def metrics(policy: str, scenario: str) -> dict[str, Any]:
    """Ours meets the goal on the held-out scenarios (wait at the reactive bound's, half the peers' cost)
    and misses it on the built-ins (wait above every peer's)."""
    held_out = scenario in heldout_names()
    wait = {OURS: 100.0 if held_out else 2_000.0, "reactive-oracle": 100.0, "oracle": 50.0}.get(
        policy, 1_000.0 + POLICIES.index(policy)
    )
    return {
        "jobs": 1_500,
        "completed": 1_500,
        "lost": 0,
        "wait_p50": 12.4,
        "wait_p95": wait,
        "wait_p99": 2_345.6,
        "wait_max": 3_456.7,
        "instance_seconds": 36_000.0 if policy == OURS and held_out else 72_000.0,
        "scale_actions": 17,
        "reversals": 2,
        "reaction_seconds": 5.0,
        "adequate_seconds": 187.44,
        "worst_objective_ratio": 2.5,
        "restarted": 0,
    }


@pytest.fixture
def result() -> BenchResult:
    names = [*builtin_names(), *heldout_names()]
    runs = {s: {p: RunResult(s, p, metrics(p, s), [], 0.1) for p in POLICIES} for s in names}
    return BenchResult(runs, Speed("azure-functions-day", 3, 86_400.0, 8.0), 60.0)


def test_the_block_has_every_row_of_both_sets_and_the_goal_counts(result: BenchResult) -> None:
    block = doc.results_block(result, "2026-12-07", 2, 1.25)
    lines = block.splitlines()
    assert lines[0] == doc.BEGIN and lines[-1] == doc.END
    assert (
        lines[1]
        == "Written by `make bench` on 2026-12-07, 2 cores, load average 1.2 at the end (seed as in each file)."
    )
    built_in = lines.index(f"**{doc.SET_TITLES['built-in']}**")
    held_out = lines.index(f"**{doc.SET_TITLES['held-out']}**")
    assert built_in < held_out
    for scenario in builtin_names():
        rows = [line for line in lines[built_in:held_out] if line.startswith(f"| {scenario} | ")]
        # One metrics row per policy and one goal row.
        assert len(rows) == len(POLICIES) + 1, scenario
        assert f"| {scenario} | {OURS} | 1500 | 0 | 12 | 2,000 | 3,457 | 2.50 | 0 | 20.0 | 17 | 187.4 |" in rows
        # P = target-tracking 1,001, B_r = 100 (B = 50, a reference): bound 100 + 0.5 x 901 = 550.5;
        # gap (1,001 - 2,000) / 901.
        goal = (
            "| target-tracking | 1,001.0 | 100.0 | 50.0 | 2,000.0 | 550.5 | -1.11 | 1.000 | 2.50 / 2.50 "
            "| missed: wait |"
        )
        assert f"| {scenario} {goal}" in rows
    for scenario in heldout_names():
        rows = [line for line in lines[held_out:] if line.startswith(f"| {scenario} | ")]
        assert len(rows) == len(POLICIES) + 1, scenario
        goal = "| target-tracking | 1,001.0 | 100.0 | 50.0 | 100.0 | 550.5 | 1.00 | 0.500 | 2.50 / 2.50 | met |"
        assert f"| {scenario} {goal}" in rows
    assert "Goal met on 0 of 8 built-in scenarios." in lines
    assert f"Goal met on {len(heldout_names())} of {len(heldout_names())} held-out scenarios." in lines
    speed = "Speed: azure-functions-day (3 pools, 86,400 s of traffic) under queue-scaler in 8.00 s: 10,800x real time."
    assert speed in lines
    # Every table's rule has as many columns as its header.
    for index, line in enumerate(lines):
        if line.startswith("|---"):
            assert line.count("|") == lines[index - 1].count("|")


def test_writing_replaces_only_the_block_and_is_idempotent(tmp_path: Path, result: BenchResult) -> None:
    path = tmp_path / "benchmark.md"
    before, after = "# Title\n\nProse before.\n\n", "\n\n## Next\n\nProse after.\n"
    path.write_text(f"{before}{doc.BEGIN}\nstale table\n{doc.END}{after}", encoding="utf-8")
    doc.write_doc(path, result, "2026-12-07", 2, 1.25)
    text = path.read_text(encoding="utf-8")
    assert text.startswith(before) and text.endswith(after)
    assert "stale table" not in text
    assert text == f"{before}{doc.results_block(result, '2026-12-07', 2, 1.25)}{after}"
    doc.write_doc(path, result, "2026-12-07", 2, 1.25)
    assert path.read_text(encoding="utf-8") == text


def test_a_doc_without_markers_is_refused_and_left_unchanged(tmp_path: Path, result: BenchResult) -> None:
    path = tmp_path / "benchmark.md"
    path.write_text("# no markers\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no bench-results markers"):
        doc.write_doc(path, result, "2026-12-07", 2, 1.25)
    assert path.read_text(encoding="utf-8") == "# no markers\n"


def test_the_benchmark_doc_has_the_markers_make_bench_writes_between() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert text.count(doc.BEGIN) == 1 and text.count(doc.END) == 1
    assert text.index(doc.BEGIN) < text.index(doc.END)
    assert "--write-doc docs/benchmark.md" in (REPO_ROOT / "Makefile").read_text(encoding="utf-8")


def test_the_cli_refuses_to_write_the_doc_from_a_partial_run_or_without_markers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both refused before any simulation runs (a partial run would drop rows from the doc).
    marked = tmp_path / "marked.md"
    marked.write_text(f"{doc.BEGIN}\n{doc.END}\n", encoding="utf-8")
    assert main(["bench", "--no-plots", "--scenario", "seed-burst", "--write-doc", str(marked)]) == 2
    assert "--write-doc needs every scenario" in capsys.readouterr().err
    bare = tmp_path / "bare.md"
    bare.write_text("# nothing to replace\n", encoding="utf-8")
    assert main(["bench", "--no-plots", "--write-doc", str(bare)]) == 2
    assert "has no bench-results markers" in capsys.readouterr().err
    assert bare.read_text(encoding="utf-8") == "# nothing to replace\n"
