"""Scale-in protection at its edges: a job arriving while the protection is being removed, a failed
removal at exit, what each change logs, and the client's bounds. Over a fake Auto Scaling client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from queue_worker.protection import NoProtection, ScaleInProtection, make_client, protect_instance
from queue_worker.settings import WorkerSettings
from queue_worker.telemetry import Telemetry
from tests.worker_events import undocumented

pytestmark = pytest.mark.timeout(30)

INSTANCE = "i-0123456789abcdef0"


class SpyTelemetry(Telemetry):
    def __init__(self) -> None:
        super().__init__("video", "Test", 3600, time.monotonic)
        self.events: list[dict[str, Any]] = []

    def event(self, event: str, message: str, *, job_id: str | None = None, level: str = "info", **fields: Any) -> None:
        self.events.append({"event": event, "message": message, "job_id": job_id, "level": level, **fields})


class GatedAutoScaling:
    """Records completed SetInstanceProtection calls; an unprotect waits at `gate` once `hold` is set."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.hold = False
        self.fail = False
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.lock = threading.Lock()

    def set_instance_protection(self, **kwargs: Any) -> None:
        assert kwargs["InstanceIds"] == [INSTANCE] and kwargs["AutoScalingGroupName"] == "video"
        protected = kwargs["ProtectedFromScaleIn"]
        if not protected and self.hold:
            self.entered.set()
            assert self.gate.wait(10)
        if self.fail:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "SetInstanceProtection")
        with self.lock:
            self.calls.append(protected)

    def snapshot(self) -> list[bool]:
        with self.lock:
            return list(self.calls)


@pytest.fixture
def made() -> Iterator[tuple[ScaleInProtection, GatedAutoScaling, SpyTelemetry]]:
    client, telemetry = GatedAutoScaling(), SpyTelemetry()
    protection = ScaleInProtection(
        client,  # type: ignore[arg-type]
        INSTANCE,
        "video",
        telemetry,
        linger_seconds=0,
        clock=time.monotonic,
    )
    deadline = time.monotonic() + 10
    while client.snapshot() != [False]:  # the start clears what a previous process left
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with client.lock:
        client.calls.clear()
    yield protection, client, telemetry
    client.gate.set()
    protection.stop(10)
    assert undocumented(telemetry.events) == [], "every line as docs/worker-events.md says"


def test_given_an_unprotect_under_way_when_a_job_arrives_then_busy_returns_only_once_protected_again(
    made: tuple[ScaleInProtection, GatedAutoScaling, SpyTelemetry],
) -> None:
    protection, client, _ = made
    protection.busy()
    client.hold = True
    protection.idle()  # the protection thread starts removing it, and waits in the call
    assert client.entered.wait(10)
    seen_at_return: list[list[bool]] = []
    arriving = threading.Thread(target=lambda: (protection.busy(), seen_at_return.append(client.snapshot())))
    arriving.start()
    client.gate.set()
    arriving.join(10)
    assert seen_at_return == [[True, False, True]], "busy() returned before the instance was protected again"


def test_given_each_change_then_it_is_logged_with_what_it_set(
    made: tuple[ScaleInProtection, GatedAutoScaling, SpyTelemetry],
) -> None:
    protection, client, telemetry = made
    protection.busy()
    protection.idle()
    deadline = time.monotonic() + 10
    while client.snapshot() != [True, False]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    changes = [(e["event"], e["protected"], e["level"]) for e in telemetry.events]
    assert changes[-2:] == [("protection_changed", True, "info"), ("protection_changed", False, "info")]


def test_given_a_removal_that_fails_at_exit_then_it_is_logged_as_info_not_retried(
    made: tuple[ScaleInProtection, GatedAutoScaling, SpyTelemetry],
) -> None:
    protection, client, telemetry = made
    protection.busy()
    client.fail = True
    protection.stop(10)
    [failed] = [e for e in telemetry.events if e["event"] == "protection_failed"]
    assert (failed["protected"], failed["level"]) == (False, "info")
    assert "Throttling" in failed["error"]


def test_given_a_removal_at_exit_slower_than_the_wait_then_stop_returns_false_at_the_wait_and_the_call_ends_later(
    made: tuple[ScaleInProtection, GatedAutoScaling, SpyTelemetry],
) -> None:
    protection, client, _ = made
    protection.busy()
    client.hold = True  # Auto Scaling slow to answer the last call
    began = time.monotonic()
    assert protection.stop(0.3) is False, "the worker's exit does not wait past what it was given"
    assert time.monotonic() - began < 2
    assert client.entered.is_set() and client.snapshot() == [True]
    client.gate.set()
    deadline = time.monotonic() + 10
    while client.snapshot() != [True, False]:  # the call goes on in its thread while the process lives
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_given_a_protect_that_fails_while_running_then_it_is_a_warning(
    made: tuple[ScaleInProtection, GatedAutoScaling, SpyTelemetry],
) -> None:
    protection, client, telemetry = made
    client.fail = True
    protection.busy()
    failed = [e for e in telemetry.events if e["event"] == "protection_failed"]
    assert failed and (failed[0]["protected"], failed[0]["level"]) == (True, "warning")
    client.fail = False


def test_given_the_client_then_its_calls_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = make_client().meta.config
    assert (config.connect_timeout, config.read_timeout) == (3, 5)
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}


def test_given_protection_off_then_nothing_is_called() -> None:
    settings = WorkerSettings(queue_urls="http://sqs.local/1/q", job_handler="m:f")
    protection = protect_instance(settings, SpyTelemetry())
    assert isinstance(protection, NoProtection)
    assert (protection.busy(), protection.idle(), protection.stop(10)) == (None, None, True)


def test_given_protection_on_then_the_instance_is_protected_in_its_group_with_the_configured_linger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = GatedAutoScaling()
    monkeypatch.setattr("queue_worker.protection.make_client", lambda: client)
    settings = WorkerSettings(
        queue_urls="http://sqs.local/1/q",
        job_handler="m:f",
        scale_in_protection=True,
        autoscaling_group_name="video",
        instance_id=INSTANCE,
        protection_linger_seconds=300,
    )
    protection = protect_instance(settings, SpyTelemetry())
    try:
        deadline = time.monotonic() + 10
        while client.snapshot() != [False]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        protection.busy()
        protection.idle()
        time.sleep(0.3)
        assert client.snapshot() == [False, True], "still protected: the linger is 300 s"
    finally:
        protection.stop(10)
    assert client.snapshot() == [False, True, False]
