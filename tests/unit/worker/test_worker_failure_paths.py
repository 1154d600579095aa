"""The worker when SQS says no: receive outages back off, refused heartbeats, deletes and releases are
reported per job, and the counts at exit add up. Threads over an in-memory SQS door, no sockets."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from queue_scaler.credits.domain.ledger import JobStatus
from queue_scaler.credits.ports import AttemptLog
from queue_scaler.shared.jobs import JobEnvelope
from queue_worker import worker as worker_module
from queue_worker.attempts import AttemptRecorder
from queue_worker.health import HealthFile
from queue_worker.settings import WorkerSettings
from queue_worker.sqs import ReceivedMessage
from queue_worker.telemetry import Telemetry
from queue_worker.worker import Worker
from tests.fakes import FakeLedger
from tests.unit.worker.test_worker_settlement import FakeQueues, body
from tests.worker_events import undocumented

pytestmark = pytest.mark.timeout(30)

LOW = "http://sqs.local/1/jobs-low"


class SpyTelemetry(Telemetry):
    """Telemetry that keeps each event (and still writes it)."""

    def __init__(self) -> None:
        super().__init__("unit", "Test", 3600, time.monotonic)
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def event(self, event: str, message: str, *, job_id: str | None = None, level: str = "info", **fields: Any) -> None:
        with self.lock:
            self.events.append({"event": event, "message": message, "job_id": job_id, "level": level, **fields})

    def of(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["event"] == name]


class Door(FakeQueues):
    """FakeQueues with a second, empty queue and SQS refusals to order."""

    def __init__(self, bodies: list[str]) -> None:
        super().__init__(bodies)
        self.urls = [self.urls[0], LOW]
        self.receive_errors_on_low = 0
        self.refuse_deletes = False
        self.refuse_visibility: set[int] = set()  # seconds values whose changes SQS refuses

    def receive(self, index: int, max_messages: int, wait_seconds: int, visibility: int) -> list[ReceivedMessage]:
        if index == 1:
            with self._lock:
                failing = self.receive_errors_on_low > 0
                self.receive_errors_on_low -= 1 if failing else 0
            if failing:
                raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "ReceiveMessage")
            time.sleep(min(wait_seconds, 0.05))
            return []
        return super().receive(index, max_messages, wait_seconds, visibility)

    def delete(self, messages: list[ReceivedMessage]) -> dict[str, str]:
        if self.refuse_deletes:
            return {m.receipt_handle: "ReceiptHandleIsInvalid" for m in messages}
        return super().delete(messages)

    def set_visibility(self, messages: list[ReceivedMessage], seconds: int) -> list[tuple[ReceivedMessage, str]]:
        super().set_visibility(messages, seconds)
        return [(m, "MessageNotInflight") for m in messages] if seconds in self.refuse_visibility else []


Started = Callable[..., tuple[Worker, SpyTelemetry, Path]]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Started]:
    running: list[tuple[Worker, threading.Thread]] = []
    spies: list[SpyTelemetry] = []

    def begin(
        door: Door,
        handler: Callable[[JobEnvelope], object] = lambda job: None,
        ledger: AttemptLog | None = None,
        **settings: Any,
    ) -> tuple[Worker, SpyTelemetry, Path]:
        values: dict[str, Any] = {
            "queue_urls": door.urls,
            "job_handler": "m:f",
            "drain_seconds": 0.5,
            "visibility_timeout": 30,
            "poll_wait_seconds": 0,
            "retry_delay_seconds": 7,
            **settings,
        }
        telemetry = SpyTelemetry()
        spies.append(telemetry)
        health = tmp_path / "health"
        worker = Worker(
            WorkerSettings(**values),
            door,
            handler,
            telemetry,
            HealthFile(health),
            wall_clock=lambda: 1_000_000.0,
            attempts=AttemptRecorder(ledger, telemetry, pool="unit"),
        )
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        running.append((worker, thread))
        return worker, telemetry, health

    yield begin
    for worker, thread in running:
        worker.request_stop(signal.SIGTERM)
        thread.join(10)
    for telemetry in spies:
        assert undocumented(telemetry.events) == [], "every line as docs/worker-events.md says"


def until(check: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return value


def stop(worker: Worker, telemetry: SpyTelemetry) -> dict[str, Any]:
    worker.request_stop(signal.SIGTERM)
    [stopped] = until(lambda: telemetry.of("worker_stopped"))
    return stopped


def test_given_a_queue_that_fails_when_receiving_then_the_worker_backs_off_doubling_to_a_cap_and_is_unhealthy(
    start: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "MAX_RECEIVE_BACKOFF_SECONDS", 2.5)
    door = Door([])
    worker, telemetry, health = start(door)
    until(health.exists)  # receiving works: healthy
    door.receive_errors_on_low = 3
    until(lambda: len(telemetry.of("receive_failed")) == 2)
    unhealthy_since = health.stat().st_mtime
    failures = until(lambda: (found := telemetry.of("receive_failed")) and len(found) == 3 and found)
    assert health.stat().st_mtime == unhealthy_since, "not refreshed while receives fail (2 s)"
    assert [f["retry_in_seconds"] for f in failures] == [1.0, 2.0, 2.5]
    assert {(f["queue"], f["level"]) for f in failures} == {("jobs-low", "warning")}
    assert all("ServiceUnavailable" in f["error"] for f in failures)
    until(lambda: health.stat().st_mtime > unhealthy_since)  # receives work again: refreshed again
    assert len(telemetry.of("receive_failed")) == 3
    door.receive_errors_on_low = 1  # a new outage starts from the shortest pause again
    fourth = until(lambda: (found := telemetry.of("receive_failed")) and len(found) == 4 and found[-1])
    assert fourth["retry_in_seconds"] == 1.0
    stop(worker, telemetry)
    assert not health.exists(), "a stopping worker is not healthy"


def test_given_receives_failing_from_the_start_then_the_worker_never_reports_healthy(start: Started) -> None:
    door = Door([])
    door.receive_errors_on_low = 2
    worker, telemetry, health = start(door)
    failures = until(lambda: (found := telemetry.of("receive_failed")) and len(found) == 2 and found)
    assert [f["retry_in_seconds"] for f in failures] == [1.0, 2.0]
    assert not health.exists(), "healthy only once a receive worked"
    until(health.exists)
    stop(worker, telemetry)


def test_given_a_running_job_then_the_heartbeat_extends_its_visibility_and_reports_refusals(start: Started) -> None:
    gate = threading.Event()
    door = Door([body("long")])
    door.refuse_visibility = {30}
    worker, telemetry, _ = start(door, lambda job: gate.wait(10), heartbeat_seconds=0.1)
    refused = until(lambda: len(telemetry.of("heartbeat_failed")) >= 2 and telemetry.of("heartbeat_failed"))
    assert {(e["job_id"], e["message_id"], e["reason"], e["level"]) for e in refused} == {
        ("long", "m-0", "MessageNotInflight", "warning")
    }
    assert door.visibility.count(("m-0", 30)) >= 2
    gate.set()
    until(lambda: door.deleted == ["m-0"])
    extended = door.visibility.count(("m-0", 30))
    time.sleep(0.35)
    assert door.visibility.count(("m-0", 30)) == extended, "a settled message is no longer extended"
    stop(worker, telemetry)


def test_given_deletes_sqs_refuses_then_the_job_is_completed_and_the_failed_delete_reported(start: Started) -> None:
    door = Door([body("a"), body("b")])
    door.refuse_deletes = True
    worker, telemetry, _ = start(door, worker_slots=2)
    completed = until(lambda: len(telemetry.of("job_completed")) == 2 and telemetry.of("job_completed"))
    assert {(e["job_id"], e["deleted"]) for e in completed} == {("a", False), ("b", False)}
    refused = telemetry.of("delete_failed")
    assert {(e["job_id"], e["error"], e["level"]) for e in refused} == {
        ("a", "ReceiptHandleIsInvalid", "error"),
        ("b", "ReceiptHandleIsInvalid", "error"),
    }
    assert stop(worker, telemetry)["completed"] == 2


def test_given_a_failed_job_whose_retry_delay_is_refused_then_no_retry_time_is_promised(start: Started) -> None:
    door = Door([body("bad")])
    door.refuse_visibility = {7}

    def boom(job: JobEnvelope) -> None:
        raise ValueError("no such input")

    worker, telemetry, _ = start(door, boom)
    [failed] = until(lambda: telemetry.of("job_failed"))
    assert (failed["job_id"], failed["reason"], failed["level"]) == ("bad", "ValueError: no such input", "error")
    assert (failed["queue"], failed["attempt"], failed["message_id"]) == ("jobs", 1, "m-0")
    assert failed["retry_in_seconds"] is None
    assert ("m-0", 7) in door.visibility and door.deleted == []
    assert stop(worker, telemetry)["failed"] == 1


def test_given_a_failed_job_then_its_retry_comes_after_the_retry_delay(start: Started) -> None:
    def boom(job: JobEnvelope) -> None:
        raise RuntimeError("x")

    worker, telemetry, _ = start(Door([body("bad")]), boom)
    [failed] = until(lambda: telemetry.of("job_failed"))
    assert failed["retry_in_seconds"] == 7
    assert isinstance(failed["seconds"], float) and failed["seconds"] == round(failed["seconds"], 3) >= 0
    stop(worker, telemetry)


def test_given_an_unreadable_body_then_the_job_fails_naming_the_fields_and_keeps_the_id_it_has(
    start: Started,
) -> None:
    ran: list[str] = []
    door = Door(['{"job_id": "half", "plan": "pro"}'])
    worker, telemetry, _ = start(door, lambda job: ran.append(job.job_id))
    [failed] = until(lambda: telemetry.of("job_failed"))
    assert failed["job_id"] == "half" and ran == []
    assert failed["reason"].startswith("invalid envelope: ") and "user_id: Field required" in failed["reason"]
    assert ("m-0", 7) in door.visibility
    stop(worker, telemetry)


def test_given_released_messages_sqs_refuses_at_the_drain_then_each_release_is_a_warning_with_its_error(
    start: Started,
) -> None:
    gate = threading.Event()
    door = Door([body("running"), body("held")])
    door.refuse_visibility = {0}
    worker, telemetry, _ = start(door, lambda job: gate.wait(10), worker_slots=1, worker_prefetch=1)
    until(lambda: telemetry.of("job_started") and not door._pending)
    stopped = stop(worker, telemetry)
    gate.set()
    released = {e["job_id"]: e for e in telemetry.of("job_released")}
    assert set(released) == {"running", "held"}
    assert released["held"]["reason"] == "not started before stop"
    assert released["running"]["reason"] == "drain deadline reached"
    assert {(e["level"], e["error"]) for e in released.values()} == {("warning", "MessageNotInflight")}
    assert (stopped["completed"], stopped["failed"], stopped["released"]) == (0, 0, 2)


def test_given_a_message_with_its_sent_time_then_the_job_line_carries_its_wait_queue_and_attempt(
    start: Started,
) -> None:
    door = Door([body("timed")])
    message = door._pending[0]
    door._pending = [
        ReceivedMessage(0, message.queue_url, "m-0", "r-0", message.body, 4, 1_000_000.0 - 2.5)
    ]  # sent 2.5 s before the worker's wall clock, received for the fourth time
    worker, telemetry, _ = start(door)
    [started] = until(lambda: telemetry.of("job_started"))
    assert (started["job_id"], started["queue"], started["attempt"], started["plan"]) == ("timed", "jobs", 4, "pro")
    assert started["queue_wait_seconds"] == 2.5 and started["kind"] == "k"
    [completed] = until(lambda: telemetry.of("job_completed"))
    assert (completed["queue_wait_seconds"], completed["deleted"]) == (2.5, True)
    assert isinstance(completed["seconds"], float) and completed["seconds"] == round(completed["seconds"], 3) >= 0
    stop(worker, telemetry)


def test_given_a_job_the_ledger_has_completed_then_it_is_skipped_and_its_message_deleted(start: Started) -> None:
    ledger = FakeLedger()
    ledger.put_job("unit", "done", JobStatus.COMPLETED)
    ran: list[str] = []
    door = Door([body("done")])
    worker, telemetry, _ = start(door, lambda job: ran.append(job.job_id), ledger)
    [skipped] = until(lambda: telemetry.of("job_skipped"))
    assert (skipped["job_id"], skipped["level"]) == ("done", "info")
    until(lambda: door.deleted == ["m-0"])
    assert ran == [] and telemetry.of("job_started") == []
    stopped = stop(worker, telemetry)
    assert (stopped["completed"], stopped["failed"], stopped["released"]) == (0, 0, 0)


def test_given_a_worker_then_its_start_and_stop_lines_say_how_it_runs_and_what_it_did(start: Started) -> None:
    worker, telemetry, _ = start(Door([body("one")]), worker_slots=3, worker_prefetch=2, visibility_timeout=40)
    [begun] = until(lambda: telemetry.of("worker_started"))
    assert begun["queues"] == ["jobs", "jobs-low"]
    assert (begun["slots"], begun["prefetch"], begun["drain_seconds"], begun["visibility_timeout"]) == (3, 2, 0.5, 40)
    until(lambda: telemetry.of("job_completed"))
    stopped = stop(worker, telemetry)
    [stopping] = telemetry.of("worker_stopping")
    assert (stopping["signal"], stopping["running"], stopping["unstarted"]) == ("SIGTERM", 0, 0)
    assert (stopped["signal"], stopped["completed"], stopped["failed"], stopped["released"]) == ("SIGTERM", 1, 0, 0)


class HangingDoor(Door):
    """A long poll on the lower queue that outlasts the drain window, until `release` is set."""

    def __init__(self) -> None:
        super().__init__([])
        self.polling = threading.Event()
        self.release = threading.Event()

    def receive(self, index: int, max_messages: int, wait_seconds: int, visibility: int) -> list[ReceivedMessage]:
        if index == 1:
            self.polling.set()
            self.release.wait(10)
            return []
        return super().receive(index, max_messages, wait_seconds, visibility)


def test_given_a_receive_still_under_way_at_the_drain_deadline_then_the_exit_says_so(start: Started) -> None:
    door = HangingDoor()
    worker, telemetry, _ = start(door)
    assert door.polling.wait(10)
    stopped = stop(worker, telemetry)
    door.release.set()
    [abandoned] = telemetry.of("poll_abandoned")
    assert abandoned["level"] == "warning"
    assert stopped["released"] == 0


def test_given_a_first_receive_still_under_way_then_the_worker_is_not_healthy_yet(start: Started) -> None:
    door = HangingDoor()
    worker, telemetry, health = start(door)
    assert door.polling.wait(10)
    time.sleep(1.3)  # past the main loop's one-second health tick, with no receive answered yet
    assert not health.exists(), "healthy only once a receive worked"
    door.release.set()
    until(health.exists)
    stop(worker, telemetry)
