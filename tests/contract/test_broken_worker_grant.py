"""The local cloud enforces the template's IAM: without the worker's receive grant, `make demo` fails.

A copy of the transformed templates whose WorkerRole lacks sqs:ReceiveMessage is what the local
cloud takes its roles from (QS_LOCAL_TEMPLATES); every worker's receive is then refused, as on AWS,
no job runs, and the demo reports failure. This is the check that was missing when the grant was.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from devkit import demo
from devkit.localcloud.stack import TEMPLATES_ENV
from devkit.stackmodel import TRANSFORMED

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def without_receive(data: dict[str, Any]) -> int:
    """Remove sqs:ReceiveMessage from every statement of the pool template's WorkerRole; how many it was in."""
    removed = 0
    role = data["templates"]["templates/pool.yaml"]["Resources"]["WorkerRole"]
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement.get("Action") if isinstance(statement, dict) else None
            if isinstance(actions, list) and "sqs:ReceiveMessage" in actions:
                actions.remove("sqs:ReceiveMessage")
                removed += 1
    return removed


def test_given_the_worker_receive_grant_removed_when_the_demo_runs_then_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads(TRANSFORMED.read_text())
    assert without_receive(data) == 1
    broken = tmp_path / "templates.json"
    broken.write_text(json.dumps(data))
    monkeypatch.setenv(TEMPLATES_ENV, str(broken))

    state_dir = tmp_path / "cloud"
    report, status = demo.run(
        Console(file=io.StringIO()), state_dir=state_dir, out_dir=tmp_path / "out", size=0.3, timeout=30
    )

    assert not demo.passed(report, status)
    assert report.completed == 0 and report.lost == report.submitted
    logs = "".join(p.read_text() for p in (state_dir / "instances").glob("*.log"))
    assert "AccessDenied" in logs and "sqs:ReceiveMessage" in logs
