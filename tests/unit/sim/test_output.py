"""Output never hard-wraps when piped; on a narrow terminal tables fold cells instead of cutting them."""

from __future__ import annotations

import io

from rich.console import Console

from devkit import output
from devkit.sim.report import metrics_table

METRICS = {
    "jobs": 1500,
    "completed": 1500,
    "lost": 0,
    "wait_p50": 851.2,
    "wait_p95": 1512.0,
    "wait_p99": 1571.0,
    "wait_max": 1582.0,
    "instance_seconds": 38520.0,
    "scale_actions": 9,
    "reversals": 0,
    "reaction_seconds": 9.3,
}


def test_given_a_pipe_when_printing_a_long_line_and_a_table_then_nothing_is_wrapped_or_cut() -> None:
    pipe = io.StringIO()  # not a terminal
    console = output.console(file=pipe)
    line = "demo: " + " ".join(f"field{i}=value{i}" for i in range(40))
    console.print(line)
    console.print(metrics_table("stage-30k  (waits in s)", {"target-tracking-hires": METRICS}))
    printed = pipe.getvalue()
    assert line in printed.splitlines()
    assert "…" not in printed and "target-tracking-hires" in printed and "1,512" in printed


def test_given_a_narrow_terminal_when_printing_a_metrics_table_then_cells_fold_rather_than_truncate() -> None:
    narrow = io.StringIO()
    Console(file=narrow, width=60).print(metrics_table("seed-burst", {"queue-scaler": METRICS}))
    printed = narrow.getvalue()
    assert "…" not in printed
    assert max(len(row) for row in printed.splitlines()) <= 60
