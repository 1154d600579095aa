"""Fixtures of the contract tests: the transformed templates, samconfig.toml, the stack per environment."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.stackmodel import ROOT, Stack, load_templates, root_stack

from .invariants import environments, load_samconfig, parameter_overrides

SAMCONFIG = ROOT / "samconfig.toml"


@pytest.fixture(scope="session")
def templates() -> dict[str, Any]:
    return load_templates()


@pytest.fixture(scope="session")
def samconfig() -> dict[str, Any]:
    return load_samconfig(SAMCONFIG)


def _environment_names() -> list[str]:
    return sorted(environments(load_samconfig(SAMCONFIG)))


@pytest.fixture(params=_environment_names())
def deployed(request: pytest.FixtureRequest, templates: dict[str, Any], samconfig: dict[str, Any]) -> Stack:
    """The stack tree as `sam deploy --config-env <env>` would create it."""
    deploy = environments(samconfig)[request.param]
    return root_stack(templates, parameter_overrides(deploy), deploy["stack_name"], deploy["region"])
