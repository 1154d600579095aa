"""EC2 Auto Scaling: describe all pools' groups in as few calls as the API allows (their raw state:
what it means for scaling is the domain's, domain/fleet.py), set desired capacity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.adapters import clients
from queue_scaler.adapters.aws_errors import translate
from queue_scaler.domain.fleet import GroupState, InstanceState

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient

#: DescribeAutoScalingGroups accepts at most 50 names per call and returns at most 100 records a page.
NAMES_PER_CALL = 50
RECORDS_PER_PAGE = 100


class AutoScalingFleet:
    """Implements ports.Fleet over EC2 Auto Scaling."""

    def __init__(self, client: AutoScalingClient | None = None) -> None:
        self._client = client or clients.autoscaling()

    def describe(self, groups: Sequence[str]) -> Mapping[str, GroupState]:
        names = list(dict.fromkeys(groups))
        found: dict[str, GroupState] = {}
        for start in range(0, len(names), NAMES_PER_CALL):
            chunk = names[start : start + NAMES_PER_CALL]
            token: str | None = None
            while True:
                kwargs: dict[str, object] = {"AutoScalingGroupNames": chunk, "MaxRecords": RECORDS_PER_PAGE}
                if token:
                    kwargs["NextToken"] = token
                try:
                    page = self._client.describe_auto_scaling_groups(**kwargs)  # type: ignore[arg-type]
                except (ClientError, BotoCoreError) as error:
                    raise translate("DescribeAutoScalingGroups", error) from error
                for group in page["AutoScalingGroups"]:
                    found[group["AutoScalingGroupName"]] = GroupState(
                        desired=group["DesiredCapacity"],
                        min_size=group["MinSize"],
                        max_size=group["MaxSize"],
                        instances=[
                            InstanceState(
                                instance_id=i["InstanceId"],
                                lifecycle_state=i["LifecycleState"],
                                healthy=i.get("HealthStatus", "Healthy").upper() == "HEALTHY",
                            )
                            for i in group.get("Instances", [])
                        ],
                        capacity_rebalance=bool(group.get("CapacityRebalance", False)),
                    )
                token = page.get("NextToken")
                if not token:
                    break
        return found

    def set_desired(self, group: str, desired: int) -> None:
        try:
            # HonorCooldown=False: the decision's stabilization and rate policies already pace changes,
            # and a cooldown would silently drop a scale-out a burst needs now.
            self._client.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=desired, HonorCooldown=False)
        except (ClientError, BotoCoreError) as error:
            raise translate("SetDesiredCapacity", error) from error
