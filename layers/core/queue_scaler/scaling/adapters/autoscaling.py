"""EC2 Auto Scaling: describe all pools' groups in as few calls as the API allows (their raw state:
what it means for scaling is the domain's, scaling/domain/fleet.py), with the warm pool of each group that
has one, set desired capacity, and read or start a group's instance refresh."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.scaling.domain.fleet import GroupState, InstanceState, WarmPool, refresh_state
from queue_scaler.scaling.domain.models import RefreshState
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.adapters.aws_errors import translate

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient

#: DescribeAutoScalingGroups accepts at most 50 names per call and returns at most 100 records a page.
NAMES_PER_CALL = 50
RECORDS_PER_PAGE = 100
#: How an image or AMI change rolls out (README "Image and AMI updates"):
REFRESH_PREFERENCES: dict[str, Any] = {
    # Only the instances of another launch template version are replaced.
    "SkipMatching": True,
    # Launch before terminate: the group never has less serving capacity than its desired capacity,
    # and a replacement passes the launch gate (its worker healthy) before an old instance leaves.
    "MinHealthyPercentage": 100,
    "MaxHealthyPercentage": 200,
    # A busy worker protects its instance from scale-in; "Wait" would stall the refresh for an hour
    # and fail it. Replaced, it leaves through the terminate hook, whose drain lets its jobs finish.
    "ScaleInProtectedInstances": "Refresh",
    "StandbyInstances": "Terminate",
    # The launch hook already holds a replacement in Pending:Wait until its worker is healthy: once
    # InService it serves, so no further warmup (AWS's default, the health check grace period, would
    # add a boot allowance per batch).
    "InstanceWarmup": 0,
}


class AutoScalingFleet:
    """Implements ports.Fleet over EC2 Auto Scaling.

    With `warm_pools`, a group whose description carries a WarmPoolConfiguration is described with its
    warm pool too (one DescribeWarmPool call a page, only for such groups): the scaler explains it;
    MetricsFunction, which counts serving instances only, leaves it out and needs no permission for it.
    """

    def __init__(self, client: AutoScalingClient | None = None, *, warm_pools: bool = False) -> None:
        self._client = client or clients.autoscaling()
        self._warm_pools = warm_pools

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
                    mixed = group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {})
                    spec = group.get("LaunchTemplate") or mixed.get("LaunchTemplateSpecification")
                    found[group["AutoScalingGroupName"]] = GroupState(
                        desired=group["DesiredCapacity"],
                        min_size=group["MinSize"],
                        max_size=group["MaxSize"],
                        instances=[_instance(i) for i in group.get("Instances", [])],
                        capacity_rebalance=bool(group.get("CapacityRebalance", False)),
                        launch_template=_template(spec),
                        warm_pool=self._warm_pool(group),
                    )
                token = page.get("NextToken")
                if not token:
                    break
        return found

    def _warm_pool(self, group: Mapping[str, Any]) -> WarmPool | None:
        configuration = group.get("WarmPoolConfiguration")
        if not self._warm_pools or not configuration:
            return None
        pages = self._client.get_paginator("describe_warm_pool").paginate(
            AutoScalingGroupName=group["AutoScalingGroupName"], PaginationConfig={"PageSize": RECORDS_PER_PAGE}
        )
        try:
            instances = [_instance(i) for page in pages for i in page.get("Instances", [])]
        except (ClientError, BotoCoreError) as error:
            raise translate("DescribeWarmPool", error) from error
        # PoolState is optional in the API; AWS's default is Stopped.
        return WarmPool(state=configuration.get("PoolState") or "Stopped", instances=instances)

    def set_desired(self, group: str, desired: int) -> None:
        try:
            # HonorCooldown=False: the decision's stabilization and rate policies already pace changes,
            # and a cooldown would silently drop a scale-out a burst needs now.
            self._client.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=desired, HonorCooldown=False)
        except (ClientError, BotoCoreError) as error:
            raise translate("SetDesiredCapacity", error) from error

    def refresh_state(self, group: str, now: float) -> RefreshState:
        try:
            # Newest first: one record says whether the latest refresh is over, and how it ended.
            page = self._client.describe_instance_refreshes(AutoScalingGroupName=group, MaxRecords=1)
        except (ClientError, BotoCoreError) as error:
            raise translate("DescribeInstanceRefreshes", error, reads_only=True) from error
        latest = next(iter(page.get("InstanceRefreshes", [])), None)
        if latest is None:
            return "none"
        ended = latest.get("EndTime")
        return refresh_state(latest.get("Status"), ended.timestamp() if ended is not None else None, now)

    def start_refresh(self, group: str) -> bool:
        try:
            self._client.start_instance_refresh(
                AutoScalingGroupName=group,
                Strategy="Rolling",
                Preferences=REFRESH_PREFERENCES,  # type: ignore[arg-type]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InstanceRefreshInProgress":
                return False
            raise translate("StartInstanceRefresh", error) from error
        except BotoCoreError as error:
            raise translate("StartInstanceRefresh", error) from error
        return True


def _instance(described: Mapping[str, Any]) -> InstanceState:
    """An instance as DescribeAutoScalingGroups and DescribeWarmPool both describe it."""
    return InstanceState(
        instance_id=described["InstanceId"],
        lifecycle_state=described["LifecycleState"],
        healthy=described.get("HealthStatus", "Healthy").upper() == "HEALTHY",
        launch_template=_template(described.get("LaunchTemplate")),
    )


def _template(spec: Mapping[str, Any] | None) -> str | None:
    """'lt-id:version' for a launch template specification that names a version number, else None:
    $Latest and $Default name no version an instance's own can be compared with."""
    if not spec:
        return None
    version = str(spec.get("Version") or "")
    template = spec.get("LaunchTemplateId") or spec.get("LaunchTemplateName")
    return f"{template}:{version}" if template and version.isdigit() else None
