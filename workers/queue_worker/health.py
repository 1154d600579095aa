"""The health file the container HEALTHCHECK reads: fresh while polling works.

A file rather than a loopback port: nothing listens, nothing needs a free port, and the check is a
single stat. `python -m queue_worker.health` is the HEALTHCHECK command.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from queue_worker.settings import HealthSettings


class HealthFile:
    """Marks the worker healthy by touching a file; removing it marks the worker stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark_healthy(self) -> None:
        """Refresh the file's modification time (creating it on first success)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()

    def clear(self) -> None:
        """Remove the file: a stopping worker must not look healthy."""
        self.path.unlink(missing_ok=True)


def is_healthy(path: Path, max_age_seconds: float, now: float) -> bool:
    """True when the health file exists and was refreshed within `max_age_seconds` of `now`."""
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return now - modified <= max_age_seconds


def main() -> int:
    """HEALTHCHECK entry point: exit 0 when healthy, 1 otherwise (with the reason on stderr)."""
    settings = HealthSettings()
    if is_healthy(settings.health_file, settings.health_max_age_seconds, time.time()):
        return 0
    print(
        f"unhealthy: {settings.health_file} missing or older than {settings.health_max_age_seconds} s",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
