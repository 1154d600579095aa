"""Run one step of `make`, saying what it does and that it still runs whenever it has been silent a while.

`make demo` and `make test` run steps that print nothing for minutes (pip with --quiet, mypy's first
run, SAM's build, a pytest worker inside a long end-to-end test); a user, or a CI log, cannot tell
such a step from a hung one. This wrapper prints `LABEL ...`, forwards the command's output as it
comes, prints `LABEL: still running (N s)` after every KEEPALIVE_SECONDS (default 20) without any
output, and ends with `LABEL: done in N s` or `LABEL: FAILED (exit N) after N s` (on standard error).
It exits with the command's own code and forwards SIGINT, SIGTERM and SIGHUP to it.

Usage: keepalive.py LABEL [--] COMMAND [ARG ...]

Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time

#: Seconds of silence before a "still running" line: the issue's bound on silence is 30 s.
DEFAULT_SECONDS = 20.0


def _seconds(since: float) -> str:
    return f"{round(time.monotonic() - since)} s"


def run(label: str, command: list[str], every: float) -> int:
    """Run `command`, forward its output byte for byte, and break every `every` seconds of silence."""
    started = time.monotonic()
    out = sys.stdout.buffer
    out.write(f"{label} ...\n".encode())
    out.flush()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)  # noqa: S603
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: child.send_signal(number))
    stream = child.stdout
    if stream is None:  # never: stdout is a pipe; this keeps the type checker and the reader honest
        raise RuntimeError("no pipe from the command")
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    last_output, at_line_start = started, True
    while True:
        if selector.select(timeout=min(1.0, every)):
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                break
            out.write(chunk)
            out.flush()
            last_output, at_line_start = time.monotonic(), chunk.endswith(b"\n")
        elif time.monotonic() - last_output >= every:
            prefix = b"" if at_line_start else b"\n"
            out.write(prefix + f"{label}: still running ({_seconds(started)})\n".encode())
            out.flush()
            last_output, at_line_start = time.monotonic(), True
    code = child.wait()
    if not at_line_start:
        out.write(b"\n")
    out.flush()
    if code == 0:
        print(f"{label}: done in {_seconds(started)}", flush=True)
    else:
        print(f"{label}: FAILED (exit {code}) after {_seconds(started)}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: keepalive.py LABEL [--] COMMAND [ARG ...]", file=sys.stderr)
        return 2
    label, command = argv[0], argv[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print(f"keepalive.py {label}: no command given", file=sys.stderr)
        return 2
    return run(label, command, float(os.environ.get("KEEPALIVE_SECONDS", DEFAULT_SECONDS)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
