"""What the health check prints, as the lifecycle emulators produce it and the lifecycle rules read it:
the status line, and only when not healthy, the container's log lines (none when there are none)."""

from __future__ import annotations

import pytest

from queue_scaler.domain.commands import HEALTHY, health_of, health_output, log_tail


@pytest.mark.parametrize(
    ("name", "output", "health", "tail"),
    [
        ("given a healthy container then only its status is printed", health_output(HEALTHY), HEALTHY, []),
        (
            "given an unhealthy container with no log lines then nothing follows its status",
            health_output("unhealthy"),
            "unhealthy",
            [],
        ),
        (
            "given an unhealthy container then its log lines follow its status",
            health_output("unhealthy", "boom\nagain"),
            "unhealthy",
            ["boom", "again"],
        ),
    ],
)
def test_health_output(name: str, output: str, health: str, tail: list[str]) -> None:
    assert health_of(output) == health
    assert log_tail(output)[1:] == tail
