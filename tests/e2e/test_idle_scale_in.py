"""Scale-in takes idle instances: busy workers keep scale-in protection on until their jobs end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from devkit.localcloud.control import down
from devkit.localcloud.report import JobReport, read_worker_logs
from tests.e2e.conftest import unclean_exits, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
GROUP = "queue-scaler-local-video"
QUEUE = "queue-scaler-local-video-pro"
#: Longer than the local cloud's 5 s drain window: a drain would cut these jobs short.
JOB_SECONDS = 15


def started(state_dir: Path, job: str) -> bool:
    report = JobReport({job})
    read_worker_logs(state_dir / "instances", report)
    return job in report.started


def test_given_three_of_four_instances_busy_when_scaled_to_one_then_only_idle_ones_go_and_no_job_is_cut(
    cloud_factory: Any,
) -> None:
    cloud = cloud_factory(schedule_seconds=0)  # the test sets capacity itself
    autoscaling = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local"
    ).client("autoscaling", endpoint_url=cloud.endpoint_url)

    def instances() -> dict[str, dict[str, Any]]:
        [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
        return {i["InstanceId"]: i for i in group["Instances"]}

    def protected() -> set[str]:
        return {i for i, d in instances().items() if d["ProtectedFromScaleIn"]}

    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=4, HonorCooldown=False)
    wait_for(
        lambda: sum(1 for d in instances().values() if d["LifecycleState"] == "InService") == 4, 90, "4 in service"
    )

    # One long job at a time until three instances hold one (a worker has two slots, so a fourth
    # job may land beside another): scale-in protection marks each busy one.
    url = cloud.queue_url(QUEUE)
    jobs: list[str] = []
    while len(protected()) < 3:
        assert len(jobs) < 8, f"only {protected()} protected after {len(jobs)} jobs"
        job = f"long-{len(jobs)}"
        jobs.append(job)
        body = {
            "job_id": job,
            "user_id": "u",
            "plan": "pro",
            "kind": "k",
            "credits": 1,
            "submitted_at": datetime.now(UTC).isoformat(),
            "payload": {"seconds": JOB_SECONDS},
        }
        cloud.reserve([body], pool="video")
        cloud.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
        # A worker protects its instance before it starts the job it received.
        wait_for(lambda j=job: started(cloud.state_dir, j), 30, f"job {job} to start")  # type: ignore[misc]
    busy = protected()
    [idle] = set(instances()) - busy

    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1, HonorCooldown=False)
    # The idle one goes first; while the jobs run, every busy instance stays in service.
    wait_for(lambda: idle not in instances(), 60, "the idle instance to go")
    running = instances()
    assert busy <= set(running)
    assert all(running[i]["LifecycleState"] == "InService" for i in busy), running

    # Then each busy one goes as its job ends, down to the desired one.
    wait_for(lambda: len(instances()) == 1, 120, "the group to reach 1 instance")
    status = cloud.status()
    queue = status["queues"][QUEUE]
    finished = status["workers"]["finished"]
    down(cloud.state_dir)

    report = JobReport(set(jobs))
    read_worker_logs(cloud.state_dir / "instances", report)
    assert report.lost == set() and report.duplicates == set() and report.completed == len(jobs)
    assert report.released == set(), "a job was released by a drain"
    assert queue["visible"] == queue["in_flight"] == queue["dlq"] == 0
    # Every removed worker drained idle: SIGTERM only (never a SIGKILL), exit 0. On a loaded machine a
    # lifecycle step can fail after its drain went out, and the drain the service then sends without a
    # record (LifecycleService._drain_unrecorded) may be a second one: a second SIGTERM only makes the
    # worker read its stop notice again.
    gone = [w for w in finished if w["pool"] == "video"]
    assert len(gone) == 3, gone
    unclean = unclean_exits(cloud.state_dir, gone)
    assert not unclean, unclean
