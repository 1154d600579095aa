"""The Lambda layer and the worker image ship the locked runtime dependencies the project is tested with."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

from packaging.requirements import Requirement

from devkit.stackmodel import ROOT

# Dependencies of the command line (devkit) only: the functions never import them.
CLI_ONLY = {"pyyaml", "rich"}
LAYER = ROOT / "layers" / "core"


def _ranges() -> set[str]:
    lines = (LAYER / "requirements.in").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _locked() -> dict[str, tuple[str, int]]:
    """Each locked package: its pinned version and how many hashes it carries."""
    text = (LAYER / "requirements.txt").read_text()
    entries = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, re.M)
    return {name.lower(): (pinned, block.count("--hash=")) for name, pinned, block in entries}


def test_given_the_project_then_the_layer_requires_its_runtime_dependencies_with_the_same_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    runtime = {d for d in project if Requirement(d).name not in CLI_ONLY}
    assert _ranges() == runtime


def test_given_the_lock_then_every_package_is_pinned_with_hashes_and_within_its_range() -> None:
    locked = _locked()
    lines = [line for line in (LAYER / "requirements.txt").read_text().splitlines() if "==" in line]
    assert len(lines) == len(locked), "every requirement line is an exact pin followed by its hashes"
    for text in _ranges():
        requirement = Requirement(text)
        pinned, hashes = locked[requirement.name.lower()]
        assert requirement.specifier.contains(pinned), f"{requirement.name}=={pinned} is outside {text}"
        assert hashes >= 1
    # pydantic-core is compiled: its lock entry must carry the arm64 wheel's hash among many.
    assert locked["pydantic-core"][1] > 10


def test_given_the_test_environment_then_it_runs_the_locked_versions() -> None:
    mismatched = {name: (pinned, version(name)) for name, (pinned, _) in _locked().items() if version(name) != pinned}
    assert mismatched == {}, "run `make setup` (the lock changed)"


def test_given_the_worker_image_then_it_installs_the_lock_with_hashes_and_the_project_without_resolving() -> None:
    dockerfile = (ROOT / "workers" / "Dockerfile").read_text()
    assert "COPY layers/core/requirements.txt ./requirements.txt" in dockerfile
    assert (
        "--require-hashes --no-deps" in dockerfile
        and "pip install --no-cache-dir --disable-pip-version-check --no-deps ." in dockerfile
    )


def test_given_the_build_system_then_its_setuptools_accepts_the_spdx_license_string() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(pyproject["project"]["license"], str)
    (setuptools,) = [Requirement(r) for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    # PEP 639 license expressions are accepted from setuptools 77.0.0 on.
    assert not setuptools.specifier.contains("76.9") and setuptools.specifier.contains("77.0.0")
