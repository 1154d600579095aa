"""The command line's start: `--version` and `--help` import no command, a closed pipe is no traceback."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.cli import COMMANDS, _WithExtras, build_parser

ROOT = Path(__file__).resolve().parents[3]
#: What the commands pull in: each costs a tenth of a second or more to import.
HEAVY = ("boto3", "botocore", "moto", "pydantic", "rich", "matplotlib", "yaml", "queue_scaler", "devkit.commands")

_LOADED_AFTER = """
import json, sys
from devkit.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded_after(*argv: str) -> tuple[str, list[str]]:
    """What `queue-scaler ARGV` prints, and every module it imported, from a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADED_AFTER, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_version_and_help_import_no_command(argv: list[str]) -> None:
    out, modules = loaded_after(*argv)
    assert out.startswith("queue-scaler ") if argv == ["--version"] else "decide" in out
    assert [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)] == []


def test_a_command_imports_its_own_module_only() -> None:
    _, modules = loaded_after("decide", "--help")
    commands = sorted(m for m in modules if m.startswith("devkit.commands."))
    assert commands == ["devkit.commands.common", "devkit.commands.decide"]
    assert "moto" not in modules and "boto3" not in modules


def test_every_command_in_the_table_is_configured_by_its_module() -> None:
    parser = build_parser()  # without argv: every command's module imported and configured
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(sub.choices) == list(COMMANDS)
    for name, command in sub.choices.items():
        actions = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        assert command.get_default("run") is not None or actions, f"{name}: its module configured nothing"
    # Any plan the configuration may name: routing, not the command line, says which exist.
    assert (
        parser.parse_args(["submit", "--kind", "k", "--plan", "gold", "--user", "u", "--credits", "1"]).plan == "gold"
    )


def test_a_reader_that_closes_the_pipe_gets_no_traceback() -> None:
    """`queue-scaler decide - | head -0`: the reader is gone before the answer is written."""
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit.cli", "decide", "-"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the interpreter has even started: its first write finds no reader
    _, err = process.communicate((ROOT / "examples" / "request.json").read_bytes(), timeout=120)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err
    assert process.returncode == 1


def test_a_log_line_on_the_terminal_carries_its_fields() -> None:
    """A service logs its context as `extra` (the queue it could not read): the terminal shows it."""
    record = logging.LogRecord("queue_scaler.x", logging.WARNING, "", 0, "queue unreadable", (), None)
    record.__dict__.update({"pool": "video", "queue": "video-fre"})
    line = _WithExtras("%(levelname)s %(name)s: %(message)s").format(record)
    assert line == "WARNING queue_scaler.x: queue unreadable pool=video queue=video-fre"
