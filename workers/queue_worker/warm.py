"""Standby in a warm pool: a worker on an instance headed for the warm pool receives no job.

An instance launched into an Auto Scaling warm pool boots and runs its user data like any other (the
worker container starts), is health-checked by LifecycleFunction, and is then stopped, hibernated or
left running outside the group's capacity. A job received in that window would be cut short by the
stop, or would run on capacity the scaler does not count. Auto Scaling publishes where the instance is
headed in its instance metadata (`autoscaling/target-lifecycle-state`: `Warmed:Stopped`,
`Warmed:Running`, `Warmed:Hibernated`, `InService`, ...; EC2 Auto Scaling user guide, "Retrieve the
target lifecycle state through instance metadata"), so the worker waits while it reads `Warmed:*`,
marked healthy (its image is pulled and its settings are valid: what the warm pass checks), and
starts receiving once the state turns to anything else. After a Stopped pool's restart, Docker
restarts the container and the worker reads `InService` at once; a Running or Hibernated pool's
worker sees the state change in place.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable

from queue_worker.protection import IMDS, imds_token
from queue_worker.telemetry import Telemetry

#: The target lifecycle states of an instance in (or headed for) a warm pool.
WARMED_PREFIX = "Warmed:"
#: How often a worker in standby reads its target lifecycle state: a warmed instance leaving the pool
#: spends at least this long in Pending:Wait before its health check admits it.
STANDBY_POLL_SECONDS = 5.0


def target_lifecycle_state(timeout: float = 2.0) -> str | None:
    """The instance's target lifecycle state from IMDSv2; None when there is none to read (not an
    Auto Scaling instance, or the metadata service does not answer): the worker then serves."""
    try:
        token = imds_token(timeout)
        request = urllib.request.Request(  # noqa: S310 - a fixed link-local http URL
            f"{IMDS}/meta-data/autoscaling/target-lifecycle-state", headers={"X-aws-ec2-metadata-token": token}
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return str(answer.read().decode()).strip() or None
    except (OSError, urllib.error.URLError):
        return None


def warmed(state: str | None) -> bool:
    """Whether the target lifecycle state says the instance is in, or headed for, the warm pool."""
    return state is not None and state.startswith(WARMED_PREFIX)


class WarmStandby:
    """Holds the poller back while the instance's target lifecycle state is `Warmed:*`."""

    def __init__(
        self,
        read_state: Callable[[], str | None],
        telemetry: Telemetry,
        *,
        poll_seconds: float = STANDBY_POLL_SECONDS,
    ) -> None:
        self._read_state = read_state
        self._telemetry = telemetry
        self._poll_seconds = poll_seconds
        #: Set once the worker serves: what scale-in protection waits for (SetInstanceProtection "cannot
        #: be called on instances in a warm pool", EC2 Auto Scaling API reference).
        self.serving = threading.Event()

    def wait(self, stop: threading.Event, standing_by: Callable[[bool], None]) -> bool:
        """Return once the instance is headed anywhere but the warm pool (True), or once `stop` is set
        (False). `standing_by(True)` is called when the standby starts, `standing_by(False)` when it ends."""
        state = self._read_state()
        if not warmed(state):
            self.serving.set()
            return not stop.is_set()
        self._telemetry.event("worker_standby", "instance headed for the warm pool: receiving nothing", state=state)
        standing_by(True)
        while warmed(state):
            if stop.wait(self._poll_seconds):
                return False
            state = self._read_state()
        standing_by(False)
        self.serving.set()
        self._telemetry.event("worker_serving", "instance left the warm pool: receiving", state=state)
        return not stop.is_set()
