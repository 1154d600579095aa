"""The worker container's name is checked where the configuration is read, so no drain or health step
can fail on it later.

Each command's SSM Comment is `queue-scaler <purpose> <container> <seconds>`, and SendCommand refuses
a Comment over 100 characters. With the longest purpose (`health`) and the most seconds a command
carries (a hook's 48 h, `172800`), 73 characters is the longest name that always fits. The name is
also a shell word of the scripts, so Docker's own rule for names applies too.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from queue_scaler.lifecycle.domain.commands import (
    COMMENT_MAX_CHARS,
    CONTAINER_NAME_MAX_CHARS,
    MAX_COMMAND_SECONDS,
    Purpose,
    check_container_name,
    drain_command,
    health_command,
    parse_comment,
)
from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS
from queue_scaler.lifecycle.domain.lifecycle import (
    HOOK_GLOBAL_TIMEOUT_SECONDS,
    ActionKind,
    LifecyclePolicy,
    StepKind,
    new_action,
    next_step,
)
from queue_scaler.settings import LifecycleSettings

LONGEST = "w" * 73
T0 = 1000.0


def policy(container: str, **fields: Any) -> LifecyclePolicy:
    """A policy whose commands carry the most seconds a command can: a drain and a check of 48 h
    (the drain's SIGKILL, the release margin later, still within the hook's 48 h)."""
    values: dict[str, Any] = {
        "container": container,
        "drain_seconds": MAX_COMMAND_SECONDS - RELEASE_MARGIN_SECONDS,
        "drain_grace_seconds": 0,
        "launch_timeout_seconds": MAX_COMMAND_SECONDS,
        "launch_hook_timeout_seconds": 7200,
        "terminate_hook_timeout_seconds": 7200,  # x 100 heartbeats: the 48 h cap
        "reconcile_period_seconds": 60,
        "health_wait_seconds": MAX_COMMAND_SECONDS,
        "command_retry_seconds": 30,
    }
    return LifecyclePolicy(**values | fields)


def settings(container: str) -> LifecycleSettings:
    return LifecycleSettings(actions_table="t", group_names="video", worker_container=container)  # type: ignore[arg-type]


def test_the_limit_is_what_the_longest_comment_leaves_of_ssms_100_characters() -> None:
    assert COMMENT_MAX_CHARS == 100
    assert MAX_COMMAND_SECONDS == HOOK_GLOBAL_TIMEOUT_SECONDS == 172_800
    assert CONTAINER_NAME_MAX_CHARS == 100 - len("queue-scaler health  172800") == 73


@pytest.mark.parametrize(
    ("case", "name"),
    [
        ("the default", "queue-worker"),
        ("the longest: 73 characters", LONGEST),
        ("the shortest Docker accepts: 2", "qw"),
        ("every character Docker allows", "Queue_Worker.v2-1"),
        ("starting with a digit", "0worker"),
    ],
)
def test_given_an_acceptable_container_name_then_the_settings_take_it(case: str, name: str) -> None:
    assert settings(name).policy().container == name, case


@pytest.mark.parametrize(
    ("case", "name", "says"),
    [
        ("74 characters: one over", "w" * 74, "74 characters is too long: at most 73"),
        ("77 characters: the reported case", "w" * 77, "at most 73"),
        ("one character: Docker wants two", "w", "not a Docker container name"),
        ("empty", "", "not a Docker container name"),
        ("a space: two words in the comment", "queue worker", "not a Docker container name"),
        ("a shell command", "w;reboot", "not a Docker container name"),
        ("a leading dash", "-worker", "not a Docker container name"),
        ("a leading dot", ".worker", "not a Docker container name"),
        ("a slash", "pool/worker", "not a Docker container name"),
    ],
)
def test_given_an_unusable_container_name_then_the_settings_refuse_it_naming_the_field_and_the_limit(
    case: str, name: str, says: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        settings(name)
    [error] = raised.value.errors()
    assert error["loc"] == ("worker_container",), case
    assert says in error["msg"], case


def test_given_a_name_one_over_the_limit_then_the_error_says_why() -> None:
    with pytest.raises(ValueError, match=r"SSM command's Comment .* stays within 100"):
        check_container_name("w" * 74)


def test_given_the_domain_policy_built_directly_then_it_refuses_the_same_names() -> None:
    with pytest.raises(ValidationError, match="container"):
        policy("w" * 74)
    with pytest.raises(ValidationError, match="container"):
        policy("a b")


def test_given_a_health_wait_beyond_any_hook_then_the_policy_refuses_it() -> None:
    with pytest.raises(ValidationError, match="health_wait_seconds"):
        policy(LONGEST, health_wait_seconds=MAX_COMMAND_SECONDS + 1)


@pytest.mark.parametrize(
    ("kind", "purpose", "length"),
    [
        (ActionKind.TERMINATE, Purpose.DRAIN, 99),  # "queue-scaler drain <73> 172785"
        (ActionKind.LAUNCH, Purpose.HEALTH, 100),  # "queue-scaler health <73> 172800": exactly the limit
        (ActionKind.SPOT, Purpose.SPOT, 95),  # a Spot drain: "queue-scaler spot <73> 120", the notice
    ],
)
def test_given_the_longest_name_and_the_most_seconds_then_every_step_sends_a_comment_within_the_limit(
    kind: ActionKind, purpose: Purpose, length: int
) -> None:
    rules = policy(LONGEST)
    action = new_action(kind, "i-1", "video", T0, rules, hook=None if kind is ActionKind.SPOT else "h", token="t")
    step = next_step(action, None, T0, rules)
    assert step.kind is StepKind.RUN_COMMAND
    assert step.command is not None
    assert len(step.command.comment) == length
    parsed = parse_comment(step.command.comment)
    assert (parsed.purpose, parsed.container) == (purpose, LONGEST)


def test_given_the_longest_name_then_the_commands_themselves_build_at_the_most_seconds() -> None:
    assert len(drain_command(LONGEST, MAX_COMMAND_SECONDS).comment) == 99
    assert len(health_command(LONGEST, MAX_COMMAND_SECONDS).comment) == 100
    with pytest.raises(ValidationError, match="comment"):
        health_command(LONGEST + "w", MAX_COMMAND_SECONDS)  # what the settings now prevent
