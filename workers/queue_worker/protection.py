"""Instance scale-in protection while the worker holds a job: scale-in then takes idle instances only.

This is the pattern AWS documents for queue workers ("Use instance scale-in protection to control
instance termination", EC2 Auto Scaling user guide): the worker protects its own instance when it
receives work and removes the protection once it holds nothing. Auto Scaling never chooses a
protected instance for scale-in; when the desired capacity is below the number of protected
instances, the group waits and terminates each one as its protection is removed. A forced removal
(Spot interruption, rebalance, an unhealthy instance, an instance refresh) ignores protection, and
those go through the terminate hook's drain.

At start the worker removes any protection a previous process on the instance left (one that
crashed while busy would otherwise keep an idle instance protected for good). It holds the
protection for `linger_seconds` after its last message is settled, so a busy
worker does not call SetInstanceProtection twice per job; a failed call is retried by the same
thread until it succeeds or the worker stops. The race AWS leaves open (a scale-in choosing the
instance between a receive and the protection call) is what the terminate hook's drain is for.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from queue_worker.settings import WorkerSettings
from queue_worker.telemetry import Telemetry

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient

#: IMDSv2 (the launch template requires tokens; hop limit 2 lets the container reach it). The AWS SDKs'
#: AWS_EC2_METADATA_SERVICE_ENDPOINT moves it, as botocore honours it: the local cloud's instances read theirs there.
IMDS = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254").rstrip("/") + "/latest"
#: Pause before retrying a failed SetInstanceProtection call.
RETRY_SECONDS = 2.0


class Protection(Protocol):
    """What the worker tells about its holdings; `busy` may block briefly, `idle` never does."""

    def busy(self) -> None: ...

    def idle(self) -> None: ...

    def stop(self, timeout: float) -> bool:
        """Leave: at most `timeout` s for the last call; False when it was still under way then."""
        ...


class NoProtection:
    """For a worker that is not on an Auto Scaling instance (SCALE_IN_PROTECTION=off)."""

    def busy(self) -> None:
        return None

    def idle(self) -> None:
        return None

    def stop(self, timeout: float) -> bool:
        return True


def imds_token(timeout: float = 2.0) -> str:
    """A short-lived IMDSv2 session token."""
    token_request = urllib.request.Request(  # noqa: S310 - a fixed link-local http URL
        f"{IMDS}/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    )
    with urllib.request.urlopen(token_request, timeout=timeout) as answer:  # noqa: S310
        return str(answer.read().decode())


def instance_id_from_imds(timeout: float = 2.0) -> str:
    """This instance's id from the instance metadata service (IMDSv2)."""
    token = imds_token(timeout)
    request = urllib.request.Request(  # noqa: S310
        f"{IMDS}/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token}
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
        return str(answer.read().decode()).strip()


def make_client() -> AutoScalingClient:
    """An Auto Scaling client whose calls are bounded in time and retries."""
    config = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("autoscaling", config=config)


class ScaleInProtection:
    """Keeps SetInstanceProtection in step with whether the worker holds any message."""

    def __init__(
        self,
        client: AutoScalingClient,
        instance_id: str,
        group: str,
        telemetry: Telemetry,
        *,
        linger_seconds: float,
        clock: Callable[[], float],
        ready: threading.Event | None = None,
    ) -> None:
        self._client = client
        # Unset while the instance is in a warm pool, where AWS refuses SetInstanceProtection: no call
        # (not even the first clear) until the worker starts serving (queue_worker/warm.py).
        self._ready = ready
        self._instance_id = instance_id
        self._group = group
        self._telemetry = telemetry
        self._linger = linger_seconds
        self._clock = clock
        self._cond = threading.Condition()
        self._wanted = False  # what the worker's holdings call for
        self._applied: bool | None = None  # what Auto Scaling was last told (None: unknown, so cleared)
        self._idle_since = clock() - linger_seconds  # the first clear does not wait
        self._stopped = False
        self._unprotecting = False
        # Serializes the calls: the poller's protect and the thread's unprotect never interleave.
        self._call_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="protection", daemon=True)
        self._thread.start()

    def busy(self) -> None:
        """The worker holds a message: protect the instance now, before its job starts."""
        with self._cond:
            self._wanted = True
            if self._applied is True and not self._unprotecting:
                return
        self._apply(True)

    def idle(self) -> None:
        """The worker holds nothing any more: unprotect once `linger_seconds` pass without work."""
        with self._cond:
            self._wanted = False
            self._idle_since = self._clock()
            self._cond.notify_all()

    def stop(self, timeout: float) -> bool:
        """The worker is leaving: remove the protection so no idle, protected instance stays behind.

        The last call is the protection thread's; the worker waits for it at most `timeout` s (what is
        left before Docker's SIGKILL) and exits anyway: False when it was still under way then.
        """
        with self._cond:
            self._stopped = True
            self._wanted = False
            self._cond.notify_all()
        self._thread.join(timeout=timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while self._ready is not None and not self._ready.wait(timeout=1.0):
            with self._cond:
                if self._stopped:
                    return  # still in the warm pool: AWS would refuse the call
        while True:
            with self._cond:
                if self._stopped:
                    break
                due = self._idle_since + self._linger
                mismatch = self._applied is not self._wanted
                if not mismatch or (not self._wanted and self._clock() < due):
                    wait = max(0.05, due - self._clock()) if mismatch else 1.0
                    self._cond.wait(timeout=min(wait, 1.0))
                    continue
                wanted = self._wanted
            if not self._apply(wanted):
                with self._cond:
                    self._cond.wait(timeout=RETRY_SECONDS)
        if self._applied is not False:
            self._apply(False, final=True)

    def _apply(self, protected: bool, *, final: bool = False) -> bool:
        with self._call_lock:
            with self._cond:
                if not final and self._applied is protected:
                    return True
                # A busy() while an unprotect was being decided wins: never unprotect a busy worker.
                if not protected and self._wanted and not final:
                    return True
                self._unprotecting = not protected
            try:
                self._client.set_instance_protection(
                    InstanceIds=[self._instance_id],
                    AutoScalingGroupName=self._group,
                    ProtectedFromScaleIn=protected,
                )
            except (ClientError, BotoCoreError) as error:
                self._telemetry.event(
                    "protection_failed",
                    "could not change scale-in protection",
                    level="info" if final else "warning",
                    protected=protected,
                    error=repr(error),
                )
                return False
            finally:
                with self._cond:
                    self._unprotecting = False
            with self._cond:
                self._applied = protected
            self._telemetry.event("protection_changed", "scale-in protection changed", protected=protected)
            return True


def protect_instance(
    settings: WorkerSettings, telemetry: Telemetry, ready: threading.Event | None = None
) -> Protection:
    """The protection the settings ask for; the instance id comes from IMDS when not given. With `ready`,
    nothing is called before it is set (an instance in a warm pool)."""
    if not settings.scale_in_protection:
        return NoProtection()
    assert settings.autoscaling_group_name is not None  # the settings require it with protection
    return ScaleInProtection(
        make_client(),
        settings.instance_id or instance_id_from_imds(),
        settings.autoscaling_group_name,
        telemetry,
        linger_seconds=settings.protection_linger_seconds,
        clock=time.monotonic,
        ready=ready,
    )
