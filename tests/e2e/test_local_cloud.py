"""`queue-scaler local up|status|down` and `queue-scaler invoke` (CONTRACTS.md sections 2 and 3)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devkit.commands.local import down, leftover_workers
from tests.e2e.conftest import alive

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
SCALER_EVENTS = sorted((ROOT / "events" / "scaler").glob("*.json"))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devkit.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=240, check=False
    )


def wait_for(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return bool(check())


def test_given_the_local_cloud_when_up_then_status_shows_pools_queues_and_lifecycle(cloud_factory: Any) -> None:
    cloud = cloud_factory()
    assert wait_for(lambda: cloud.status()["pools"]["messaging"]["in_service"] == 1, 60)
    status = cloud.status()
    assert set(status["pools"]) == {"messaging", "video", "ai"}
    assert status["pools"]["video"]["desired"] == 0 and status["pools"]["ai"]["desired"] == 0
    [idle] = status["pools"]["messaging"]["instances"]
    assert idle["state"] == "InService" and idle["healthy"] and idle["worker_pid"]
    assert status["queues"]["queue-scaler-local-video-enterprise"] == {
        "pool": "video",
        "visible": 0,
        "in_flight": 0,
        "dlq": 0,
    }
    # The idle messaging worker went through the launch hook: one action, completed, none timed out.
    assert status["lifecycle"]["completed"] == 1 and status["lifecycle"]["timed_out"] == 0
    printed = cli("local", "--state-dir", str(cloud.state_dir), "status", "--json")
    assert printed.returncode == 0 and json.loads(printed.stdout)["endpoint_url"] == cloud.endpoint_url


def test_given_backlog_when_invoking_the_scaler_on_each_event_then_it_raises_desired(cloud_factory: Any) -> None:
    # Schedule off: any scale-out comes from the invocations themselves.
    cloud = cloud_factory(schedule_seconds=0)
    url = cloud.queue_url("queue-scaler-local-video-pro")
    for batch in range(3):
        entries = [{"Id": str(i), "MessageBody": json.dumps({"job_id": f"b{batch}-{i}"})} for i in range(10)]
        cloud.sqs.send_message_batch(QueueUrl=url, Entries=entries)
    for event in SCALER_EVENTS:
        run = cli("invoke", "ScalerFunction", str(event), "--state-dir", str(cloud.state_dir), "--env", "RUN_SECONDS=0")
        assert run.returncode == 0, run.stderr[-2000:]
        pools = {p["pool"]: p for p in json.loads(run.stdout)["pools"]}
        assert pools["video"]["decision"]["desired"] == 4  # ceil(30 / 8)
    assert cloud.status()["pools"]["video"]["desired"] == 4
    assert any(e.name == "sam-generated-scheduled.json" for e in SCALER_EVENTS)


def test_given_a_handler_that_raises_when_invoked_then_it_exits_1(cloud_factory: Any, tmp_path: Path) -> None:
    cloud = cloud_factory(schedule_seconds=0)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"source": "aws.events", "detail-type": "Not A Schedule"}))
    missing = "POOL_CONFIG_PARAMETER=/queue-scaler/no-such-stack/pools"
    run = cli("invoke", "ScalerFunction", str(bad), "--state-dir", str(cloud.state_dir), "--env", missing)
    assert run.returncode == 1 and "/queue-scaler/no-such-stack/pools" in run.stderr
    unknown = cli("invoke", "NoSuchFunction", str(bad), "--state-dir", str(cloud.state_dir))
    assert unknown.returncode == 2 and "ScalerFunction" in unknown.stderr


def test_given_a_running_cloud_with_workers_when_down_then_no_process_is_left(cloud_factory: Any) -> None:
    cloud = cloud_factory()
    url = cloud.queue_url("queue-scaler-local-ai-free")
    envelope = {"user_id": "u", "plan": "free", "kind": "k", "credits": 0, "submitted_at": "2026-11-22T10:00:00Z"}
    entries = [
        {"Id": str(i), "MessageBody": json.dumps({**envelope, "job_id": f"d{i}", "payload": {"seconds": 30}})}
        for i in range(10)
    ]
    cloud.sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert wait_for(lambda: len(cloud.status()["workers"]["pids"]) >= 2, 60)
    pids = cloud.status()["workers"]["pids"]
    daemon = int(cloud.state["pid"])
    assert down(cloud.state_dir)
    assert not alive(daemon)
    assert [pid for pid in pids if alive(pid)] == []
    assert cli("local", "--state-dir", str(cloud.state_dir), "status").returncode == 1


FUNCTION_EVENTS = {
    "LifecycleFunction": "lifecycle",
    "MetricsFunction": "metrics",
    "DlqRefundFunction": "dlq_refund",
}


def test_given_every_sample_event_when_invoked_against_the_local_cloud_then_each_handler_returns(
    cloud_factory: Any,
) -> None:
    cloud = cloud_factory(schedule_seconds=0)
    ran = []
    for function, folder in FUNCTION_EVENTS.items():
        for event in sorted((ROOT / "events" / folder).glob("*.json")):
            run = cli("invoke", function, str(event), "--state-dir", str(cloud.state_dir))
            assert run.returncode == 0, (function, event.name, run.stderr[-1500:])
            json.loads(run.stdout)  # the handler's return value, as JSON
            ran.append((function, event.name))
    assert {function for function, _ in ran} == set(FUNCTION_EVENTS)
    assert len(ran) >= 10


def test_given_a_daemon_that_crashed_when_down_then_its_orphaned_workers_are_stopped(cloud_factory: Any) -> None:
    cloud = cloud_factory()
    assert wait_for(lambda: len(cloud.status()["workers"]["pids"]) >= 1, 60)
    [worker] = cloud.status()["workers"]["pids"]
    daemon = int(cloud.state["pid"])
    os.kill(daemon, signal.SIGKILL)  # a crash: the daemon cannot drain its workers
    assert wait_for(lambda: not alive(daemon) or _reap(daemon), 10)
    assert alive(worker) and leftover_workers(cloud.state_dir) == [worker]
    down(cloud.state_dir)
    assert wait_for(lambda: not alive(worker), 10)  # the daemon could not stop it; down did
    assert leftover_workers(cloud.state_dir) == []


def _reap(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return not alive(pid)
