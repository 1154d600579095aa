"""Scale-in while jobs run: the terminate hook drains each worker (SIGTERM, finish) before it goes."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from devkit.localcloud.control import down
from devkit.localcloud.report import JobReport, read_worker_logs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
GROUP = "queue-scaler-local-video"


def test_given_jobs_running_when_the_group_scales_in_then_none_is_lost_and_every_action_completes(
    cloud_factory: Any,
) -> None:
    cloud = cloud_factory(schedule_seconds=0)  # the test sets capacity itself
    autoscaling = boto3.session.Session(
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    ).client("autoscaling", endpoint_url=cloud.endpoint_url)
    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=3, HonorCooldown=False)

    def serving() -> int:
        return int(cloud.status()["pools"]["video"]["in_service"])

    deadline = time.monotonic() + 60
    while serving() < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert serving() == 3

    url = cloud.queue_url("queue-scaler-local-video-pro")
    jobs = {f"long-{i}": i for i in range(12)}
    now = datetime.now(UTC).isoformat()
    bodies = [
        {
            "job_id": job,
            "user_id": "u",
            "plan": "pro",
            "kind": "k",
            "credits": 1,
            "submitted_at": now,
            "payload": {"seconds": 3},
        }
        for job in jobs
    ]
    # Each job reserved first, as a producer does: a worker refuses a job the ledger holds no reservation for.
    cloud.reserve(bodies, pool="video")
    for start in range(0, len(bodies), 10):
        cloud.sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "MessageBody": json.dumps(body)} for n, body in enumerate(bodies[start : start + 10])
            ],
        )
    # Wait until every worker holds a job, then take two instances away mid-job.
    deadline = time.monotonic() + 30
    while cloud.status()["queues"]["queue-scaler-local-video-pro"]["in_flight"] < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1, HonorCooldown=False)

    def settled() -> bool:
        status = cloud.status()
        queue = status["queues"]["queue-scaler-local-video-pro"]
        pool = status["pools"]["video"]
        return queue["visible"] == queue["in_flight"] == 0 and len(pool["instances"]) == 1

    deadline = time.monotonic() + 120
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert settled()
    status = cloud.status()
    lifecycle = status["lifecycle"]
    finished = status["workers"]["finished"]
    down(cloud.state_dir)

    report = JobReport(set(jobs))
    read_worker_logs(cloud.state_dir / "instances", report)
    assert report.lost == set() and report.duplicates == set() and report.completed == len(jobs)
    # Two drained workers exited cleanly (exit 0 after SIGTERM), through the terminate hook.
    drained = [w for w in finished if w["pool"] == "video"]
    assert len(drained) == 2 and all(w["exit_code"] == 0 and w["signals"] == ["SIGTERM"] for w in drained)
    assert lifecycle["pending"] == 0 and lifecycle["timed_out"] == 0
    assert lifecycle["results"].get("CONTINUE", 0) >= 2 + 3 + 1  # 3 video + 1 messaging launches, 2 drains
