"""The stack as each samconfig environment deploys it keeps the project's invariants.

tests/contract/test_broken_copies.py shows that each check below fails on a template that breaks it.
"""

from __future__ import annotations

from typing import Any

import pytest

from devkit.stackmodel import Stack
from queue_scaler.settings import ScalerSettings

from . import invariants as inv

CHECKS = [
    inv.redrive_violations,
    inv.encryption_violations,
    inv.visibility_violations,
    inv.alarm_action_violations,
    inv.trigger_rule_violations,
    inv.action_wildcard_violations,
    inv.group_write_violations,
    inv.lifecycle_violations,
    inv.launch_template_violations,
    inv.spot_violations,
    inv.config_violations,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removesuffix("_violations"))
def test_given_an_environment_when_instantiated_then_the_invariant_holds(deployed: Stack, check: Any) -> None:
    violations = check(deployed)
    assert violations == [], inv.pretty(violations)


def test_given_samconfig_then_every_environment_sets_exactly_the_template_parameters(
    templates: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    violations = inv.samconfig_violations(templates["template.yaml"], samconfig)
    assert violations == [], inv.pretty(violations)


def test_given_the_pool_template_then_every_drain_window_has_a_long_enough_terminate_hook(
    templates: dict[str, Any],
) -> None:
    assert inv.drain_window_violations(templates["templates/pool.yaml"]) == []


def test_given_an_environment_then_the_pools_follow_the_seed_design(deployed: Stack) -> None:
    pools = {p.name: p for p in inv.scaler_config(deployed).pools}
    assert list(pools) == ["messaging", "video", "ai"]
    assert pools["messaging"].min_size == 1
    assert pools["video"].min_size == pools["ai"].min_size == 0
    assert len(pools["messaging"].queues) == 1
    stack = deployed.pseudo["AWS::StackName"]
    for name in ("video", "ai"):
        queues = pools[name].queues
        # Highest priority first (seed design 001), with the default targets.
        assert [q.name for q in queues] == [
            f"{stack}-{name}-{plan}" for plan in ("enterprise", "studio", "pro", "starter", "free")
        ]
        assert [q.target_per_instance for q in queues] == [3, 5, 8, 10, 15]


def test_given_an_environment_then_the_scaler_function_is_wired_as_agreed(deployed: Stack) -> None:
    (function,) = [f for f in inv.of_type(deployed, "AWS::Lambda::Function") if f.logical_id == inv.SCALER]
    props = function.properties
    assert props["Runtime"] == "python3.12"
    assert props["Handler"] == "app.lambda_handler"
    assert props["Timeout"] == 70
    assert "ReservedConcurrentExecutions" not in props  # tests/contract/test_deploy_limits.py
    assert props["Architectures"] == ["arm64"]
    # X-Ray off unless TracingMode=Active: a trace of every scheduled minute (docs/cost.md).
    assert props["TracingConfig"] == {"Mode": "PassThrough"}
    (layer,) = inv.of_type(deployed, "AWS::Lambda::LayerVersion")
    assert layer.properties["CompatibleArchitectures"] == ["arm64"]
    schedules = [
        r.properties["ScheduleExpression"]
        for r in inv.of_type(deployed, "AWS::Events::Rule")
        if "ScheduleExpression" in r.properties and r.logical_id.startswith(inv.SCALER)
    ]
    assert schedules == ["rate(1 minute)"]


def test_given_an_environment_then_the_scaler_settings_load_from_the_template_environment(
    deployed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = inv.scaler_environment(deployed)
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "ENVIRONMENT"} <= set(variables)
    for name, value in variables.items():
        monkeypatch.setenv(name, str(value))
    settings = ScalerSettings()  # type: ignore[call-arg]  # read from the environment
    assert settings.pool_config_parameter == deployed.ref("PoolConfigParameter")
    assert settings.history_table == deployed.ref("HistoryTable")
    assert settings.environment == deployed.parameters["EnvironmentName"]
    assert (settings.tick_seconds, settings.safety_margin_seconds) == (10, 8)


def test_given_an_environment_then_the_history_table_is_on_demand_recoverable_and_encrypted(
    deployed: Stack,
) -> None:
    (table,) = [t for t in inv.of_type(deployed, "AWS::DynamoDB::Table") if t.logical_id == "HistoryTable"]
    props = table.properties
    assert props["KeySchema"] == [{"AttributeName": "pool", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pool", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
