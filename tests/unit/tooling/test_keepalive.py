"""scripts/keepalive.py (the Makefile's quiet steps): what it says before, while and after a step runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
KEEPALIVE = ROOT / "scripts" / "keepalive.py"


def run(tmp_path: Path, label: str, *command: str, seconds: str = "1") -> tuple[int, list[str]]:
    out = tmp_path / "out.txt"
    with out.open("w") as sink:
        done = subprocess.run(
            [sys.executable, str(KEEPALIVE), label, "--", *command],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "KEEPALIVE_SECONDS": seconds},
            timeout=120,
            check=False,
        )
    return done.returncode, out.read_text().splitlines()


def test_a_silent_step_says_it_still_runs_and_ends_with_its_own_status(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    # The step ends only once the wrapper has spoken: no sleep decides the outcome, the condition does.
    step = f"until grep -q 'still running' {out}; do sleep 0.1; done; exit 3"
    code, lines = run(tmp_path, "setup: installing", "bash", "-c", step)
    assert code == 3
    assert lines[0] == "setup: installing ..."
    assert lines[1].startswith("setup: installing: still running (")
    assert lines[-1].startswith("setup: installing: FAILED (exit 3) after ")


def test_output_passes_through_whole_and_a_talkative_step_gets_no_still_running_line(tmp_path: Path) -> None:
    code, lines = run(tmp_path, "pytest", "bash", "-c", "printf '...'; printf '..\\n'; echo '2 passed'", seconds="60")
    assert code == 0
    assert lines[0] == "pytest ..."
    assert lines[1:3] == [".....", "2 passed"]
    assert lines[-1].startswith("pytest: done in ")
    assert not any("still running" in line for line in lines)


def test_a_still_running_line_starts_on_its_own_line_after_partial_output(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    step = f"printf '..'; until grep -q 'still running' {out}; do sleep 0.1; done; printf '.\\n'"
    code, lines = run(tmp_path, "pytest", "bash", "-c", step)
    assert code == 0
    assert lines[1] == ".."
    assert lines[2].startswith("pytest: still running (")
