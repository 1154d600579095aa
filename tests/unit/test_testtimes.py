"""The README's test-time figures come from `python -m devkit.testtimes`, and cover what `make test` runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devkit import testtimes

ROOT = Path(__file__).resolve().parents[2]


def readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = text.index(testtimes.BEGIN), text.index(testtimes.END)
    return text[start : end + len(testtimes.END)]


def test_the_readme_table_is_one_the_module_wrote_with_every_step_in_order() -> None:
    block = readme_block()
    names = re.findall(r"^\| (\w+) \|", block, flags=re.MULTILINE)
    assert names[:2] in (["setup", "tools"], ["lint", "validate"])
    steps = testtimes.SETUP + testtimes.STEPS if names[0] == "setup" else testtimes.STEPS
    assert names == [step.name for step in steps]
    figures = re.findall(r"\| ((?:\d+ min )?\d+ s) \|$", block, flags=re.MULTILINE)
    assert len(figures) == len(steps)
    assert "Measured by `python -m devkit.testtimes` on " in block


def test_the_steps_are_make_tests_prerequisites_then_every_test_folder() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    prerequisites = re.search(r"^test: (.*?) ##", makefile, flags=re.MULTILINE)
    assert prerequisites is not None
    make_steps = [step.command[1] for step in testtimes.STEPS if step.command[0] == "make"]
    assert make_steps == prerequisites.group(1).split()
    test_folders = sorted(p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and any(p.glob("test_*.py")))
    assert sorted(step.command[-1].removeprefix("tests/") for step in testtimes.STEPS if step.command[0] != "make") == (
        test_folders
    )


def test_the_table_adds_the_steps_up_and_replaces_only_its_block() -> None:
    figures = [(testtimes.STEPS[0], 61.4), (testtimes.STEPS[1], 9.6)]
    block = testtimes.table(figures, 2, "2026-12-07")
    assert "| lint | ruff, ruff format, mypy, hadolint, shellcheck | 1 min 01 s |" in block
    assert "| validate | sam validate --lint, cfn-lint, checkov, shellcheck | 10 s |" in block
    assert "| **total** | | **1 min 11 s** |" in block
    text = f"before\n{testtimes.BEGIN}\nold\n{testtimes.END}\nafter\n"
    assert testtimes.replace_block(text, block) == f"before\n{block}\nafter\n"


def test_a_readme_without_the_markers_is_refused() -> None:
    with pytest.raises(SystemExit, match="no test-times markers"):
        testtimes.replace_block("no markers here", "block")
