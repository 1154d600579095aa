"""scripts/arch-template.py: the x86_64 copy of the template for local builds changes only the architecture."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("arch_template", ROOT / "scripts" / "arch-template.py")
assert spec and spec.loader
arch_template = importlib.util.module_from_spec(spec)
spec.loader.exec_module(arch_template)


def test_the_x86_copy_differs_from_the_template_only_in_its_three_architecture_lines() -> None:
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    copy = arch_template.convert(text, "x86_64")
    changed = [(a, b) for a, b in zip(text.splitlines(), copy.splitlines(), strict=True) if a != b]
    assert [b.strip() for _, b in changed] == [
        "Architectures: [x86_64]",
        "BuildArchitecture: x86_64",
        "CompatibleArchitectures: [x86_64]",
    ]


def test_a_template_missing_one_of_the_places_is_refused_naming_it() -> None:
    text = (ROOT / "template.yaml").read_text(encoding="utf-8").replace("BuildArchitecture: arm64", "")
    with pytest.raises(SystemExit, match="BuildArchitecture: arm64"):
        arch_template.convert(text, "x86_64")
