"""The scaler's observation of a group with a warm pool, against moto, through the real boto3 adapter.

moto 5.2.5 stores a warm pool (PutWarmPool, and WarmPoolConfiguration in DescribeAutoScalingGroups)
but launches nothing into it: its DescribeWarmPool always answers no instances. As moto_lifecycle
does for lifecycle actions, `warm_instances` answers DescribeWarmPool in moto's response class with the
instances a test puts in the pool, in AWS's shape, so that the adapter's call and parsing stay real.
"""

from __future__ import annotations

import boto3
import pytest
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from queue_scaler.scaling.adapters.autoscaling import AutoScalingFleet
from queue_scaler.scaling.domain.decision import decide_pool
from queue_scaler.scaling.domain.fleet import fleet_observation
from queue_scaler.scaling.domain.models import History, Observation, QueueObservation
from queue_scaler.scaling.domain.pool import PoolConfig
from tests.functional.moto_stack import REGION, create_group

WARM = "queue-scaler-dev-video"
COLD = "queue-scaler-dev-ai"


def warm_instances(monkeypatch: pytest.MonkeyPatch, states: dict[str, str]) -> list[str]:
    """DescribeWarmPool answers `states` (instance id -> LifecycleState) for every group with a warm pool;
    returns the groups it was asked about, in order."""
    asked: list[str] = []
    describe = AutoScalingResponse.describe_warm_pool

    def describe_warm_pool(self: AutoScalingResponse) -> ActionResult:
        asked.append(self._get_param("AutoScalingGroupName"))
        answer = describe(self)
        instances = [
            {
                "InstanceId": instance_id,
                "InstanceType": "c7g.large",
                "AvailabilityZone": f"{REGION}a",
                "LifecycleState": state,
                "HealthStatus": "Healthy",
                "LaunchTemplate": {"LaunchTemplateId": "lt-0abc", "LaunchTemplateName": "workers", "Version": "1"},
                "ProtectedFromScaleIn": False,
            }
            for instance_id, state in states.items()
        ]
        return ActionResult(answer.result | {"Instances": instances})  # type: ignore[attr-defined]

    monkeypatch.setattr(AutoScalingResponse, "describe_warm_pool", describe_warm_pool)
    return asked


@pytest.fixture
def groups(aws: None) -> None:
    create_group(WARM, desired=2)
    create_group(COLD, desired=2)
    boto3.client("autoscaling", region_name=REGION).put_warm_pool(
        AutoScalingGroupName=WARM, PoolState="Stopped", MinSize=1, InstanceReusePolicy={"ReuseOnScaleIn": True}
    )


def test_given_a_group_with_a_warm_pool_when_observed_then_warmed_instances_are_counted_apart(
    groups: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = warm_instances(
        monkeypatch,
        {
            "i-0000000000000000a": "Warmed:Stopped",
            "i-0000000000000000b": "Warmed:Stopped",
            "i-0000000000000000c": "Warmed:Stopped",
            "i-0000000000000000d": "Warmed:Pending:Wait",
        },
    )
    found = AutoScalingFleet(boto3.client("autoscaling", region_name=REGION), warm_pools=True).describe([WARM, COLD])

    assert asked == [WARM]  # one call, and only for the group that has a warm pool
    warm = fleet_observation(found[WARM], frozenset())
    assert (warm.warm_pool, warm.warmed, warm.warming) == ("Stopped", 3, 1)
    assert (warm.in_service, warm.pending, warm.desired) == (2, 0, 2)  # the pool is outside desired capacity
    cold = fleet_observation(found[COLD], frozenset())
    assert (cold.warm_pool, cold.warmed, cold.warming) == (None, 0, 0)


def test_given_the_metrics_functions_fleet_when_observed_then_no_warm_pool_is_read(
    groups: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = warm_instances(monkeypatch, {"i-0000000000000000a": "Warmed:Stopped"})
    found = AutoScalingFleet(boto3.client("autoscaling", region_name=REGION)).describe([WARM])
    assert asked == [] and found[WARM].warm_pool is None  # its role has no autoscaling:DescribeWarmPool


def test_given_warmed_instances_when_the_pool_is_decided_then_the_explanation_names_them(
    groups: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm_instances(monkeypatch, {f"i-000000000000000{n}": "Warmed:Stopped" for n in range(3)})
    found = AutoScalingFleet(boto3.client("autoscaling", region_name=REGION), warm_pools=True).describe([WARM, COLD])
    pool = PoolConfig.model_validate(
        {"name": "video", "max_size": 20, "queues": [{"name": "jobs", "url": "u", "target_per_instance": 10}]}
    )

    def explained(group: str) -> list[str]:
        observation = Observation(
            queues=[QueueObservation(name="jobs", visible=40, in_flight=0)],
            fleet=fleet_observation(found[group], frozenset()),
        )
        return decide_pool(1_000.0, pool, observation, History()).explanation

    assert "warm pool: 3 stopped (outside desired; a scale-out starts them first)" in explained(WARM)
    assert not any(line.startswith("warm pool") for line in explained(COLD))
