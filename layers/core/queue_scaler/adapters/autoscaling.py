"""EC2 Auto Scaling: describe all pools' groups in as few calls as the API allows, set desired capacity."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.adapters import clients
from queue_scaler.adapters.aws_errors import translate
from queue_scaler.domain.models import FleetObservation
from queue_scaler.ports import LeavingInstances

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient

#: DescribeAutoScalingGroups accepts at most 50 names per call and returns at most 100 records a page.
NAMES_PER_CALL = 50
RECORDS_PER_PAGE = 100


def _is_pending(state: str) -> bool:
    # Pending, Pending:Wait (launch hook), Pending:Proceed: capacity that is coming but not serving.
    return state.startswith("Pending")


class AutoScalingFleet:
    """Implements ports.Fleet over EC2 Auto Scaling."""

    def __init__(self, client: AutoScalingClient | None = None, leaving: LeavingInstances | None = None) -> None:
        self._client = client or clients.autoscaling()
        # Instances the lifecycle function recorded as on their way out (Spot interruption, rebalance).
        self._leaving = leaving

    def describe(self, groups: Sequence[str]) -> Mapping[str, FleetObservation]:
        names = list(dict.fromkeys(groups))
        found: dict[str, FleetObservation] = {}
        leaving = self._leaving.leaving(time.time()) if self._leaving is not None else frozenset()
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
                    instances = group.get("Instances", [])
                    # Only instances still counted in desired: one already terminating is replaced anyway.
                    going = {
                        i["InstanceId"]
                        for i in instances
                        if i["InstanceId"] in leaving and not i["LifecycleState"].startswith("Terminat")
                    }
                    states = [i["LifecycleState"] for i in instances if i["InstanceId"] not in going]
                    found[group["AutoScalingGroupName"]] = FleetObservation(
                        desired=group["DesiredCapacity"],
                        in_service=sum(1 for s in states if s == "InService"),
                        pending=sum(1 for s in states if _is_pending(s)),
                        leaving=len(going),
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
