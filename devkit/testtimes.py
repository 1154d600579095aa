"""Time `make test` here and write what each of its steps took into the README.

`python3 -m devkit.testtimes` runs `make test` in the checkout (pass `--from-scratch` to delete
.venv, .venv-tools, .aws-sam and the tools' caches first, as a fresh clone has none), passes its output through, and
times it on the wall clock. Every slow step of the Makefile runs under scripts/keepalive.py, which
ends with `LABEL: done in N s`; those lines are the table's rows, in the order they ran, and what
is left of the total (ruff, hadolint, shellcheck, make itself) is one more row. The table replaces
the one between the README's `test-times` markers, with the machine's cores and the date: the
README's figures are the output of a run, never typed in. tests/unit/tooling/test_testtimes.py holds the
table's rows to the Makefile's own labels.

Run it on an otherwise idle machine: the figures are what a user of a machine like CI's (2 cores)
waits. Standard library only (it runs before .venv exists): `python3 -m devkit.testtimes`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN = "<!-- test-times:begin (python3 -m devkit.testtimes writes this table) -->"
END = "<!-- test-times:end -->"
#: scripts/keepalive.py's last line for a step that succeeded.
DONE = re.compile(r"^(?P<label>.+): done in (?P<seconds>\d+) s$")
#: What a fresh clone does not have: the environments, SAM's build, and the caches that speed tools up.
SCRATCH = (".venv", ".venv-tools", ".aws-sam", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis")
OTHER = "other steps (ruff, hadolint, shellcheck, make)"


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def steps(output: str) -> list[tuple[str, int]]:
    """Each step keepalive timed, in the order it ended: (label, seconds)."""
    return [(m["label"], int(m["seconds"])) for line in output.splitlines() if (m := DONE.match(line.strip()))]


def table(timed: list[tuple[str, int]], total: float, cores: int, day: str, from_scratch: bool) -> str:
    """The README's block: one row per step, the rest of the total, then the total."""
    start = "a fresh clone (no .venv, .venv-tools, .aws-sam or caches)" if from_scratch else "a checkout already set up"
    rows = [
        BEGIN,
        f"`make test` from {start}, measured by `python3 -m devkit.testtimes` on {day}, {cores} cores, an "
        "otherwise idle machine:",
        "",
        "| step | wall time |",
        "| --- | --: |",
    ]
    rows += [f"| {label} | {_minutes(seconds)} |" for label, seconds in timed]
    rows += [f"| {OTHER} | {_minutes(max(0.0, total - sum(s for _, s in timed)))} |"]
    rows += [f"| **total** | **{_minutes(total)}** |", END]
    return "\n".join(rows)


def replace_block(text: str, block: str) -> str:
    """`text` with its test-times block replaced; fails loudly when the markers are missing."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), flags=re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"error: {README.name} has no test-times markers ({BEGIN} ... {END})")
    return pattern.sub(lambda _match: block, text, count=1)


def run_make_test() -> tuple[int, str, float]:
    """`make test`, its output passed through and kept, and its wall time."""
    started = time.monotonic()
    child = subprocess.Popen(["make", "test"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    kept: list[str] = []
    assert child.stdout is not None
    for line in child.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        kept.append(line)
    return child.wait(), "".join(kept), time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m devkit.testtimes", description=__doc__.splitlines()[0])
    parser.add_argument("--from-scratch", action="store_true", help="delete what a fresh clone lacks first")
    args = parser.parse_args(argv)
    if args.from_scratch:
        for folder in SCRATCH:
            shutil.rmtree(ROOT / folder, ignore_errors=True)
    code, output, total = run_make_test()
    if code != 0:
        print(f"testtimes: make test failed (exit {code}); the README is unchanged", file=sys.stderr)
        return code
    block = table(steps(output), total, os.cpu_count() or 1, datetime.now(UTC).strftime("%Y-%m-%d"), args.from_scratch)
    README.write_text(replace_block(README.read_text(encoding="utf-8"), block), encoding="utf-8")
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
