"""What the health check prints, as the lifecycle emulators produce it and the lifecycle rules read it:
the status line, and only when not healthy, the container's log lines (none when there are none)."""

from __future__ import annotations

import pytest

from queue_scaler.lifecycle.domain.commands import HEALTHY, health_of, health_output, log_tail


@pytest.mark.parametrize(
    ("name", "status", "tail", "lines"),
    [
        ("given a healthy container then only its status is printed", HEALTHY, None, ["health=healthy"]),
        ("given a healthy container with logs then still only its status", HEALTHY, "boom", ["health=healthy"]),
        (
            "given an unhealthy container with no log lines then nothing follows its status",
            "unhealthy",
            None,
            ["health=unhealthy"],
        ),
        (
            "given an unhealthy container then its log lines follow its status",
            "unhealthy",
            "boom\nagain",
            ["health=unhealthy", "boom", "again"],
        ),
    ],
)
def test_health_output(name: str, status: str, tail: str | None, lines: list[str]) -> None:
    # Built here, not in the table: a table is built once, before any mutant is switched on.
    output = health_output(status) if tail is None else health_output(status, tail)
    assert health_of(output) == status, name
    assert log_tail(output) == lines, name
