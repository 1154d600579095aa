"""The Lambda layer ships the runtime dependencies the project is tested with."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement

from devkit.stackmodel import ROOT

# Dependencies of the command line (devkit) only: the functions never import them.
CLI_ONLY = {"pyyaml", "rich"}


def _requirements() -> set[str]:
    lines = (ROOT / "layers" / "core" / "requirements.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_given_the_project_then_the_layer_requires_its_runtime_dependencies_with_the_same_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    runtime = {d for d in project if Requirement(d).name not in CLI_ONLY}
    assert _requirements() == runtime
