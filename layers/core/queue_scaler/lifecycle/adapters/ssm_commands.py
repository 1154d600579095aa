"""SSM Run Command: shell scripts on the workers' instances (AWS-RunShellScript), and their results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.lifecycle.domain.commands import CommandRequest, Purpose, parse_comment
from queue_scaler.lifecycle.domain.lifecycle import CommandObservation
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.adapters.aws_errors import translate

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

DOCUMENT = "AWS-RunShellScript"
#: How long SSM may take to deliver a command to the agent (its minimum is 30 s). An instance whose
#: agent does not answer in a minute will not drain in time either.
DELIVERY_TIMEOUT_SECONDS = 60
#: SendCommand takes at most 50 instance ids a call.
INSTANCES_PER_COMMAND = 50


class SsmRemoteCommands:
    """Implements ports.RemoteCommands over SSM Run Command."""

    def __init__(self, client: SSMClient | None = None) -> None:
        self._client = client or clients.ssm()

    def run(self, instance_id: str, command: CommandRequest) -> str:
        return self._send([instance_id], command)

    def sweep(self, instance_ids: Sequence[str], command: CommandRequest) -> list[str]:
        ids = list(instance_ids)
        return [
            self._send(ids[i : i + INSTANCES_PER_COMMAND], command) for i in range(0, len(ids), INSTANCES_PER_COMMAND)
        ]

    def _send(self, instance_ids: list[str], command: CommandRequest) -> str:
        try:
            sent = self._client.send_command(
                InstanceIds=instance_ids,
                DocumentName=DOCUMENT,
                Comment=command.comment,
                TimeoutSeconds=DELIVERY_TIMEOUT_SECONDS,
                Parameters={
                    "commands": command.script,
                    "executionTimeout": [str(command.execution_timeout_seconds)],
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise translate("SendCommand", error) from error
        return sent["Command"]["CommandId"]

    def observe(self, command_id: str, instance_id: str) -> CommandObservation:
        try:
            invocation = self._client.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        except ClientError as error:
            # SSM knows a command's invocations only a moment after SendCommand returns.
            if error.response.get("Error", {}).get("Code") == "InvocationDoesNotExist":
                return CommandObservation(status="Pending")
            raise translate("GetCommandInvocation", error) from error
        except BotoCoreError as error:
            raise translate("GetCommandInvocation", error) from error
        output = invocation.get("StandardOutputContent", "")
        errors = invocation.get("StandardErrorContent", "")
        return CommandObservation(
            status=invocation.get("Status", "Pending"),
            output=output + (("\n" if output else "") + errors if errors else ""),
            comment=invocation.get("Comment", ""),
        )

    def find(self, instance_id: str, purpose: Purpose, since: float) -> str | None:
        newest: tuple[float, str] | None = None
        try:
            # A worker's instance receives a handful of commands in its life (health checks, one
            # drain): a page or two, whose order SSM does not promise.
            for page in self._client.get_paginator("list_commands").paginate(InstanceId=instance_id):
                for command in page.get("Commands", []):
                    if instance_id not in command.get("InstanceIds", []):
                        continue  # ours always name their instances; never adopt another instance's drain
                    try:
                        if parse_comment(command.get("Comment", "")).purpose is not purpose:
                            continue
                    except ValueError:
                        continue  # another tool's command
                    sent = (command["RequestedDateTime"].timestamp(), command["CommandId"])
                    if sent[0] < since:
                        continue  # an earlier trip's (the instance went back to the warm pool since)
                    newest = max(newest, sent) if newest is not None else sent
        except (ClientError, BotoCoreError) as error:
            raise translate("ListCommands", error) from error
        return newest[1] if newest is not None else None
