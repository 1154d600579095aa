"""The local cloud and the moto tests build what the transformed template declares, not a copy of it.

devkit reads template.yaml (the local cloud must start without the SAM translator of `make
transform`); these tests hold its reading to the transformed stack CloudFormation would create.
"""

from __future__ import annotations

from typing import Any

from devkit import template
from devkit.localcloud.stack import LocalSettings, pool_specs
from devkit.stackmodel import root_stack

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
