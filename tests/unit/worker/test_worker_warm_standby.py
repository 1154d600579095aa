"""A worker on an instance headed for the warm pool receives nothing, looks healthy (what the warm pass
checks), and starts receiving once its target lifecycle state leaves `Warmed:*`. In-process, over fake
queues and a scripted target lifecycle state."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from queue_worker.attempts import AttemptRecorder
from queue_worker.health import HealthFile, is_healthy
from queue_worker.protection import ScaleInProtection
from queue_worker.settings import WorkerSettings
from queue_worker.warm import WarmStandby, warmed
from queue_worker.worker import Worker
from tests.unit.worker.test_worker_poll_waits import RecordingDoor, until
from tests.unit.worker.test_worker_protection_races import INSTANCE, GatedAutoScaling, SpyTelemetry
from tests.worker_events import undocumented

pytestmark = pytest.mark.timeout(30)


class TargetState:
    """The instance metadata's autoscaling/target-lifecycle-state, as a test sets it."""

    def __init__(self, state: str | None) -> None:
        self.state = state
        self.reads = 0
        self._lock = threading.Lock()

    def set(self, state: str | None) -> None:
        with self._lock:
            self.state = state

    def __call__(self) -> str | None:
        with self._lock:
            self.reads += 1
            return self.state


def start(tmp_path: Path, target: TargetState) -> tuple[Worker, threading.Thread, RecordingDoor, SpyTelemetry]:
    door, telemetry = RecordingDoor(), SpyTelemetry()
    settings = WorkerSettings(
        queue_urls=door.urls, job_handler="m:f", drain_seconds=5, visibility_timeout=30, poll_wait_seconds=0
    )  # type: ignore[call-arg]
    worker = Worker(
        settings,
        door,
        lambda job: None,
        telemetry,
        HealthFile(tmp_path / "health"),
        attempts=AttemptRecorder(None, telemetry),
        standby=WarmStandby(target, telemetry, poll_seconds=0.05),
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return worker, thread, door, telemetry


def stop(worker: Worker, thread: threading.Thread, telemetry: SpyTelemetry) -> list[dict[str, Any]]:
    worker.request_stop(signal.SIGTERM)
    thread.join(10)
    assert not thread.is_alive()
    assert undocumented(telemetry.events) == [], "every line as docs/worker-events.md says"
    return telemetry.events


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("Warmed:Stopped", True),
        ("Warmed:Running", True),
        ("Warmed:Hibernated", True),
        ("InService", False),
        ("Standby", False),
        (None, False),
    ],
)
def test_given_a_target_lifecycle_state_then_warmed_only_for_the_warm_pools(state: str | None, expected: bool) -> None:
    assert warmed(state) is expected


def test_given_an_instance_headed_for_the_warm_pool_when_the_worker_runs_then_it_receives_nothing_and_is_healthy(
    tmp_path: Path,
) -> None:
    target = TargetState("Warmed:Stopped")
    worker, thread, door, telemetry = start(tmp_path, target)
    until(lambda: is_healthy(tmp_path / "health", 5, time.time()) and target.reads >= 5)
    assert door.seen() == []  # no job may start on an instance about to be stopped
    events = stop(worker, thread, telemetry)
    assert next(e for e in events if e["event"] == "worker_standby")["state"] == "Warmed:Stopped"
    assert "worker_serving" not in {e["event"] for e in events}


def test_given_a_warmed_instance_leaving_the_pool_when_its_state_turns_in_service_then_it_receives(
    tmp_path: Path,
) -> None:
    target = TargetState("Warmed:Running")
    worker, thread, door, telemetry = start(tmp_path, target)
    until(lambda: target.reads >= 3)
    assert door.seen() == []
    target.set("InService")
    until(lambda: len(door.seen()) >= 2)
    events = stop(worker, thread, telemetry)
    assert {"worker_standby", "worker_serving"} <= {e["event"] for e in events}


def test_given_no_target_lifecycle_state_when_the_worker_runs_then_it_serves_at_once(tmp_path: Path) -> None:
    worker, thread, door, telemetry = start(tmp_path, TargetState(None))
    until(lambda: len(door.seen()) >= 2)
    events = stop(worker, thread, telemetry)
    assert "worker_standby" not in {e["event"] for e in events}


def test_given_a_stop_during_the_standby_when_signalled_then_the_worker_stops_without_receiving(
    tmp_path: Path,
) -> None:
    target = TargetState("Warmed:Stopped")
    worker, thread, door, telemetry = start(tmp_path, target)
    until(lambda: target.reads >= 2)
    stop(worker, thread, telemetry)
    assert door.seen() == []


def test_given_a_warmed_instance_when_protection_waits_for_serving_then_no_call_until_it_serves() -> None:
    """AWS: SetInstanceProtection "cannot be called on instances in a warm pool"."""
    client, telemetry, serving = GatedAutoScaling(), SpyTelemetry(), threading.Event()
    protection = ScaleInProtection(
        client,  # type: ignore[arg-type]
        INSTANCE,
        "video",
        telemetry,
        linger_seconds=0,
        clock=time.monotonic,
        ready=serving,
    )
    time.sleep(0.3)  # the protection thread's chance to call, which it must not take
    assert client.snapshot() == []
    serving.set()
    until(lambda: client.snapshot() == [False])  # the first clear, once it serves
    protection.stop(10)


def test_given_a_worker_that_never_left_the_pool_when_stopped_then_protection_calls_nothing() -> None:
    client, telemetry = GatedAutoScaling(), SpyTelemetry()
    protection = ScaleInProtection(
        client,  # type: ignore[arg-type]
        INSTANCE,
        "video",
        telemetry,
        linger_seconds=0,
        clock=time.monotonic,
        ready=threading.Event(),
    )
    protection.stop(10)
    assert client.snapshot() == [] and undocumented(telemetry.events) == []
