"""Jobs from submission to settlement on the local cloud (CONTRACTS.md section 6).

A product deposits credits and submits jobs with the CLI; real workers run them and record each
attempt in the ledger; DlqRefundFunction refunds only jobs that failed for good. Forced drains
(SIGTERM to a busy worker) release jobs; releases never count toward a refund: a released job that
reaches its DLQ goes back to its queue, and completes exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from devkit.localcloud import stack
from devkit.localcloud.control import down
from devkit.localcloud.report import JobReport, read_worker_logs
from devkit.localcloud.stack import LocalSettings
from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.ledger import AttemptOutcome, JobRecord
from tests.e2e.conftest import Cloud, alive

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = LocalSettings()
GROUP = f"{SETTINGS.stack}-video"
CREDITS = 7
#: How much longer than the drain window a long job of the forced-drains test runs.
JOB_MARGIN_SECONDS = 25
QUEUE = f"{SETTINGS.stack}-video-pro"


def cli(cloud: Cloud, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devkit.cli", *args, *cloud.local],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def wait_for(check: Any, seconds: float, what: str, state: Any = None) -> None:
    """Poll `check` until it holds; fail naming `what` (and what `state()` says then) after `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}" + (f": {state()}" if state else "")
        time.sleep(0.5)


def session() -> boto3.session.Session:
    return boto3.session.Session(region_name=SETTINGS.region, aws_access_key_id="local", aws_secret_access_key="local")


def ledger(cloud: Cloud) -> DynamoLedger:
    return DynamoLedger(stack.ledger_table(SETTINGS), session().client("dynamodb", endpoint_url=cloud.endpoint_url))


def set_video_capacity(cloud: Cloud, desired: int) -> None:
    session().client("autoscaling", endpoint_url=cloud.endpoint_url).set_desired_capacity(
        AutoScalingGroupName=GROUP, DesiredCapacity=desired, HonorCooldown=False
    )


def notices_inbox(cloud: Cloud) -> str:
    """An SQS queue subscribed to the users' notice topic, as an email or app subscriber would be."""
    url = cloud.sqs.create_queue(QueueName="test-notices")["QueueUrl"]
    arn = cloud.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    session().client("sns", endpoint_url=cloud.endpoint_url).subscribe(
        TopicArn=stack.notice_topic_arn(SETTINGS), Protocol="sqs", Endpoint=arn
    )
    return str(url)


def received(cloud: Cloud, url: str) -> list[dict[str, Any]]:
    """The notices delivered since the last call (each deleted once read, so never read twice)."""
    messages = cloud.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    for message in messages:
        cloud.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(json.loads(m["Body"])["Message"]) for m in messages]


def submit(cloud: Cloud, job_id: str, payload: dict[str, Any], credits: int = CREDITS) -> None:
    run = cli(cloud, "submit", "--kind", "video.render", "--plan", "pro", "--user", "u-e2e", "--credits",
              str(credits), "--job-id", job_id, "--payload", json.dumps(payload))  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"job_id": job_id, "queue": QUEUE, "reserved": credits, "duplicate": False}


def shown(cloud: Cloud, job_id: str) -> dict[str, Any]:
    run = cli(cloud, "jobs", "show", job_id, "--json")
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


def dead_letter_event(cloud: Cloud, tmp_path: Path, job_id: str) -> Path:
    """The job's dead letter as DlqRefundFunction receives it (its body exactly as the producer sent it)."""
    record = json.loads((ROOT / "events" / "dlq_refund" / "batch.json").read_text())["Records"][0]
    job = ledger(cloud).job(job_id)
    assert job is not None
    body = {"job_id": job_id, "user_id": job.user_id, "plan": job.plan, "kind": job.kind, "credits": job.credits,
            "submitted_at": "2026-11-22T10:00:00Z", "payload": {}}  # fmt: skip
    source = f"arn:aws:sqs:{SETTINGS.region}:123456789012:{QUEUE}"
    record |= {"messageId": f"replay-{job_id}", "body": json.dumps(body)}
    record["attributes"] |= {"DeadLetterQueueSourceArn": source, "ApproximateReceiveCount": "3"}
    path = tmp_path / f"{job_id}.json"
    path.write_text(json.dumps({"Records": [record]}))
    return path


def invoke_refund(cloud: Cloud, event: Path) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-m", "devkit.cli", "invoke", "DlqRefundFunction", str(event), "--state-dir",
         str(cloud.state_dir)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return dict(json.loads(run.stdout))


def test_given_credits_when_a_failing_and_a_succeeding_job_are_submitted_then_only_the_failure_is_refunded(
    cloud_factory: Any, tmp_path: Path
) -> None:
    cloud = cloud_factory(schedule_seconds=0)
    inbox = notices_inbox(cloud)
    deposit = cli(cloud, "credits", "deposit", "u-e2e", "100", "--reference", "purchase-1")
    assert deposit.returncode == 0 and json.loads(deposit.stdout) == {"user_id": "u-e2e", "balance": 100}
    submit(cloud, "e2e-fails", {"seconds": 0.2, "fail": True})
    submit(cloud, "e2e-works", {"seconds": 0.2})
    set_video_capacity(cloud, 1)

    wait_for(lambda: shown(cloud, "e2e-fails")["outcome"] == "refunded", 120, "the failing job refunded")
    wait_for(lambda: shown(cloud, "e2e-works")["outcome"] == "completed", 60, "the good job completed")
    failed = shown(cloud, "e2e-fails")
    assert [a["outcome"] for a in failed["attempts"]] == ["failed"] * SETTINGS.max_receive_count
    assert all("failed on purpose" in a["reason"] for a in failed["attempts"])
    notices: list[dict[str, Any]] = []
    wait_for(lambda: bool(notices.extend(received(cloud, inbox))) or bool(notices), 30, "the user's notice")
    account = ledger(cloud).account("u-e2e")
    assert account is not None and (account.refunded, account.balance) == (7, 93)  # the good job is charged

    # Replayed to the function: the refunded job changes nothing, the completed one is never refunded.
    for _ in range(2):
        for job_id in ("e2e-fails", "e2e-works"):
            assert invoke_refund(cloud, dead_letter_event(cloud, tmp_path, job_id)) == {"batchItemFailures": []}
    notices.extend(received(cloud, inbox))
    assert [n["job_id"] for n in notices] == ["e2e-fails"]
    account = ledger(cloud).account("u-e2e")
    assert account is not None and (account.refunded, account.balance, account.reserved) == (7, 93, 14)
    assert (shown(cloud, "e2e-fails")["outcome"], shown(cloud, "e2e-works")["outcome"]) == ("refunded", "completed")
    status = cloud.status(ledger=True)["ledger"]
    assert (status["refunds"], status["outcomes"]["completed"], status["outcomes"]["refunded"]) == (1, 1, 1)


def test_given_one_job_put_three_times_on_two_workers_with_two_slots_then_it_runs_once_and_is_charged_once(
    cloud_factory: Any,
) -> None:
    # At-least-once delivery, or a producer's resend: three copies of one job's message, and four slots
    # (two instances, 2 each) free to take them at once. The run lease lets one copy run; the others
    # wait for it and are deleted once it completed. Every actor runs under its own role (IAM enforced).
    cloud = cloud_factory(schedule_seconds=0)
    assert cli(cloud, "credits", "deposit", "u-e2e", "100", "--reference", "grant").returncode == 0
    job_id = "e2e-copies"
    submit(cloud, job_id, {"seconds": 3})
    job = ledger(cloud).job(job_id)
    assert job is not None
    body = {"job_id": job_id, "user_id": job.user_id, "plan": job.plan, "kind": job.kind, "credits": job.credits,
            "submitted_at": "2026-11-22T10:00:00Z", "payload": {"seconds": 3}}  # fmt: skip
    url = cloud.queue_url(QUEUE)
    for _ in range(2):
        cloud.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    set_video_capacity(cloud, 2)

    def settled() -> bool:
        queue = cloud.status()["queues"][QUEUE]
        return shown(cloud, job_id)["outcome"] == "completed" and queue["visible"] == queue["in_flight"] == 0

    # The copies that found the lease come back when it would have expired (the visibility timeout).
    wait_for(settled, 3 * SETTINGS.visibility_timeout + 120, "the job completed and every copy deleted")
    attempts = shown(cloud, job_id)["attempts"]
    account = ledger(cloud).account("u-e2e")
    down(cloud.state_dir)
    assert [a["outcome"] for a in attempts] == ["completed"], attempts
    report = JobReport({job_id})
    read_worker_logs(cloud.state_dir / "instances", report)
    assert report.completions[job_id] == 1  # the handler ran once
    assert account is not None and (account.balance, account.refunded) == (100 - CREDITS, 0)  # charged once


@pytest.mark.timeout(1200)
def test_given_forced_drains_beyond_max_receive_count_then_each_job_completes_once_and_none_is_refunded(
    cloud_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One worker, 2 slots and 2 prefetched: of 3 jobs longer than the drain window, 2 run and 1 waits
    # prefetched; a forced drain releases the running ones at the deadline and the prefetched one at
    # once. A released run keeps its lease until its process is gone (the stop timeout), so copies
    # received meanwhile come back later: every receive costs one of maxReceiveCount, and a worker
    # drained whenever it runs anything sends every job through its DLQ before any can finish.
    # A job runs JOB_MARGIN_SECONDS longer than the drain window: the time this test has to see it
    # running and signal its worker. A few seconds were not enough on a busy machine (CI): the drain
    # began so late that the jobs completed inside it, never sent through their DLQ.
    monkeypatch.setenv("WORKER_PREFETCH", "2")
    cloud = cloud_factory(schedule_seconds=0)
    assert cli(cloud, "credits", "deposit", "u-e2e", "100", "--reference", "grant").returncode == 0
    jobs = [f"e2e-long-{i}" for i in range(3)]
    for job_id in jobs:
        submit(cloud, job_id, {"seconds": SETTINGS.drain_seconds + JOB_MARGIN_SECONDS})
    set_video_capacity(cloud, 1)
    book = ledger(cloud)

    def records() -> list[JobRecord]:
        return [r for r in (book.job(j) for j in jobs) if r is not None]

    def states() -> dict[str, Any]:
        return {r.job_id: (r.outcome, r.returns, dict(r.tally())) for r in records()}

    def running() -> int:
        return sum(r.outcome == "running" for r in records())

    def drain() -> None:
        [instance] = [i for i in cloud.status()["pools"]["video"]["instances"] if i["worker_pid"]]
        if alive(instance["worker_pid"]):
            os.kill(instance["worker_pid"], signal.SIGTERM)
        wait_for(lambda: not alive(instance["worker_pid"]), 60, "the drained worker to exit")

    # The first drain: two jobs running on the one worker and the third held prefetched.
    wait_for(lambda: cloud.status()["queues"][QUEUE]["in_flight"] == len(jobs) and running() == 2, 90, "2 running")
    drain()
    drains = 1
    while not all(r.returns >= 1 for r in records()):
        assert drains <= 6 * SETTINGS.max_receive_count, states()

        # A new instance, admitted by its launch hook, after the drained one's leases are cut: minutes
        # on a loaded machine. Drained only while a job that its DLQ never sent back runs: one that came
        # back already is let finish, since draining it again and again would use up its returns
        # (MaxDeadLetterReturns) and settle it as failed for good, which this test is not about.
        def unreturned_runs_or_all_returned() -> bool:
            now = records()
            # A job completed before its DLQ ever sent it back: the drain came too late for this test's
            # premise (say so now, with every job's state, rather than wait for what cannot happen).
            assert not any(r.outcome == "completed" and r.returns == 0 for r in now), states()
            return all(r.returns >= 1 for r in now) or any(r.outcome == "running" and r.returns == 0 for r in now)

        wait_for(unreturned_runs_or_all_returned, 300, "a job running again", states)
        if not all(r.returns >= 1 for r in records()):
            drain()
            drains += 1

    wait_for(lambda: all(r.outcome == "completed" for r in records()), 300, "every job completed", states)
    status, final, account = cloud.status(ledger=True), records(), book.account("u-e2e")
    down(cloud.state_dir)
    report = JobReport(set(jobs))
    read_worker_logs(cloud.state_dir / "instances", report)
    assert {job: report.completions[job] for job in jobs} == dict.fromkeys(jobs, 1)  # exactly once each

    tallies = {r.job_id: r.tally() for r in final}
    assert all(t[AttemptOutcome.RELEASED] >= 1 for t in tallies.values()), tallies
    assert all(t[AttemptOutcome.FAILED] == 0 and t[AttemptOutcome.COMPLETED] == 1 for t in tallies.values()), tallies
    # Each job was received (and released) more often than maxReceiveCount allows: its DLQ sent it back.
    assert all(r.returns >= 1 for r in final), {r.job_id: r.returns for r in final}
    # The prefetched message at the first drain was released before it ever started: its receive was
    # a release, recorded as such, not a failure.
    prefetched = Counter(a.reason for r in final for a in r.attempts if a.outcome == AttemptOutcome.RELEASED)
    assert prefetched["not started before stop"] >= 1, prefetched
    assert account is not None and (account.refunded, account.balance) == (0, 100 - len(jobs) * CREDITS)
    assert status["ledger"]["refunds"] == 0 and status["ledger"]["outcomes"]["completed"] == 3
