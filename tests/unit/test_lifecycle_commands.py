"""The drain and health commands and their one text format (domain/commands.py), shared with the emulated agent."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from queue_scaler.domain.commands import (
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
)


def test_given_a_drain_window_when_the_command_is_built_then_docker_stop_gets_it_and_a_kill_fails_the_command() -> None:
    command = drain_command("queue-worker", 60)
    script = "\n".join(command.script)
    assert 'docker stop --time 60 "$c"' in script
    assert script.endswith('[ "$code" = 0 ]')
    assert command.execution_timeout_seconds == 120
    assert command.comment == "queue-scaler drain queue-worker 60"


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
