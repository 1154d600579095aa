"""A smaller `make demo` as a test: burst, scale-out from zero, DLQ, drain, nothing lost."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from devkit.demo import run
from devkit.localcloud import recording
from devkit.localcloud.iam import PRODUCER, component_roles
from devkit.localcloud.stack import LocalSettings, local_stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


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
    # The timeline shows ai's warm pool at work and its schedule: each warm start a line, and the
    # schedule's floor as the scaler's explanation named it. How much faster a warm start is belongs to
    # the benchmark and tests/functional/test_local_warm_pool.py: here the launch hook's admission,
    # seconds to tens of seconds on a busy runner, dominates both (a fresh clone's run measured warm
    # 30 s and cold 28 s on average).
    starts = status["pools"]["ai"]["starts"]
    warm = {instance_id: seconds for instance_id, seconds, from_pool in starts if from_pool}
    assert warm, starts
    for instance_id, seconds in warm.items():
        assert f"ai: {instance_id} started from the warm pool in {seconds:.1f} s" in text
        # The worker stood by in the pool and served once it left (queue_worker/warm.py's events).
        log = (tmp_path / "cloud" / "instances" / f"{instance_id}.log").read_text()
        assert "worker_standby" in log and "worker_serving" in log, log[-2000:]
    assert re.search(r'ai: schedule "demo-floor" \(\d+ \d+ \d+ \d+ \* UTC, until [^)]+\) floor 1', text), text
    # Back at rest, the warm pool is prepared again.
    assert [i["LifecycleState"] for i in status["pools"]["ai"]["warm_pool"]] == ["Warmed:Hibernated"] * 2


def test_given_the_demo_run_when_its_recorded_calls_are_checked_then_each_role_grants_every_call_it_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The recorded-calls contract: every AWS call each component made (botocore hooks, in the
    daemon and in each worker process) is judged against its role from the transformed template,
    conditions included. Nothing lists the calls to expect: a call a later change adds is checked
    the first time the demo makes it."""
    state_dir = tmp_path / "cloud"
    run(Console(file=io.StringIO(), width=120), state_dir=state_dir, out_dir=tmp_path / "out", size=0.3, timeout=150)
    roles = {role.component: role for role in component_roles(local_stack(LocalSettings()))}
    checked = recording.check(recording.load(state_dir / "calls"), roles)
    listing = recording.report(checked, roles)
    unused = "\n".join(recording.unused_grants(checked, roles))
    with capsys.disabled():
        print(f"\nrecorded calls, per role:\n{listing}")
        print(f"granted, not called locally (the template's comments say why AWS needs them):\n{unused}")
    # Every function and every pool's workers ran and called AWS under their own role. The producer
    # runs in the demo's own process, whose calls no hook records: the local cloud's IAM judges them as
    # they are made (a call its policy lacks fails the demo), and test_iam_enforced pins its limits.
    assert {c.component for c in checked} == set(roles) - {PRODUCER}, listing
    assert [c for c in checked if not c.allowed] == [], listing
    operations = {(c.component, c.action) for c in checked}
    for expected in [
        ("Worker:video", "sqs:ReceiveMessage"),
        ("Worker:video", "sqs:DeleteMessage"),
        ("ScalerFunction", "autoscaling:SetDesiredCapacity"),
        ("LifecycleFunction", "ssm:SendCommand"),
        ("DlqRefundFunction", "sns:Publish"),
        ("MetricsFunction", "sqs:GetQueueAttributes"),
    ]:
        assert expected in operations, listing
