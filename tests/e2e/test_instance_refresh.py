"""A new image while jobs run: the scaler starts an instance refresh and does not fight it.

A deploy with a new AMI or image URI only writes a new launch template version into the group
(`queue-scaler local new-image`, what CloudFormation does without an UpdatePolicy). The scaler sees instances of
the older version and starts an instance refresh; the local cloud runs it as Auto Scaling does:
launch before terminate (MinHealthyPercentage 100, MaxHealthyPercentage 200), each replacement
through the launch gate, each old instance, protected or not, through the terminate hook's drain.
Real workers run the jobs throughout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devkit.localcloud import stack
from devkit.localcloud.control import down
from devkit.localcloud.report import JobReport, read_worker_logs
from devkit.localcloud.stack import LocalSettings
from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.ledger import AttemptOutcome
from tests.e2e.conftest import Cloud, unclean_exits, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = LocalSettings()
QUEUE = f"{SETTINGS.stack}-video-pro"
JOBS = 48
#: Each job's run time: shorter than the drain window (LocalSettings.drain_seconds), so a drained
#: worker finishes what it runs.
JOB_SECONDS = 3
#: Jobs sent from the start until the refresh is over (two every FEED_SECONDS, at most FEED_JOBS): work
#: keeps arriving, so on a busy machine the first instance does not finish everything before a second
#: is in service, and the pool is never idle enough to scale its old instances in before the scaler
#: starts the refresh (the recommended policy's windows are short on the time-compressed local cloud).
FEED_JOBS = 60
FEED_SECONDS = 2.0


def send_jobs(cloud: Cloud, jobs: list[str]) -> None:
    now = datetime.now(UTC).isoformat()
    bodies = [
        {"job_id": job, "user_id": "u-refresh", "plan": "pro", "kind": "video.render", "credits": 1,
         "submitted_at": now, "payload": {"seconds": JOB_SECONDS}}
        for job in jobs
    ]  # fmt: skip
    cloud.reserve(bodies, pool="video")
    url = cloud.queue_url(QUEUE)
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(n), "MessageBody": json.dumps(b)} for n, b in enumerate(bodies[start : start + 10])]
        cloud.sqs.send_message_batch(QueueUrl=url, Entries=entries)


def test_given_jobs_running_when_a_new_image_is_deployed_then_a_refresh_replaces_every_instance_and_no_job_is_lost(
    cloud_factory: Any,
) -> None:
    cloud = cloud_factory()  # the scaler runs on its schedule: it sizes the pool and starts the refresh
    jobs = [f"refresh-{i:02d}" for i in range(JOBS)]
    send_jobs(cloud, jobs)

    def video() -> dict[str, Any]:
        return dict(cloud.status()["pools"]["video"])

    stop_feeding = threading.Event()

    def feed() -> None:
        sent = 0
        while sent < FEED_JOBS and not stop_feeding.wait(FEED_SECONDS):
            more = [f"refresh-feed-{sent + n:02d}" for n in range(2)]
            send_jobs(cloud, more)
            jobs.extend(more)
            sent += len(more)

    feeder = threading.Thread(target=feed, name="feeder", daemon=True)
    feeder.start()
    try:
        # Jobs run on at least two instances of version 1, all serving: then the new image is deployed.
        def busy() -> bool:
            status = cloud.status()
            pool = status["pools"]["video"]
            serving = pool["in_service"] == len(pool["instances"]) >= 2
            return serving and status["queues"][QUEUE]["in_flight"] >= 2

        wait_for(busy, 120, "jobs running on two instances")
        before = video()
        old = {i["id"] for i in before["instances"]}
        assert {i["launch_template_version"] for i in before["instances"]} == {"1"}
        # The deploy, as `queue-scaler local new-image` makes it (devkit.localcloud.stack.new_image).
        deploy = subprocess.run(
            [sys.executable, "-m", "devkit.cli", "local", "--state-dir", str(cloud.state_dir), "new-image", "video"],
            capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
        )  # fmt: skip
        assert (deploy.returncode, deploy.stdout.strip()) == (0, "2"), deploy.stderr

        # The scaler starts one refresh; it completes with every instance on the new version and the jobs done.
        def refreshed() -> bool:
            pool = video()
            return (
                [r["status"] for r in pool["refreshes"]] == ["Successful"]
                and bool(pool["instances"])
                and {i["launch_template_version"] for i in pool["instances"]} == {"2"}
            )

        wait_for(lambda: len(video()["refreshes"]) == 1, 60, "the scaler to start an instance refresh")
        wait_for(refreshed, 240, "the refresh to replace every instance")
    finally:
        stop_feeding.set()
        feeder.join(30)
    assert not feeder.is_alive()

    def settled() -> bool:
        queue = cloud.status()["queues"][QUEUE]
        return queue["visible"] == queue["in_flight"] == 0

    wait_for(settled, 120, "every job to finish")
    status = cloud.status(ledger=True)
    pool = status["pools"]["video"]
    [refresh] = pool["refreshes"]
    ledger = DynamoLedger(stack.ledger_table(SETTINGS), cloud.dynamodb)
    records = {job: ledger.job(job) for job in jobs}
    down(cloud.state_dir)

    # Launch before terminate, protected busy instances replaced too (the worker protects its instance).
    assert refresh["preferences"]["MinHealthyPercentage"] == 100
    assert refresh["preferences"]["ScaleInProtectedInstances"] == "Refresh"
    assert refresh["total"] >= 2 and old.isdisjoint(i["id"] for i in pool["instances"])
    # Not fought: while the refresh ran, no change of desired capacity lowered it.
    during = [(before_, after) for _at, before_, after, refreshing in pool["desired_changes"] if refreshing]
    assert all(after >= before_ for before_, after in during), pool["desired_changes"]
    # Each old instance left through the terminate hook: drained, its worker exited cleanly on SIGTERM.
    drained = [w for w in status["workers"]["finished"] if w["instance_id"] in old]
    assert len(drained) == len(old), status["workers"]["finished"]
    # A drain sent again under load (a second SIGTERM) is allowed, as in test_idle_scale_in; never a SIGKILL.
    unclean = unclean_exits(cloud.state_dir, drained)
    assert not unclean, unclean
    assert status["lifecycle"]["timed_out"] == 0
    # No job lost, none run twice, none failed, nothing refunded.
    report = JobReport(set(jobs))
    read_worker_logs(cloud.state_dir / "instances", report)
    assert report.lost == set() and report.duplicates == set() and report.completed == len(jobs)
    for job, record in records.items():
        assert record is not None and record.completed_at is not None, job
        outcomes = Counter(a.outcome for a in record.attempts)
        assert outcomes[AttemptOutcome.COMPLETED] == 1 and outcomes[AttemptOutcome.FAILED] == 0, (job, outcomes)
        assert outcomes[AttemptOutcome.STARTED] == 0, (job, outcomes)
        assert record.refunded == 0, job
    assert status["ledger"]["refunds"] == 0
    # The emulation itself never failed a step (it would skip the hooks' and workers' progress).
    assert "control step failed" not in (cloud.state_dir / "localcloud.log").read_text()
