"""A smaller `make demo` as a test: burst, scale-out from zero, DLQ, drain, nothing lost."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from devkit.demo import run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_given_a_burst_across_plans_when_the_demo_runs_then_nothing_is_lost_and_pools_return_idle(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    report, status = run(
        Console(file=out, width=120), state_dir=tmp_path / "cloud", out_dir=tmp_path / "out", size=0.5, timeout=150
    )
    text = out.getvalue()
    assert "not settled" not in text
    assert report.submitted and report.lost == set()
    assert report.duplicates == set()
    # One job in ten fails on every attempt: those, and only those, fail for good; every other job
    # completes (a drained one may reach its DLQ too, and is sent back, never refunded).
    assert report.failing and report.failing <= report.dead_lettered
    assert report.completed == len(report.submitted) - len(report.failing)
    # Scaled out from zero, then drained back: every lifecycle action completed, none left to time out.
    assert status["pools"]["video"]["desired"] == 0 and status["pools"]["messaging"]["desired"] == 1
    assert status["lifecycle"]["pending"] == 0 and status["lifecycle"]["timed_out"] == 0
    assert status["lifecycle"]["completed"] >= 4
    assert all(p["instance_seconds"] > 0 for p in status["pools"].values())
    assert {p.name for p in (tmp_path / "out").glob("demo-*.png")} == {
        "demo-messaging.png",
        "demo-video.png",
        "demo-ai.png",
    }
    # Every failing job that had reserved credits was refunded once, and the books add up.
    ledger = status["ledger"]
    assert ledger["refunds"] == len(report.failing & report.charged) > 0
    assert ledger["reserved"] - ledger["refunded"] == ledger["charged"] and ledger["problems"] == []
    assert ledger["recorded"] == len(report.failing - report.charged)
    # The ledger's outcomes: every submitted job counted once, all settled.
    outcomes = ledger["outcomes"]
    assert outcomes["completed"] == report.completed and outcomes["parked"] == 0
    assert outcomes["pending"] == outcomes["running"] == 0
    assert sum(outcomes.values()) == len(report.submitted)
    assert f"(sum {len(report.submitted)} = {len(report.submitted)} submitted: True)" in text
    assert f"demo: jobs={len(report.submitted)} completed={report.completed}" in text
    assert "lost=0 duplicates=0" in text and f"refunded={ledger['refunds']}" in text
