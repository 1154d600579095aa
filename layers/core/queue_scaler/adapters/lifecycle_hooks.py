"""EC2 Auto Scaling lifecycle actions: complete, heartbeat, and which group an instance is in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.adapters import clients
from queue_scaler.adapters.aws_errors import translate
from queue_scaler.domain.lifecycle import HookResult
from queue_scaler.ports import HookRef

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient

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
            self._client.complete_lifecycle_action(
                AutoScalingGroupName=ref.group,
                LifecycleHookName=ref.hook,
                LifecycleActionToken=ref.token,
                InstanceId=ref.instance_id,
                LifecycleActionResult=str(result),
            )
        except ClientError as error:
            if _no_active_action(error):
                return False
            raise translate("CompleteLifecycleAction", error) from error
        except BotoCoreError as error:
            raise translate("CompleteLifecycleAction", error) from error
        return True

    def heartbeat(self, ref: HookRef) -> bool:
        try:
            self._client.record_lifecycle_action_heartbeat(
                AutoScalingGroupName=ref.group,
                LifecycleHookName=ref.hook,
                LifecycleActionToken=ref.token,
                InstanceId=ref.instance_id,
            )
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
