"""`--local`: find the running local cloud and point this process's AWS clients at it.

The commands that talk to AWS (`explain`, `invoke`) take `--local` instead of an endpoint, a region
and credentials: the local cloud's endpoint, its region and its test credentials come from the
state file its daemon wrote (`local up`'s, or `make demo`'s while the demo runs). The sample events
and examples name the `dev` stack; `localize` maps those names to the local cloud's.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devkit.localcloud.control import TEST_CREDENTIALS, fetch_status, find_running
from devkit.localcloud.stack import LocalSettings

#: The stack the sample events and examples/ name (samconfig's dev environment).
SAMPLE_STACK = "queue-scaler-dev"


class LocalCloudNotRunning(Exception):
    """No local cloud runs where `--local` looks."""


@dataclass(frozen=True)
class LocalCloudTarget:
    """Where the running local cloud answers, and as which stack."""

    state_dir: Path
    endpoint_url: str
    region: str
    stack: str
    status_url: str
    #: The producer role's credentials (ProducerPolicy only), as the daemon wrote them.
    producer: tuple[tuple[str, str], ...] = ()

    def status(self) -> dict[str, Any]:
        """What `local status --json` prints."""
        return fetch_status({"status_url": self.status_url})

    def environment(self) -> dict[str, str]:
        """The AWS variables a process (or a handler in it) needs to reach only the local cloud."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **TEST_CREDENTIALS,
        }

    def apply(self) -> None:
        """Point this process's AWS clients at the local cloud (a profile would bring real credentials)."""
        os.environ.update(self.environment())
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)

    def apply_as_producer(self) -> None:
        """`apply`, signing as the producer role (what a product submitting jobs holds on AWS)."""
        if not self.producer:
            raise LocalCloudNotRunning(
                f"the local cloud in {self.state_dir} gives no producer credentials: "
                "restart it (`queue-scaler local down`, then `local up`)"
            )
        self.apply()
        os.environ.update(dict(self.producer))


def find_local_cloud(state_dir: Path | None = None) -> LocalCloudTarget:
    """The running local cloud (in `state_dir`, else `local up`'s or the demo's); raises
    LocalCloudNotRunning naming where it looked."""
    found = find_running(state_dir)
    if found is None:
        raise LocalCloudNotRunning(
            f"no local cloud runs in {state_dir or 'the default directories'}: start one with `queue-scaler local up`"
        )
    directory, state = found
    defaults = LocalSettings()
    return LocalCloudTarget(
        state_dir=directory,
        endpoint_url=str(state["endpoint_url"]),
        region=str(state.get("region", defaults.region)),
        stack=str(state.get("stack", defaults.stack)),
        status_url=str(state["status_url"]),
        producer=tuple(sorted(dict(state.get("producer", {})).items())),
    )


def localize(value: Any, stack: str) -> Any:
    """`value` (JSON-like) with the sample stack's names replaced by `stack`'s, in every string,
    JSON strings inside strings included (an SQS record's body, an ARN)."""
    if isinstance(value, str):
        return value.replace(SAMPLE_STACK, stack)
    if isinstance(value, list):
        return [localize(item, stack) for item in value]
    if isinstance(value, dict):
        return {localize(key, stack): localize(item, stack) for key, item in value.items()}
    return value


#: An EC2 instance id, as the samples carry one.
_INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8,17}\b")
#: The SSM command a Run Command status event reports on.
_COMMAND_ID = re.compile(r'"command-id": "([^"]+)"')


def _sent_now(value: Any) -> Any:
    """`value` with every EventBridge event's `time` (an SQS record's body included) set to now.

    A sample's time is the day it was written; the handler dates deadlines from an event's time (a
    Spot warning's two minutes), so a sample invoked now must be an event sent now."""
    if isinstance(value, list):
        return [_sent_now(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "detail-type" in value and "time" in value:
        return {**value, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if value.get("eventSource") == "aws:sqs" and isinstance(value.get("body"), str):
        try:
            body = json.loads(value["body"])
        except json.JSONDecodeError:
            return value  # a body that is no event: delivered as written
        return {**value, "body": json.dumps(_sent_now(body))}
    return {key: _sent_now(item) for key, item in value.items()}


def _for_pending_command(text: str, sample_command: str, status: dict[str, Any]) -> str:
    """A Run Command status sample made to report on a command the local cloud's lifecycle function
    sent and still waits for (a drain or a health check), on that command's instance.

    On an idle cloud no command is pending: the sample would report on nothing, so this says what
    to invoke first instead of sending an event the handler can only log as unknown."""
    pending = [
        a for a in status["lifecycle"].get("recorded", []) if a.get("state") == "pending" and a.get("command_id")
    ]
    if not pending:
        raise NoPendingCommand(
            "the event reports on an SSM command, and the local cloud's lifecycle function waits for none: "
            "invoke a sample that drains a worker first (events/lifecycle/terminate.json)"
        )
    action = pending[0]
    text = text.replace(sample_command, action["command_id"])
    for sample_instance in set(_INSTANCE_ID.findall(text)):
        text = text.replace(sample_instance, action["instance_id"])
    return text


class NoInstanceYet(LocalCloudNotRunning):
    """The local cloud runs, but has no instance that can stand for the sample's."""


class NoPendingCommand(LocalCloudNotRunning):
    """The local cloud runs, but its lifecycle function waits for no command a status sample could report on."""


def localize_event(event: Any, target: LocalCloudTarget, wait_seconds: float = 30.0) -> Any:
    """`_localize_event` on the local cloud's status; while it has no instance to stand for a sample's
    (it has just started, its one idle worker still booting), it waits up to `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return _localize_event(event, target, target.status())
        except NoInstanceYet:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def _localize_event(event: Any, target: LocalCloudTarget, status: dict[str, Any]) -> Any:
    """A sample event made to act on the local cloud: the sample stack's names mapped to the local
    one's, and each instance id the local cloud does not have replaced by one of its healthy
    in-service instances (of the event's group when it has one; the group's name follows the
    instance otherwise), so that a lifecycle sample drains or checks a real local worker."""
    localized = _sent_now(localize(event, target.stack))
    text = json.dumps(localized)
    command = _COMMAND_ID.search(text)
    if command is not None:
        # Its instance is the command's, which may have left the group already (a drain done).
        return json.loads(_for_pending_command(text, command.group(1), status))
    known = {i["id"] for pool in status["pools"].values() for i in pool["instances"]}
    foreign = sorted(set(_INSTANCE_ID.findall(text)) - known)
    if not foreign:
        return localized
    # Not one that is already leaving: a second drain sample must find a worker of its own.
    leaving = {a["instance_id"] for a in status["lifecycle"].get("recorded", []) if a["kind"] != "launch"}
    candidates = [
        (pool["group"], i["id"])
        for pool in status["pools"].values()
        for i in pool["instances"]
        if i["state"] == "InService" and i["healthy"] and i["id"] not in leaving
    ]
    if not candidates:
        raise NoInstanceYet(
            f"the event names instance {foreign[0]}, and the local cloud has no healthy instance in service "
            "(not already leaving) to stand for it: wait for `queue-scaler local status` to show one"
        )
    named_groups = [group for group, _ in candidates if group in text]
    group, instance = next((c for c in candidates if c[0] in named_groups), candidates[0])
    for sample_instance in foreign:
        text = text.replace(sample_instance, instance)
    sample_group = next((pool["group"] for pool in status["pools"].values() if pool["group"] in text), None)
    if sample_group is not None and sample_group != group:
        text = re.sub(rf"\b{re.escape(sample_group)}\b(?!-)", group, text)
    return json.loads(text)
