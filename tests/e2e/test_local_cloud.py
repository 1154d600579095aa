"""`queue-scaler local up|status|down` and `queue-scaler invoke` (CONTRACTS.md sections 2 and 3)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devkit.localcloud import stack
from devkit.localcloud.control import down, leftover_workers
from devkit.localcloud.stack import LocalSettings
from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.refund import RefundPolicy, envelope_reservation
from queue_scaler.shared.jobs import JobEnvelope
from tests.e2e.conftest import alive

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
COMMAND_STATUS = "EC2 Command Invocation Status-change Notification"
SCALER_EVENTS = sorted((ROOT / "events" / "scaler").glob("*.json"))
NOW = "2026-01-01T00:00:00+00:00"


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
    # The same options reuse the running cloud; other ones are refused, naming the difference.
    same = cli("local", "--state-dir", str(cloud.state_dir), "up", "--schedule-seconds", "5")
    assert same.returncode == 0 and same.stdout.strip() == cloud.endpoint_url
    other = cli("local", "--state-dir", str(cloud.state_dir), "up", "--schedule-seconds", "0")
    assert other.returncode == 2 and "--schedule-seconds 5, not 0" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


def test_given_local_up_starting_when_ctrl_c_then_nothing_keeps_running_and_one_line_is_printed(tmp_path: Path) -> None:
    state_dir = tmp_path / "cloud"
    starting = subprocess.Popen(
        [sys.executable, "-m", "devkit.cli", "local", "--state-dir", str(state_dir), "up"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as a terminal's foreground job
    )
    assert wait_for(lambda: _daemons(state_dir), 60)  # the daemon is starting (it takes seconds to be ready)
    daemons = _daemons(state_dir)
    os.killpg(starting.pid, signal.SIGINT)  # what Ctrl-C sends (the daemon, in its own session, gets nothing)
    _, stderr = starting.communicate(timeout=90)
    assert starting.returncode == 130 and "Traceback" not in stderr
    assert stderr.strip().splitlines() == ["queue-scaler local: stopped by SIGINT"]
    assert wait_for(lambda: not [p for p in daemons if alive(p)], 30)
    assert leftover_workers(state_dir) == [] and not (state_dir / "state.json").exists()


def _daemons(state_dir: Path) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes()
            if b"devkit.localcloud.daemon" in cmdline and str(state_dir).encode() in cmdline:
                found.append(int(proc.name))
    return found


def long_job(job_id: str) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "user_id": "u-e2e",
        "plan": "pro",
        "kind": "e2e.sleep",
        "credits": 0,
        "submitted_at": "2026-11-22T10:00:00Z",
        "payload": {"seconds": 600},
    }


def test_given_backlog_when_invoking_the_scaler_on_each_event_then_it_raises_desired(cloud_factory: Any) -> None:
    # Schedule off: any scale-out comes from the invocations themselves.
    cloud = cloud_factory(schedule_seconds=0)
    url = cloud.queue_url("queue-scaler-local-video-pro")
    # Jobs that run for longer than the test: in flight, they stay backlog however fast the workers
    # start and however slowly a busy machine runs the invocations, so every event must ask for 4.
    for batch in range(3):
        bodies = [long_job(f"b{batch}-{i}") for i in range(10)]
        cloud.reserve(bodies, pool="video")  # or the workers refuse the jobs and the backlog is gone
        entries = [{"Id": str(i), "MessageBody": json.dumps(body)} for i, body in enumerate(bodies)]
        cloud.sqs.send_message_batch(QueueUrl=url, Entries=entries)
    for event in SCALER_EVENTS:
        # Each sample on its own: the pool back at zero, so that its invocation is what scales it.
        cloud.autoscaling.set_desired_capacity(AutoScalingGroupName="queue-scaler-local-video", DesiredCapacity=0)
        run = cli("invoke", "ScalerFunction", str(event), *cloud.local, "--env", "RUN_SECONDS=0")
        assert run.returncode == 0, run.stderr[-2000:]
        pools = {p["pool"]: p for p in json.loads(run.stdout)["pools"]}
        assert pools["video"]["decision"]["desired"] == 4 and pools["video"]["applied"], event.name  # ceil(30 / 8)
        assert cloud.status()["pools"]["video"]["desired"] == 4, event.name
    names = {e.name for e in SCALER_EVENTS}
    assert {"sam-generated-scheduled.json", "scheduler.json", "lambda-alarm-action.json"} <= names


def test_given_a_handler_that_raises_when_invoked_then_it_exits_1(cloud_factory: Any, tmp_path: Path) -> None:
    cloud = cloud_factory(schedule_seconds=0)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"source": "aws.events", "detail-type": "Not A Schedule"}))
    missing = "POOL_CONFIG_PARAMETER=/queue-scaler/no-such-stack/pools"
    run = cli("invoke", "ScalerFunction", str(bad), *cloud.local, "--env", missing)
    assert run.returncode == 1 and "/queue-scaler/no-such-stack/pools" in run.stderr
    unknown = cli("invoke", "NoSuchFunction", str(bad), *cloud.local)
    assert unknown.returncode == 2 and "ScalerFunction" in unknown.stderr
    # Errors name what they are about, in one line, with exit 2.
    bad.write_text("{not json")
    for args, named in (
        (("ScalerFunction", str(bad)), str(bad)),
        (("ScalerFunction", str(tmp_path / "missing.json")), "missing.json"),
        (("ScalerFunction", "events/scaler/scheduled.json", "--env", "FOO"), "--env FOO"),
    ):
        failed = cli("invoke", *args, *cloud.local)
        assert failed.returncode == 2 and named in failed.stderr and len(failed.stderr.splitlines()) == 1, args


def test_given_a_running_cloud_with_workers_when_down_then_no_process_is_left(cloud_factory: Any) -> None:
    cloud = cloud_factory()
    url = cloud.queue_url("queue-scaler-local-ai-free")
    envelope = {"user_id": "u", "plan": "free", "kind": "k", "credits": 0, "submitted_at": "2026-11-22T10:00:00Z"}
    bodies = [{**envelope, "job_id": f"d{i}", "payload": {"seconds": 30}} for i in range(10)]
    cloud.reserve(bodies, pool="ai")
    entries = [{"Id": str(i), "MessageBody": json.dumps(body)} for i, body in enumerate(bodies)]
    cloud.sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert wait_for(lambda: len(cloud.status()["workers"]["pids"]) >= 2, 60)
    pids = cloud.status()["workers"]["pids"]
    daemon = int(cloud.state["pid"])
    assert down(cloud.state_dir)
    assert not alive(daemon)
    assert [pid for pid in pids if alive(pid)] == []
    assert cli("local", "--state-dir", str(cloud.state_dir), "status").returncode == 1


# About 20 invocations, each a fresh process importing a handler: on a busy 2-core machine that is
# several minutes, and every wait inside is bounded by its own condition.
@pytest.mark.timeout(900)
def test_given_every_sample_event_when_invoked_with_local_then_each_changes_what_status_shows(
    cloud_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The samples name the dev stack and instances the local cloud does not have; `--local` maps them.

    Nothing but the samples reconciles here (no schedule), and Run Command's status events are lost
    (fault injection): the reconcile and command-status samples are what moves a lifecycle action on."""
    cloud = cloud_factory(schedule_seconds=0, reconcile=False, drop_lifecycle_events=(COMMAND_STATUS,))
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }.items():
        monkeypatch.setenv(name, value)  # this process's ledger client, as a producer's

    def invoke(function: str, sample: str, *more: str) -> dict[str, Any]:
        run = cli("invoke", function, f"events/{sample}", *cloud.local, *more)
        assert run.returncode == 0, (sample, run.stderr[-1500:])
        result: dict[str, Any] = json.loads(run.stdout) or {}
        return result

    def lifecycle(sample: str) -> bool:
        invoke("LifecycleFunction", f"lifecycle/{sample}")
        return True

    # Metrics: what the function publishes (EMF) becomes CloudWatch metrics, as on AWS.
    # An idle stack publishes nothing; a pool under target tracking gets its figure every minute.
    assert cloud.status()["metrics"] == []
    invoke("MetricsFunction", "metrics/scheduled.json")
    assert cloud.status()["metrics"] == []
    tracked = ("--env", "TARGET_TRACKING_POOLS=messaging")
    invoke("MetricsFunction", "metrics/scheduled.json", *tracked)
    assert "BacklogPerInstance" in cloud.status()["metrics"]
    invoke("MetricsFunction", "metrics/sam-generated-scheduled.json", *tracked)
    assert "BacklogPerInstance" in cloud.status()["metrics"]

    # Refunds: the jobs the samples dead-letter reserved their credits first, as a producer does.
    ledger = DynamoLedger(stack.ledger_table(LocalSettings()), cloud.dynamodb)
    now = datetime.now(UTC)
    for user, job, plan, credits in (("u-7", "j-1001", "pro", 12), ("u-9", "j-2001", "studio", 4)):
        ledger.deposit(user, 100, f"e2e-{user}", now)  # a purchase reference credits one user
        kind = "video.transcode"
        envelope = JobEnvelope(job_id=job, user_id=user, plan=plan, kind=kind, credits=credits, submitted_at=now)
        ledger.reserve(envelope_reservation(envelope, "video", RefundPolicy(), now), claim=f"submit-{job}")
    invoke("DlqRefundFunction", "dlq_refund/batch.json")
    after_batch = cloud.status(ledger=True)["ledger"]
    assert after_batch["refunds"] == 1 and after_batch["parked"] >= 1  # j-1001 refunded once; the malformed parked
    assert after_batch["balances"]["u-7"] == 100
    invoke("DlqRefundFunction", "dlq_refund/sam-generated-receive-message.json")
    book = cloud.status(ledger=True)["ledger"]
    assert book["refunds"] == 2 and book["balances"]["u-9"] == 100

    # Lifecycle: the samples' instance stands for a real video instance, whose worker is checked or drained.
    # Four: the terminate, Spot, rebalance and SQS batch samples each need a worker not already leaving,
    # and nothing admits a replacement here once the reconcile samples below have stopped.
    cloud.autoscaling.set_desired_capacity(AutoScalingGroupName="queue-scaler-local-video", DesiredCapacity=4)

    def actions(state: str) -> list[dict[str, str]]:
        return [a for a in cloud.status()["lifecycle"]["recorded"] if a["state"] == state]

    def healthy_video() -> list[str]:
        instances = cloud.status()["pools"]["video"]["instances"]
        return [i["id"] for i in instances if i["state"] == "InService" and i["healthy"]]

    # The launches' health checks ran, but their status events were lost: each reconcile sample reads
    # the commands' results, admits the healthy instances and completes their actions.
    assert wait_for(lambda: sum(a["kind"] == "launch" for a in actions("pending")) >= 4, 90)
    assert actions("completed") == []
    assert wait_for(
        lambda: lifecycle("reconcile-scheduled.json") and len(healthy_video()) == 4,
        180,
    )
    assert sum(a["kind"] == "launch" for a in actions("completed")) >= 4

    def instances() -> set[str]:
        return {i["id"] for pool in cloud.status()["pools"].values() for i in pool["instances"]}

    def recorded(kind: str) -> list[str]:
        return [a["instance_id"] for a in cloud.status()["lifecycle"]["recorded"] if a["kind"] == kind]

    for sample, kind in (
        ("launch.json", "launch"),
        ("terminate.json", "terminate"),
        ("spot-interruption.json", "spot"),
        ("rebalance-recommendation.json", "rebalance"),
        ("sqs-batch.json", "terminate"),  # its other record is no event the function knows: logged, not retried
    ):
        before, seen = recorded(kind), instances()
        invoke("LifecycleFunction", f"lifecycle/{sample}")
        new = set(recorded(kind)) - set(before)
        # A new action on one of the local cloud's instances (a launch sample's instance may have one already; a
        # drained one is replaced meanwhile). The Spot and rebalance samples name no group: any pool's will do.
        assert len(recorded(kind)) > len(before) and new <= seen | instances(), (sample, new)
    # The terminate, Spot and SQS batch samples each drained a worker: SIGTERM, and it exited.
    assert wait_for(lambda: len(cloud.status()["workers"]["finished"]) >= 3, 90)

    # Their drains are done, but no status event said so: the command-status sample reports on one of
    # the commands still waited for, and that action completes.
    def waited_for() -> set[tuple[str, str]]:
        return {(a["instance_id"], a["command_id"]) for a in actions("pending") if a.get("command_id")}

    waiting = waited_for()
    assert waiting
    assert wait_for(
        lambda: lifecycle("command-invocation-status.json") and len(waited_for() & waiting) < len(waiting),
        60,
    )
    # The reconcile sample completes the others.
    assert wait_for(lambda: lifecycle("reconcile-scheduled.json") and not waited_for(), 90)


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
