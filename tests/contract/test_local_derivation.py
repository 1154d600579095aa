"""The local cloud and the moto tests build what the transformed template declares, not a copy of it.

devkit reads template.yaml (the local cloud must start without the SAM translator of `make
transform`); these tests hold its reading to the transformed stack CloudFormation would create.
"""

from __future__ import annotations

from typing import Any

from devkit import template
from devkit.localcloud.stack import LocalSettings, pool_specs
from devkit.stackmodel import root_stack
from queue_scaler.scaling.config import PoolConfig, policy

from . import invariants as inv

#: The parameters without a default; their values do not shape pools, queues or tables.
REQUIRED = {
    "EnvironmentName": "dev",
    "AlarmEmail": "oncall@example.com",
    "SubnetIds": "subnet-0123456789abcdef0",
    "WorkerSecurityGroupId": "sg-0123456789abcdef0",
    "WorkerEnvParameterPath": "/queue-scaler/local/workers",
    "MessagingImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/w:1",
    "VideoImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/w:1",
    "AiImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/w:1",
}


def test_given_the_transformed_template_then_devkit_creates_exactly_its_tables(templates: dict[str, Any]) -> None:
    transformed = templates["template.yaml"]["Resources"]
    expected = {
        logical_id: {
            "KeySchema": r["Properties"]["KeySchema"],
            "AttributeDefinitions": r["Properties"]["AttributeDefinitions"],
            "BillingMode": r["Properties"]["BillingMode"],
        }
        for logical_id, r in transformed.items()
        if r["Type"] == "AWS::DynamoDB::Table"
    }
    assert template.tables(template.load()) == expected


def test_given_default_parameters_then_the_local_pools_are_the_stacks_pools(templates: dict[str, Any]) -> None:
    settings = LocalSettings()
    stack = root_stack(templates, REQUIRED, settings.stack, settings.region)
    deployed = {p.name: p for p in inv.scaler_config(stack).pools}
    local = {spec["name"]: spec for spec in pool_specs(settings)}
    assert list(local) == list(deployed)
    for name, pool in deployed.items():
        spec = local[name]
        assert spec["auto_scaling_group"] == pool.group_name
        assert spec["min_size"] == pool.min_size
        assert [(q["name"], q["target_per_instance"]) for q in spec["queues"]] == [
            (q.name, pool.target_for(q)) for q in pool.queues
        ]


def test_given_default_parameters_then_the_local_cloud_runs_the_deployed_configuration_document(
    templates: dict[str, Any],
) -> None:
    # The document the stack writes to /queue-scaler/<stack>/pools, instantiated here on its own; the
    # local cloud's pools are it, but for a laptop's sizes and slots and its compressed time.
    settings = LocalSettings()
    stack = root_stack(templates, REQUIRED, settings.stack, settings.region)
    deployed = inv.scaler_config(stack).pools
    local = [PoolConfig.model_validate(spec) for spec in pool_specs(settings)]
    assert [p.name for p in local] == [p.name for p in deployed]
    for ours, theirs in zip(local, deployed, strict=True):
        assert (ours.max_size, ours.slots_per_instance) == (settings.max_sizes[ours.name], settings.worker_slots)
        assert ours.seconds_per_message is not None and theirs.seconds_per_message is not None
        assert ours.seconds_per_message * settings.time_compression == theirs.seconds_per_message
        assert [(q.name, q.target_per_instance) for q in ours.queues] == [
            (q.name, q.target_per_instance) for q in theirs.queues
        ]
        # The policy: the deployed one with every window compressed, nothing else changed.
        local_policy, deployed_policy = policy(ours), policy(theirs)
        behavior = deployed_policy["behavior"]
        window = behavior["scale_down"]["stabilization_window_seconds"] / settings.time_compression
        assert local_policy["behavior"] == behavior | {
            "scale_down": behavior["scale_down"] | {"stabilization_window_seconds": window}
        }
        rate = deployed_policy["signals"]["arrival_rate"]
        assert local_policy["signals"]["arrival_rate"] == rate | {
            key: seconds / settings.time_compression
            for key, seconds in rate.items()
            if key.endswith("_seconds") and seconds is not None
        }
        same = set(deployed_policy) - {"behavior", "signals"}
        assert {k: local_policy[k] for k in same} == {k: deployed_policy[k] for k in same}
        assert set(local_policy["signals"]) == set(deployed_policy["signals"])
