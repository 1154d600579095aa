"""ARCHITECTURE.md stays true: every path it names exists, and the test tiers' times it quotes are
the README's measured table."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: The call chains name the package's modules relative to it.
PACKAGE = ROOT / "layers" / "core" / "queue_scaler"
DOC = (ROOT / "ARCHITECTURE.md").read_text()
README = (ROOT / "README.md").read_text()


def _named_paths() -> list[str]:
    """Backticked repository paths (a slash and no placeholder), with any `: function` part dropped."""
    found = []
    for quoted in re.findall(r"`([^`\s]+/[^`\s]*)", DOC):
        path = quoted.split(":")[0].rstrip(",.")
        if "<" not in path and not path.startswith(("http", "/")):
            found.append(path)
    return found


def test_every_path_the_architecture_names_exists() -> None:
    paths = _named_paths()
    assert len(paths) > 20, "the checklists name files; the pattern found too few"
    missing = [p for p in paths if not (ROOT / p).exists() and not (PACKAGE / p).exists()]
    assert not missing, f"ARCHITECTURE.md names paths that do not exist: {missing}"


def test_the_tiers_times_are_the_readmes_measured_ones() -> None:
    for tier in ("unit", "functional", "contract", "e2e"):
        [measured] = re.findall(rf"\| pytest tests/{tier} \| ([^|]+) \|", README)
        assert f"{tier} {measured.strip()}" in DOC, f"ARCHITECTURE.md must quote {tier}'s {measured.strip()}"
    [total] = re.findall(r"\| \*\*total\*\* \| \*\*([^*]+)\*\* \|", README)
    assert f"{total} in all" in DOC
