"""EC2 Auto Scaling lifecycle actions: complete, heartbeat, which group an instance is in, who waits at a hook."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.lifecycle.domain.lifecycle import HookResult
from queue_scaler.lifecycle.ports import HookRef, WaitingInstance
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.adapters.aws_errors import translate

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient

#: The states of an instance held at a hook, waiting for CompleteLifecycleAction.
WAIT_STATES = frozenset({"Pending:Wait", "Terminating:Wait"})
#: DescribeAutoScalingInstances' largest page.
_PAGE = 50
#: Auto Scaling's answer (a ValidationError) for a token that is completed, expired or unknown.
NO_ACTIVE_ACTION = "No active Lifecycle Action found"


def _no_active_action(error: ClientError) -> bool:
    details = error.response.get("Error", {})
    return details.get("Code") == "ValidationError" and NO_ACTIVE_ACTION in str(details.get("Message", ""))


class AutoScalingLifecycleHooks:
    """Implements ports.LifecycleHooks over EC2 Auto Scaling.

    "No active Lifecycle Action found" means the action is over (another invocation completed it, or
    it timed out): that is the outcome a retry wants, so it is an answer, not an error.
    """

    def __init__(self, client: AutoScalingClient | None = None) -> None:
        self._client = client or clients.autoscaling()

    def complete(self, ref: HookRef, result: HookResult) -> bool:
        try:
            self._client.complete_lifecycle_action(**_find(ref), LifecycleActionResult=str(result))
        except ClientError as error:
            if _no_active_action(error):
                return False
            raise translate("CompleteLifecycleAction", error) from error
        except BotoCoreError as error:
            raise translate("CompleteLifecycleAction", error) from error
        return True

    def heartbeat(self, ref: HookRef) -> bool:
        try:
            self._client.record_lifecycle_action_heartbeat(**_find(ref))
        except ClientError as error:
            if _no_active_action(error):
                return False
            raise translate("RecordLifecycleActionHeartbeat", error) from error
        except BotoCoreError as error:
            raise translate("RecordLifecycleActionHeartbeat", error) from error
        return True

    def group_of(self, instance_id: str) -> str | None:
        try:
            found = self._client.describe_auto_scaling_instances(InstanceIds=[instance_id])
        except (ClientError, BotoCoreError) as error:
            raise translate("DescribeAutoScalingInstances", error) from error
        for instance in found.get("AutoScalingInstances", []):
            if instance["InstanceId"] == instance_id:
                return instance["AutoScalingGroupName"]
        return None

    def waiting(self, groups: frozenset[str]) -> list[WaitingInstance]:
        return [i for i in self._members(groups) if i.lifecycle_state in WAIT_STATES]

    def in_service(self, groups: frozenset[str]) -> list[str]:
        return [i.instance_id for i in self._members(groups, healthy_only=True) if i.lifecycle_state == "InService"]

    def mark_unhealthy(self, instance_id: str) -> None:
        try:
            self._client.set_instance_health(
                InstanceId=instance_id, HealthStatus="Unhealthy", ShouldRespectGracePeriod=True
            )
        except (ClientError, BotoCoreError) as error:
            raise translate("SetInstanceHealth", error) from error

    def _members(self, groups: frozenset[str], *, healthy_only: bool = False) -> list[WaitingInstance]:
        """Every instance of `groups` with its lifecycle state, in as few pages as the API allows."""
        found: list[WaitingInstance] = []
        token: str | None = None
        while True:
            try:
                page = self._client.describe_auto_scaling_instances(
                    MaxRecords=_PAGE, **({"NextToken": token} if token else {})
                )
            except (ClientError, BotoCoreError) as error:
                raise translate("DescribeAutoScalingInstances", error) from error
            found += [
                WaitingInstance(i["InstanceId"], i["AutoScalingGroupName"], i["LifecycleState"])
                for i in page.get("AutoScalingInstances", [])
                if i["AutoScalingGroupName"] in groups
                and (not healthy_only or i.get("HealthStatus", "").upper() == "HEALTHY")
            ]
            token = page.get("NextToken")
            if not token:
                return found

    def hook_name(self, group: str, transition: str) -> str | None:
        try:
            hooks = self._client.describe_lifecycle_hooks(AutoScalingGroupName=group).get("LifecycleHooks", [])
        except (ClientError, BotoCoreError) as error:
            raise translate("DescribeLifecycleHooks", error) from error
        return next((h["LifecycleHookName"] for h in hooks if h.get("LifecycleTransition") == transition), None)


def _find(ref: HookRef) -> dict[str, str]:
    """The parameters that name one lifecycle action: by token when known, else by instance id."""
    found = {"AutoScalingGroupName": ref.group, "LifecycleHookName": ref.hook, "InstanceId": ref.instance_id}
    return found | ({"LifecycleActionToken": ref.token} if ref.token else {})
