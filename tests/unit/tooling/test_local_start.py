"""Starting the local cloud from a fresh clone: what it needs is made first, or named in one line."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from devkit import stackmodel, template
from devkit.cli import main
from devkit.commands.invoke import Endpoint, concurrent_tick_note
from devkit.localcloud.control import StaleTemplates, check_templates, last_error, up

ROOT = Path(__file__).resolve().parents[3]


def test_given_no_transformed_templates_then_local_up_names_the_file_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QS_LOCAL_TEMPLATES", str(tmp_path / "templates.json"))
    with pytest.raises(StaleTemplates, match=r"templates.json is missing: run `make transform`"):
        up(tmp_path / "state")
    assert not (tmp_path / "state").exists()  # refused before a daemon was started
    assert main(["local", "--state-dir", str(tmp_path / "state"), "up"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("queue-scaler local up: ") and "make transform" in err


def test_given_a_template_changed_since_the_transform_then_it_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "templates.json"
    sources = {"template.yaml": hashlib.sha256(b"an older template").hexdigest()}
    stale.write_text(json.dumps({"sources": sources, "templates": {}}))
    monkeypatch.delenv("QS_LOCAL_TEMPLATES", raising=False)
    monkeypatch.setattr(stackmodel, "TRANSFORMED", stale)
    with pytest.raises(StaleTemplates, match=r"template.yaml changed since `make transform`: run it again"):
        check_templates()


def test_a_daemon_that_died_is_explained_by_its_logs_last_line(tmp_path: Path) -> None:
    log = tmp_path / "localcloud.log"
    log.write_text('Traceback (most recent call last):\n  File "x"\nAssertionError: the cause\n\n')
    assert last_error(log) == "AssertionError: the cause"
    assert last_error(tmp_path / "none.log") == "no log"


def test_make_demo_makes_the_transformed_templates_first(tmp_path: Path) -> None:
    """A fresh clone has none: `make demo` translates the templates before it runs the demo."""
    target = tmp_path / "contract" / "templates.json"
    plan = subprocess.run(
        ["make", "--dry-run", "demo", f"TRANSFORMED={target}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "scripts/transform-templates.py" in plan
    assert plan.index("scripts/transform-templates.py") < plan.index("queue-scaler demo")


def test_make_demo_remakes_them_when_a_template_is_newer() -> None:
    plan = subprocess.run(
        ["make", "--dry-run", "--what-if=templates/pool.yaml", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "scripts/transform-templates.py" in plan


def test_the_functions_memory_is_the_templates() -> None:
    loaded = template.load()
    assert template.function(loaded, "ScalerFunction").memory_mb == 128  # its own MemorySize
    assert template.function(loaded, "MetricsFunction").memory_mb == 128  # its own MemorySize (docs/cost.md)
    assert template.function(loaded, "LifecycleFunction").memory_mb == 256  # Globals'


NOTES = [
    # (name, function, schedule seconds, handler output, note expected)
    ("the schedule's tick met", "ScalerFunction", 5.0, ['{"ConcurrentTicks": [1.0]}'], True),
    ("no meeting", "ScalerFunction", 5.0, ['{"ScaleActions": [1.0]}'], False),
    ("schedule off", "ScalerFunction", 0.0, ['{"ConcurrentTicks": [1.0]}'], False),
    ("another function", "MetricsFunction", 5.0, ['{"ConcurrentTicks": [1.0]}'], False),
]


@pytest.mark.parametrize(("name", "function", "schedule", "lines", "noted"), NOTES, ids=[n[0] for n in NOTES])
def test_invoke_says_when_the_other_tick_was_the_local_clouds_schedule(
    name: str, function: str, schedule: float, lines: list[str], noted: bool
) -> None:
    note = concurrent_tick_note(function, Endpoint("http://127.0.0.1:1", {}, schedule), lines)
    assert (note is not None) == noted, name
    if note is not None:
        assert "local cloud's own scaler schedule (every 5 s)" in note and "--schedule-seconds 0" in note


def test_a_demo_without_a_terminal_prints_a_progress_line() -> None:
    """CI logs the demo: its live view shows only at the end, so a line every few seconds says where it is."""
    from devkit.demo import progress_line

    status = {
        "pools": {"video": {"desired": 6, "in_service": 2}, "ai": {"desired": 0, "in_service": 0}},
        "queues": {
            "v-pro": {"pool": "video", "visible": 10, "in_flight": 2, "dlq": 1},
            "v-free": {"pool": "video", "visible": 3, "in_flight": 0, "dlq": 0},
        },
        "ledger": {"outcomes": {"completed": 4}},
    }
    line = progress_line(status, 12.4, 110)
    assert line == "demo t=12s: video 2/6 backlog 15, ai 0/0 backlog 0 (in service/desired); jobs 4/110 done"
