"""The README's test-time figures come from `python3 -m devkit.testtimes`, and name the Makefile's own steps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devkit import testtimes

ROOT = Path(__file__).resolve().parents[3]


def readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = text.index(testtimes.BEGIN), text.index(testtimes.END)
    return text[start : end + len(testtimes.END)]


def makefile_labels() -> set[str]:
    """Every label the Makefile gives scripts/keepalive.py (a tier's label once per test folder)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    labels = set(re.findall(r'\$\(KEEPALIVE\) "([^"$]+)"', makefile))
    labels |= set(re.findall(r"\$\(KEEPALIVE\) ([\w-]+) --", makefile))
    tiers = re.search(r"^TEST_TIERS := (.*)$", makefile, flags=re.MULTILINE)
    assert tiers is not None
    return labels | {f"pytest tests/{tier}" for tier in tiers.group(1).split()}


def test_the_readme_table_is_one_the_module_wrote_naming_the_makefiles_steps() -> None:
    block = readme_block()
    if block == f"{testtimes.BEGIN}\n{testtimes.END}":
        pytest.skip("no figures yet: python3 -m devkit.testtimes writes them (a clone measuring itself)")
    assert "measured by `python3 -m devkit.testtimes` on " in block
    rows = re.findall(r"^\| (.+?) \| \**((?:\d+ min )?\d+ s)\** \|$", block, flags=re.MULTILINE)
    labels = [label for label, _ in rows]
    assert labels[-2:] == [testtimes.OTHER, "**total**"]
    assert set(labels[:-2]) <= makefile_labels()
    # Every test tier ran and was timed.
    tiers = {label for label in makefile_labels() if label.startswith("pytest tests/")}
    assert tiers <= set(labels)


def test_every_test_folder_is_a_tier_of_make_test() -> None:
    folders = {f"pytest tests/{p.name}" for p in (ROOT / "tests").iterdir() if p.is_dir() and any(p.rglob("test_*.py"))}
    assert folders == {label for label in makefile_labels() if label.startswith("pytest tests/")}


def test_the_steps_are_read_from_keepalives_last_lines_and_the_rest_is_one_row() -> None:
    output = "setup ...\nsetup: still running (20 s)\nsetup: done in 61 s\n....\npytest tests/unit: done in 9 s\n"
    timed = testtimes.steps(output)
    assert timed == [("setup", 61), ("pytest tests/unit", 9)]
    block = testtimes.table(timed, 100.4, 2, "2026-12-07", from_scratch=True)
    assert "| setup | 1 min 01 s |" in block
    assert "| pytest tests/unit | 9 s |" in block
    assert f"| {testtimes.OTHER} | 30 s |" in block
    assert "| **total** | **1 min 40 s** |" in block
    assert "from a fresh clone" in block
    text = f"before\n{testtimes.BEGIN}\nold\n{testtimes.END}\nafter\n"
    assert testtimes.replace_block(text, block) == f"before\n{block}\nafter\n"


def test_a_readme_without_the_markers_is_refused() -> None:
    with pytest.raises(SystemExit, match="no test-times markers"):
        testtimes.replace_block("no markers here", "block")
