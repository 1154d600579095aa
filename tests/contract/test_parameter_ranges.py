"""Every value the template accepts is one the functions accept.

For each root parameter with a range (MinValue / MaxValue) or AllowedValues, the stack is
instantiated at each end of the range (each allowed value), the other parameters as the dev
environment sets them; then every function's environment must validate with the settings model the
function reads it with (and the refund and lifecycle policies built from them), and the pool
configuration the stack writes must validate as the scaler reads it. A parameter without a MaxValue
has one end. The cases are derived from the template, so a parameter added later is covered too.
"""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from devkit.stackmodel import ROOT_TEMPLATE, Stack, load_templates, root_stack
from queue_scaler.settings import DlqRefundSettings, LifecycleSettings, MetricsSettings, ScalerSettings

from . import invariants as inv
from .conftest import SAMCONFIG

SETTINGS: dict[str, type[BaseSettings]] = {
    "ScalerFunction": ScalerSettings,
    "LifecycleFunction": LifecycleSettings,
    "MetricsFunction": MetricsSettings,
    "DlqRefundFunction": DlqRefundSettings,
}


def ranged_parameters(template: dict[str, Any]) -> dict[str, list[str]]:
    """Each parameter with a range or allowed values, and the values at its ends."""
    ends: dict[str, list[str]] = {}
    for name, declaration in template["Parameters"].items():
        if "AllowedValues" in declaration:
            ends[name] = [str(v) for v in declaration["AllowedValues"]]
        elif "MinValue" in declaration or "MaxValue" in declaration:
            ends[name] = [str(declaration[k]) for k in ("MinValue", "MaxValue") if k in declaration]
    return ends


def _cases() -> list[Any]:
    template = load_templates()[ROOT_TEMPLATE]
    return [
        pytest.param(name, value, id=f"{name}={value}")
        for name, values in ranged_parameters(template).items()
        for value in values
    ]


def _dev_stack(templates: dict[str, Any], **overrides: str) -> Stack:
    deploy = inv.environments(inv.load_samconfig(SAMCONFIG))["dev"]
    return root_stack(templates, inv.parameter_overrides(deploy) | overrides, deploy["stack_name"], deploy["region"])


def settings_errors(stack: Stack) -> list[str]:
    """What a function would refuse at cold start, for each function of the stack."""
    errors = []
    functions = {f.logical_id: f for f in inv.of_type(stack, "AWS::Lambda::Function")}
    assert set(functions) == set(SETTINGS), "a new function needs its settings model here"
    for name, model in SETTINGS.items():
        variables = functions[name].properties["Environment"]["Variables"]
        try:
            # Read from the environment, as at cold start (JSON-valued settings are parsed only there).
            with mock.patch.dict(os.environ, {key: str(value) for key, value in variables.items()}, clear=True):
                settings: Any = model()
            if hasattr(settings, "policy"):
                settings.policy()  # the lifecycle and refund policies validate at cold start too
        except (ValidationError, ValueError) as error:
            errors.append(f"{name}: {error}")
    return errors + inv.config_violations(stack)


@pytest.mark.parametrize(("parameter", "value"), _cases())
def test_given_a_parameter_at_an_end_of_its_range_then_every_function_accepts_its_settings(
    templates: dict[str, Any], parameter: str, value: str
) -> None:
    assert settings_errors(_dev_stack(templates, **{parameter: value})) == []


def test_given_the_template_then_every_ranged_parameter_is_covered(templates: dict[str, Any]) -> None:
    covered = {case.values[0] for case in _cases()}
    declared = templates[ROOT_TEMPLATE]["Parameters"]
    ranged = {n for n, d in declared.items() if {"AllowedValues", "MinValue", "MaxValue"} & set(d)}
    assert ranged and covered == ranged


def test_given_a_range_the_functions_refuse_then_the_check_fails(templates: dict[str, Any]) -> None:
    # The check can fail: a grace period at or below the reconciler's minute is refused at cold start.
    stack = _dev_stack(templates, HealthCheckGracePeriodSeconds="60")
    assert any("launch_hook_timeout_seconds must exceed" in e for e in settings_errors(stack))
