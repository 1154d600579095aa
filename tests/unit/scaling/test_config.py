"""Pool configuration: defaults, and errors that name the bad field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from queue_scaler.scaling.config import ScalerConfig, json_schema
from queue_scaler.scaling.domain.pool import PoolConfig


def pool(**more: Any) -> dict[str, Any]:
    return {
        "name": "video",
        "max_size": 20,
        "queues": [{"name": "video-free", "target_per_instance": 15}],
    } | more


def test_given_an_omitted_behavior_when_validating_then_the_documented_defaults_apply() -> None:
    behavior = PoolConfig.model_validate(pool()).behavior
    assert behavior.scale_up.stabilization_window_seconds == 0
    assert behavior.scale_up.policies == []
    assert behavior.scale_down.stabilization_window_seconds == 300
    assert [(p.type, p.value, p.period_seconds) for p in behavior.scale_down.policies] == [("Percent", 100, 15)]


def test_given_a_partial_behavior_when_validating_then_the_rest_keeps_its_defaults() -> None:
    behavior = PoolConfig.model_validate(pool(behavior={"scale_down": {"stabilization_window_seconds": 60}})).behavior
    assert behavior.scale_down.stabilization_window_seconds == 60
    assert behavior.scale_down.policies[0].type == "Percent"
    assert behavior.scale_up.policies == []


@pytest.mark.parametrize(
    ("name", "config", "field"),
    [
        ("negative max_size", pool(max_size=-1), "max_size"),
        ("max below min", pool(min_size=5, max_size=2), "max_size (2) is below min_size (5)"),
        ("no queues", pool(queues=[]), "queues"),
        (
            "queue with both targets",
            pool(queues=[{"name": "q", "target_per_instance": 1, "max_wait_seconds": 5}]),
            "queues.0",
        ),
        ("queue with no target", pool(queues=[{"name": "q"}]), "queues.0"),
        (
            "max_wait without seconds_per_message",
            pool(queues=[{"name": "q", "max_wait_seconds": 60}]),
            "queues.0.max_wait_seconds needs the pool's seconds_per_message",
        ),
        (
            "zero target",
            pool(queues=[{"name": "q", "target_per_instance": 0}]),
            "queues.0.target_per_instance",
        ),
        (
            "duplicate queue names",
            pool(queues=[{"name": "q", "target_per_instance": 1}, {"name": "q", "target_per_instance": 2}]),
            "duplicate queue names ['q']",
        ),
        ("misspelled field", pool(tolerence=0.2), "tolerence"),
        ("tolerance of 1", pool(tolerance=1), "tolerance"),
        (
            "unknown policy type",
            pool(behavior={"scale_up": {"policies": [{"type": "Nodes", "value": 1, "period_seconds": 15}]}}),
            "behavior.scale_up.policies.0.type",
        ),
        (
            "bad select policy",
            pool(behavior={"scale_down": {"select_policy": "Most"}}),
            "behavior.scale_down.select_policy",
        ),
        (
            "infinite target",
            pool(queues=[{"name": "q", "target_per_instance": float("inf")}]),
            "queues.0.target_per_instance",
        ),
    ],
)
def test_given_an_invalid_pool_when_validating_then_the_error_names_the_field(
    name: str, config: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        PoolConfig.model_validate(config)
    problems = raised.value.errors()
    rendered = [".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in problems]
    assert any(field in line for line in rendered), rendered


def test_given_two_pools_on_one_group_when_validating_then_it_is_rejected() -> None:
    with pytest.raises(ValidationError, match="claimed by more than one pool"):
        ScalerConfig.model_validate({"pools": [pool(), pool(name="other", auto_scaling_group="video")]})


def test_given_the_schema_when_exported_then_it_describes_pools_and_behavior() -> None:
    schema = json_schema()
    assert schema["required"] == ["pools"]
    assert "PoolConfig" in schema["$defs"] and "RatePolicy" in schema["$defs"]
