"""Measure how long each step of `make test` takes here, and write the figures into the README.

`python -m devkit.testtimes` runs each step of `make test` once, as the Makefile runs it (pytest on
every core), times it on the wall clock, and rewrites the table between the README's
`test-times` markers with the figures, the machine's cores and the date. The README's numbers are
therefore the output of a run, never typed in; tests/unit/test_testtimes.py holds the table to the
steps this module knows, and those to the Makefile's own targets.

Run it on an idle machine: the figures are what a user of a machine like CI's (2 cores) waits.
`--from-scratch` also times creating both virtual environments (it deletes .venv and .venv-tools first).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN = "<!-- test-times:begin (python -m devkit.testtimes writes this table) -->"
END = "<!-- test-times:end -->"
PYTEST = (".venv/bin/pytest", "-n", "auto", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider")


@dataclass(frozen=True)
class Step:
    """One step of `make test`: what the README calls it and the command that runs it."""

    name: str
    what: str
    command: tuple[str, ...]


#: The steps of `make test`, in its order. The environments come first only with --from-scratch.
SETUP = (
    Step("setup", "create .venv (Python 3.12, the project, its dev tools)", ("make", "setup")),
    Step("tools", "create .venv-tools (SAM CLI, cfn-lint, checkov)", ("make", "tools")),
)
STEPS = (
    Step("lint", "ruff, ruff format, mypy, hadolint, shellcheck", ("make", "lint")),
    Step("validate", "sam validate --lint, cfn-lint, checkov, shellcheck", ("make", "validate")),
    Step("build", "sam build (arm64 wheels for the layer)", ("make", "build")),
    Step("transform", "the templates to CloudFormation JSON", ("make", "transform")),
    Step("unit", "tests/unit", (*PYTEST, "tests/unit")),
    Step("functional", "tests/functional (moto)", (*PYTEST, "tests/functional")),
    Step("contract", "tests/contract (the transformed stack)", (*PYTEST, "tests/contract")),
    Step("e2e", "tests/e2e (local clouds, real processes)", (*PYTEST, "tests/e2e")),
)


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def table(figures: list[tuple[Step, float]], cores: int, day: str) -> str:
    """The README's block: one row per step, then the total."""
    rows = [
        BEGIN,
        f"Measured by `python -m devkit.testtimes` on {day}, {cores} cores, an otherwise idle machine:",
        "",
        "| step | what | wall time |",
        "| --- | --- | --: |",
    ]
    rows += [f"| {step.name} | {step.what} | {_minutes(seconds)} |" for step, seconds in figures]
    rows += [f"| **total** | | **{_minutes(sum(seconds for _, seconds in figures))}** |", END]
    return "\n".join(rows)


def replace_block(text: str, block: str) -> str:
    """`text` with its test-times block replaced; fails loudly when the markers are missing."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), flags=re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"error: {README.name} has no test-times markers ({BEGIN} ... {END})")
    return pattern.sub(lambda _match: block, text, count=1)


def measure(step: Step) -> float:
    print(f"testtimes: {step.name}: {' '.join(step.command)}", flush=True)
    started = time.monotonic()
    run = subprocess.run(step.command, cwd=ROOT, check=False)
    seconds = time.monotonic() - started
    if run.returncode != 0:
        raise SystemExit(f"error: step {step.name} failed (exit {run.returncode}); nothing written")
    print(f"testtimes: {step.name}: {_minutes(seconds)}", flush=True)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.testtimes", description=__doc__.splitlines()[0])
    parser.add_argument("--from-scratch", action="store_true", help="also time creating .venv and .venv-tools")
    args = parser.parse_args(argv)
    steps: tuple[Step, ...] = STEPS
    if args.from_scratch:
        for folder in (".venv", ".venv-tools", ".aws-sam"):
            shutil.rmtree(ROOT / folder, ignore_errors=True)
        steps = SETUP + STEPS
    figures = [(step, measure(step)) for step in steps]
    block = table(figures, os.cpu_count() or 1, datetime.now(UTC).strftime("%Y-%m-%d"))
    README.write_text(replace_block(README.read_text(encoding="utf-8"), block), encoding="utf-8")
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
