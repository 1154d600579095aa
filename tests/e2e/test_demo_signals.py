"""`make demo` owns its processes: SIGHUP (the terminal closed) and Ctrl-C stop everything it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from devkit.localcloud.control import DEMO_DIR, leftover_workers
from tests.e2e.conftest import alive

# Both use the checkout's own state folders (.localcloud, .localcloud-demo), as a user would: under
# pytest-xdist they share one worker, so that neither takes down the other's local cloud.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900), pytest.mark.xdist_group("checkout-state")]
ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / DEMO_DIR


def wait_for(check: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.5)
    return bool(check())  # type: ignore[operator]


def start_demo() -> subprocess.Popen[str]:
    """`make demo` as a terminal runs it: its own process group, as the shell's foreground job."""
    return subprocess.Popen(
        ["make", "--no-print-directory", "demo"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def started_processes(demo: subprocess.Popen[str]) -> list[int]:
    """Once the demo's local cloud runs a worker: the group's processes, the daemon and its workers."""
    state_file = STATE_DIR / "state.json"
    assert wait_for(state_file.exists, 120), "the demo's local cloud did not start"
    state = json.loads(state_file.read_text())
    assert wait_for(lambda: leftover_workers(STATE_DIR), 60), "no worker started"
    return [*group_members(demo.pid), int(state["pid"]), *leftover_workers(STATE_DIR)]


def stop_and_check(demo: subprocess.Popen[str], sig: signal.Signals) -> str:
    processes = started_processes(demo)
    assert len(processes) >= 4  # make, the demo, the daemon, at least one worker
    os.killpg(demo.pid, sig)
    _, stderr = demo.communicate(timeout=60)
    assert wait_for(lambda: not [p for p in processes if alive(p)], 30), [p for p in processes if alive(p)]
    assert leftover_workers(STATE_DIR) == []
    return stderr


def test_given_make_demo_when_its_terminal_closes_or_ctrl_c_then_nothing_it_started_survives_and_the_next_passes() -> (
    None
):
    hangup = stop_and_check(start_demo(), signal.SIGHUP)
    assert "Traceback" not in hangup

    interrupted = stop_and_check(start_demo(), signal.SIGINT)
    assert "Traceback" not in interrupted
    ours = [line for line in interrupted.splitlines() if line.startswith("queue-scaler")]
    assert ours == ["queue-scaler demo: stopped by SIGINT"]

    again = start_demo()
    stdout, stderr = again.communicate(timeout=400)
    assert again.returncode == 0, stderr[-2000:]
    assert "lost=0 duplicates=0" in stdout
