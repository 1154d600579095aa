"""Scale-in protection follows what the worker holds (queue_worker/protection.py), over a fake client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from queue_worker.protection import ScaleInProtection
from queue_worker.telemetry import Telemetry


class FakeAutoScaling:
    """Records SetInstanceProtection calls; fails the first `failures` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[bool] = []
        self.failures = failures
        self.changed = threading.Condition()

    def set_instance_protection(self, **kwargs: Any) -> None:
        assert kwargs["InstanceIds"] == ["i-0123456789abcdef0"] and kwargs["AutoScalingGroupName"] == "video"
        with self.changed:
            if self.failures:
                self.failures -= 1
                raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "SetInstanceProtection")
            self.calls.append(kwargs["ProtectedFromScaleIn"])
            self.changed.notify_all()

    def wait_for(self, condition: Callable[[list[bool]], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: condition(self.calls), timeout=30), self.calls


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[ScaleInProtection, FakeAutoScaling]]]:
    made: list[ScaleInProtection] = []

    def build(linger: float = 0.0, failures: int = 0) -> tuple[ScaleInProtection, FakeAutoScaling]:
        client = FakeAutoScaling(failures)
        telemetry = Telemetry("video", "Test", flush_seconds=3600, clock=time.monotonic)
        protection = ScaleInProtection(
            client,  # type: ignore[arg-type]
            "i-0123456789abcdef0",
            "video",
            telemetry,
            linger_seconds=linger,
            clock=time.monotonic,
        )
        made.append(protection)
        # At start it clears what a previous process may have left (a crash while protected).
        client.wait_for(lambda calls: calls == [False])
        client.calls.clear()
        return protection, client

    yield build
    for protection in made:
        protection.stop(10)


def test_given_a_received_message_when_busy_then_the_instance_is_protected_before_it_returns(make: Any) -> None:
    protection, client = make()
    protection.busy()
    assert client.calls == [True]
    protection.busy()  # already protected: no second call
    assert client.calls == [True]


def test_given_a_busy_worker_when_it_holds_nothing_then_protection_is_removed(make: Any) -> None:
    protection, client = make()
    protection.busy()
    protection.idle()
    client.wait_for(lambda calls: calls == [True, False])


def test_given_a_linger_when_the_next_job_comes_first_then_protection_is_never_removed(make: Any) -> None:
    protection, client = make(linger=3600)
    protection.busy()
    protection.idle()
    protection.busy()
    assert client.calls == [True]


def test_given_a_failed_protect_when_busy_then_it_is_retried_until_it_holds(make: Any) -> None:
    protection, client = make()
    client.failures = 1
    protection.busy()
    client.wait_for(lambda calls: calls == [True])


def test_given_a_stopping_worker_when_stopped_then_no_protection_stays_behind(make: Any) -> None:
    protection, client = make(linger=3600)
    protection.busy()
    protection.stop(10)
    assert client.calls == [True, False]
