"""The README's command blocks run as written: a fresh shell, `source .venv/bin/activate`, no AWS setup."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from devkit.localcloud.control import DEFAULT_DIR, down, read_state

# Both use the checkout's own state folders (.localcloud, .localcloud-demo), as a user would: under
# pytest-xdist they share one worker, so that neither takes down the other's local cloud.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600), pytest.mark.xdist_group("checkout-state")]
ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    """Every `$ ` line of every console block, in order."""
    blocks = re.findall(r"```console\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.DOTALL)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def fresh_shell_environment(home: Path) -> dict[str, str]:
    """What a new terminal has: a PATH and a HOME, no AWS region, credentials or endpoint."""
    return {"PATH": os.defpath, "HOME": str(home), "LANG": "C.UTF-8"}


def test_given_a_fresh_shell_when_running_every_readme_command_then_each_exits_0(tmp_path: Path) -> None:
    if read_state(ROOT / DEFAULT_DIR) is not None:
        pytest.skip(f"a local cloud already runs in {ROOT / DEFAULT_DIR}; this test would take it down")
    commands = readme_commands()
    assert commands[0] == "source .venv/bin/activate" and any(c.startswith("queue-scaler local up") for c in commands)
    env = fresh_shell_environment(tmp_path)
    try:
        for command in commands:
            run = subprocess.run(
                ["bash", "-c", f"source .venv/bin/activate && {command}"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
            assert run.returncode == 0, (command, run.stdout[-1500:], run.stderr[-1500:])
    finally:
        down(ROOT / DEFAULT_DIR)
