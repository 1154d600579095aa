"""The drain and health commands and their one text format (lifecycle/domain/commands.py), shared with the
emulated agent."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from queue_scaler.lifecycle.domain.commands import (
    STOP_NOTICE_FILE,
    CommandComment,
    CommandRequest,
    Purpose,
    drain_command,
    drain_output,
    health_command,
    health_of,
    health_output,
    log_tail,
    parse_comment,
    spot_drain_command,
)
from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS


def test_given_a_drain_window_when_the_command_is_built_then_sigkill_comes_the_margin_after_it_and_fails_it() -> None:
    command = drain_command("queue-worker", 60)
    script = "\n".join(command.script)
    # The worker releases what still runs at 60 s; Docker's SIGKILL only the release margin later.
    assert f'docker stop --time {60 + RELEASE_MARGIN_SECONDS} "$c"' in script
    assert script.endswith('[ "$code" = 0 ]')
    assert command.execution_timeout_seconds == 60 + RELEASE_MARGIN_SECONDS + 60
    assert command.comment == "queue-scaler drain queue-worker 60"


def test_given_a_spot_notice_when_the_drain_is_built_then_the_worker_learns_its_end_before_sigterm() -> None:
    ends_at, now = 1_700_000_120.0, 1_700_000_007.5
    command = spot_drain_command("queue-worker", ends_at, now)
    script = "\n".join(command.script)
    assert command.comment == "queue-scaler spot queue-worker 112"
    assert parse_comment(command.comment) == CommandComment(purpose=Purpose.SPOT, container="queue-worker", seconds=112)
    # The notice is written whole, then SIGTERM with the seconds left on the instance's own clock.
    assert script.index(f"mv -f {STOP_NOTICE_FILE}.tmp {STOP_NOTICE_FILE}") < script.index('docker stop --time "$left"')
    assert "ends=1700000120" in script
    assert script.endswith('[ "$code" = 0 ]')
    assert command.execution_timeout_seconds == 112 + 60


def test_given_a_spot_notice_already_over_when_the_drain_is_built_then_its_comment_says_zero() -> None:
    assert spot_drain_command("queue-worker", 100.0, 130.0).comment == "queue-scaler spot queue-worker 0"


def test_given_a_wait_when_the_health_check_is_built_then_it_prints_the_health_first() -> None:
    command = health_command("queue-worker", 45.7)
    assert command.comment == "queue-scaler health queue-worker 45"
    assert any(line.startswith('echo "health=') for line in command.script)


@pytest.mark.parametrize(
    ("output", "health"),
    [
        ("health=healthy\n", "healthy"),
        ("health=starting\nline 1\nline 2", "starting"),
        ("health=missing", "missing"),
        ("health=\n", "unknown"),
        ("Error: no such container", "unknown"),
        ("", "unknown"),
    ],
)
def test_given_a_check_output_when_read_then_its_health_is_found(output: str, health: str) -> None:
    assert health_of(output) == health


def test_given_a_long_output_when_logged_then_only_the_last_lines_are_kept() -> None:
    output = "\n".join(f"line {i}" for i in range(100))
    assert log_tail(output, 3) == ["line 97", "line 98", "line 99"]


@pytest.mark.parametrize(
    ("build", "container", "seconds", "parsed"),
    [
        (
            drain_command,
            "queue-worker",
            600.9,
            CommandComment(purpose=Purpose.DRAIN, container="queue-worker", seconds=600),
        ),
        (health_command, "w", 45.7, CommandComment(purpose=Purpose.HEALTH, container="w", seconds=45)),
        (health_command, "w", -3, CommandComment(purpose=Purpose.HEALTH, container="w", seconds=0)),
    ],
    ids=["drain", "health", "negative-wait-clamped"],
)
def test_given_a_built_command_when_its_comment_is_parsed_then_it_reads_back(
    build: Callable[[str, float], CommandRequest], container: str, seconds: float, parsed: CommandComment
) -> None:
    # Built here, not in the table: a table is built once, before any mutant is switched on.
    assert parse_comment(build(container, seconds).comment) == parsed


@pytest.mark.parametrize(
    ("comment", "names"),
    [
        ("drain queue-worker 60", "is not"),
        ("queue-scaler reboot queue-worker 60", "purpose"),
        ("queue-scaler drain queue-worker sixty", "seconds"),
        ("queue-scaler drain queue-worker 60 extra", "is not"),
        ("", "is not"),
    ],
    ids=["no-prefix", "unknown-purpose", "seconds-not-a-number", "extra-word", "empty"],
)
def test_given_a_foreign_comment_when_parsed_then_the_error_names_what_is_wrong(comment: str, names: str) -> None:
    with pytest.raises(ValueError, match=names):
        parse_comment(comment)


def test_given_the_agent_outputs_when_read_then_the_function_finds_the_same_health() -> None:
    assert health_of(health_output("healthy", "ignored")) == "healthy"
    assert health_of(health_output("starting", "line 1")) == "starting"
    assert drain_output(137, "killed").splitlines() == ["exit=137", "killed"]
