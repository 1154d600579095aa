"""SSM's limits that moto does not enforce, enforced by the emulated agents (tests/functional/moto_lifecycle.py
and the local cloud's devkit/localcloud/emulation.py): SendCommand's Comment of at most 100
characters, and the first 24,000 characters of stdout in GetCommandInvocation."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from queue_scaler.lifecycle.adapters.ssm_commands import SsmRemoteCommands
from queue_scaler.lifecycle.domain.commands import MAX_COMMAND_SECONDS, drain_command, health_command
from queue_scaler.lifecycle.domain.lifecycle import OUTPUT_KEPT_CHARS, CommandObservation
from tests.functional.moto_lifecycle import install
from tests.functional.moto_stack import REGION

pytestmark = pytest.mark.usefixtures("aws")

LONGEST = "w" * 73


def send(comment: str) -> str:
    client = boto3.client("ssm", region_name=REGION)
    sent = client.send_command(
        InstanceIds=["i-1"], DocumentName="AWS-RunShellScript", Comment=comment, Parameters={"commands": ["true"]}
    )
    return str(sent["Command"]["CommandId"])


def test_given_a_comment_over_100_characters_when_sent_then_ssm_refuses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch)
    with pytest.raises(ClientError) as refused:
        send(f"queue-scaler health {LONGEST}w {MAX_COMMAND_SECONDS}")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 100" in refused.value.response["Error"]["Message"]


def test_given_the_longest_container_name_when_its_commands_are_sent_then_ssm_takes_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, agent = install(monkeypatch)
    commands = SsmRemoteCommands()
    commands.run("i-1", health_command(LONGEST, MAX_COMMAND_SECONDS))  # a comment of exactly 100
    commands.run("i-1", drain_command(LONGEST, MAX_COMMAND_SECONDS))
    assert [c.purpose for c in agent.sent] == ["health", "drain"]


def test_given_a_command_printing_30000_characters_when_observed_then_ssm_gives_the_first_24000(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, agent = install(monkeypatch)
    commands = SsmRemoteCommands()
    output = "exit=137\n" + "x" * 30_000
    drain = drain_command("queue-worker", 60)
    command_id = commands.run("i-1", drain)
    agent.sent[0].finish("Failed", output)
    seen = commands.observe(command_id, "i-1")
    assert seen == CommandObservation(status="Failed", output=output[:24_000], comment=drain.comment)
    assert len(seen.output) > OUTPUT_KEPT_CHARS
