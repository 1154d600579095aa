"""Run a command, pass its output through, and say it is still running when it has been silent a while.

`make demo` and `make test` run steps that print nothing for minutes (pip with --quiet, mypy's first
run, SAM's build, a pytest worker inside a long end-to-end test). A user, or a CI log, cannot tell
such a step from a hung one. This wrapper forwards the command's output as it comes and, after
SILENCE seconds without any, prints one line naming the step and how long it has run. It exits
with the command's own code, and forwards SIGINT, SIGTERM and SIGHUP to it.

Usage: keepalive.py [--every SECONDS] LABEL -- COMMAND [ARG ...]

Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import subprocess
import sys
import time

#: Seconds of silence before a "still running" line; the issue's bound on silence is 30 s.
SILENCE = 20.0


def _elapsed(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def run(label: str, command: list[str], every: float = SILENCE) -> int:
    """Run `command`, forward its output byte for byte, and break every `every` seconds of silence."""
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)  # noqa: S603
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: child.send_signal(number))
    assert child.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    out = sys.stdout.buffer
    last_output, at_line_start = started, True
    while True:
        if selector.select(timeout=1.0):
            chunk = os.read(child.stdout.fileno(), 65536)
            if not chunk:
                break
            out.write(chunk)
            out.flush()
            last_output, at_line_start = time.monotonic(), chunk.endswith(b"\n")
        elif time.monotonic() - last_output >= every:
            now = time.monotonic()
            prefix = b"" if at_line_start else b"\n"
            out.write(prefix + f"[{label}] still running ({_elapsed(now - started)})\n".encode())
            out.flush()
            last_output, at_line_start = now, True
    return child.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=SILENCE, help="seconds of silence before a line")
    parser.add_argument("label")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    return run(args.label, command, args.every)


if __name__ == "__main__":
    sys.exit(main())
