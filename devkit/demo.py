"""`make demo`: the whole system on the local cloud, in compressed time.

Three pools start idle (messaging keeps one worker, video and ai are at zero). A burst of jobs across
the plans lands; the scaler (the real handler, on its schedule) scales out from zero; instances pass
the launch readiness gate and run real workers; a few jobs fail for good into the DLQs; the queues
drain; scale-in drains workers through SIGTERM. A live view shows it; at the end one summary line,
and a PNG timeline per pool under out/.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from devkit.commands.local import DEMO_DIR, down, fetch_status, up
from devkit.demo_plot import Timeline
from devkit.localcloud.ledger import local_ledger
from devkit.localcloud.report import JobReport, read_worker_logs
from devkit.localcloud.stack import LocalSettings
from devkit.ownership import claim_state_dir, release_state_dir
from queue_scaler.jobs import JobEnvelope
from queue_scaler.services.refunds import RefundService

#: Jobs per plan and pool in the burst, and how long each runs.
BURST = {"video": {"enterprise": 6, "studio": 8, "pro": 16, "starter": 14, "free": 24}, "ai": {"pro": 12, "free": 18}}
MESSAGING_JOBS = 12
JOB_SECONDS = (0.5, 2.5)
FAIL_EVERY = 10  # one job in 10 fails on every attempt and ends in its DLQ
CREDITS = {"enterprise": 20, "studio": 12, "pro": 8, "starter": 4, "free": 0}
STARTING_CREDITS = 10_000


def envelope(pool: str, plan: str, index: int, rng: random.Random) -> dict[str, Any]:
    """A job as producers submit it (CONTRACTS.md section 4)."""
    return {
        "job_id": f"{pool}-{plan}-{index}-{uuid.uuid4().hex[:6]}",
        "user_id": f"u-{rng.randint(1, 9)}",
        "plan": plan,
        "kind": f"{pool}.demo",
        "credits": CREDITS[plan],
        "submitted_at": datetime.now(UTC).isoformat(),
        "payload": {"seconds": round(rng.uniform(*JOB_SECONDS), 2), "fail": index % FAIL_EVERY == FAIL_EVERY // 2},
    }


def submit_burst(
    sqs: Any, ledger: RefundService, prefix: str, rng: random.Random, size: float = 1.0
) -> tuple[set[str], set[str]]:
    """Reserve each job's credits, then send the burst (`size` scales every count).

    Returns the submitted job ids, and those whose reservation holds credits (the refundable ones).

    This is a producer's side of the ledger: a job is submitted only once its credits are reserved.
    """
    jobs: list[tuple[str, dict[str, Any]]] = []
    for pool, plans in BURST.items():
        for plan, count in plans.items():
            jobs += [(f"{prefix}-{pool}-{plan}", envelope(pool, plan, i, rng)) for i in range(round(count * size))]
    messaging = round(MESSAGING_JOBS * size)
    jobs += [(f"{prefix}-messaging-jobs", envelope("messaging", "pro", i, rng)) for i in range(messaging)]
    now = datetime.now(UTC)
    for user in sorted({job["user_id"] for _, job in jobs}):
        ledger.deposit(user, STARTING_CREDITS, "demo-grant", now)
    charged = set()
    for _, job in jobs:
        if ledger.reserve(JobEnvelope.model_validate(job), now).amount:
            charged.add(job["job_id"])
    urls: dict[str, str] = {}
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for queue, job in jobs:
        by_queue.setdefault(queue, []).append(job)
    for queue, batch in by_queue.items():
        urls[queue] = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        for start in range(0, len(batch), 10):
            entries = [{"Id": str(i), "MessageBody": json.dumps(j)} for i, j in enumerate(batch[start : start + 10])]
            sqs.send_message_batch(QueueUrl=urls[queue], Entries=entries)
    return {job["job_id"] for _, job in jobs}, charged


def view(status: dict[str, Any], elapsed: float, submitted: int) -> Group:
    pools = Table(title=f"queue-scaler demo  t={elapsed:5.1f}s  jobs submitted: {submitted}")
    for column in ("pool", "desired", "in service", "instances", "backlog", "in flight", "DLQ"):
        pools.add_column(column)
    for name, pool in status["pools"].items():
        queues = [q for q in status["queues"].values() if q["pool"] == name]
        states = " ".join(
            i["state"].replace("Terminating", "Term").replace("Pending", "Pend") for i in pool["instances"]
        )
        pools.add_row(
            name,
            str(pool["desired"]),
            str(pool["in_service"]),
            states or "-",
            str(sum(q["visible"] for q in queues)),
            str(sum(q["in_flight"] for q in queues)),
            str(sum(q["dlq"] for q in queues)),
        )
    life = status["lifecycle"]
    decisions = Table(show_header=True, title="last decisions")
    decisions.add_column("pool")
    decisions.add_column("why")
    for outcome in status["scaler"]["last"]:
        decision = outcome.get("decision")
        why = decision["explanation"][-2] if decision and len(decision["explanation"]) > 1 else outcome.get("error", "")
        decisions.add_row(outcome["pool"], why)
    footer = (
        f"lifecycle actions: {life['completed']} completed, {life['pending']} pending, {life['timed_out']} timed out"
        f"   refunds: {status['ledger']['refunds']}"
        f"   scaler invocations: {status['scaler']['invocations']} ({status['scaler']['errors']} errors)"
    )
    return Group(pools, decisions, footer)


def settled(status: dict[str, Any]) -> bool:
    """Queues and DLQs drained (dead letters refunded), pools back at their minimum, no lifecycle action open."""
    queues_empty = all(q["visible"] == 0 and q["in_flight"] == 0 and q["dlq"] == 0 for q in status["queues"].values())
    at_minimum = all(
        p["desired"] == (1 if name == "messaging" else 0) and len(p["instances"]) == p["desired"]
        for name, p in status["pools"].items()
    )
    return queues_empty and at_minimum and status["lifecycle"]["pending"] == 0


def run(
    console: Console,
    *,
    state_dir: Path = DEMO_DIR,
    out_dir: Path = Path("out"),
    timeout: float = 170.0,
    seed: int = 7,
    size: float = 1.0,
) -> tuple[JobReport, dict[str, Any]]:
    """Play the demo; returns the job report and the final status. `size` scales the burst."""
    claim_state_dir(state_dir)
    settings = LocalSettings()
    # This process's own clients (the producer's ledger) talk only to the local cloud's endpoint.
    for key, value in {
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }.items():
        os.environ.setdefault(key, value)
    state = up(state_dir)
    rng = random.Random(seed)  # noqa: S311 - demo workload, not security
    try:
        session = boto3.session.Session(
            region_name=settings.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the local emulator's dummy credentials
        )
        sqs = session.client("sqs", endpoint_url=state["endpoint_url"])
        ledger = local_ledger(state["endpoint_url"], settings)
        timeline = Timeline(scale_down_window=settings.scale_down_window_seconds)
        started = time.monotonic()
        submitted: set[str] = set()
        charged: set[str] = set()
        status = fetch_status(state)
        with Live(view(status, 0, 0), console=console, refresh_per_second=2) as live:
            while True:
                elapsed = time.monotonic() - started
                if not submitted and elapsed >= 3:
                    submitted, charged = submit_burst(sqs, ledger, settings.stack, rng, size)
                    timeline.burst_at = elapsed
                status = fetch_status(state)
                timeline.add(elapsed, status)
                live.update(view(status, elapsed, len(submitted)))
                if submitted and settled(status) and elapsed > 10:
                    break
                if elapsed > timeout:
                    console.print(f"[red]demo: not settled after {timeout:.0f} s[/]")
                    break
                time.sleep(1)
        # The live view's last line ends here: what follows starts on a line of its own.
        console.line()
        report = JobReport(submitted, charged=charged)
        report.dead_lettered = set(status["dead_lettered_jobs"])
    finally:
        down(state_dir)
        release_state_dir(state_dir)
    read_worker_logs(state_dir / "instances", report)
    for path in timeline.plot(out_dir):
        console.print(f"timeline: {path}")
    instance_seconds = sum(p["instance_seconds"] for p in status["pools"].values())
    ledger = status["ledger"]
    console.print(
        f"ledger: reserved={ledger['reserved']} refunded={ledger['refunded']} charged={ledger['charged']} "
        f"(reserved - refunded = charged: {ledger['reserved'] - ledger['refunded'] == ledger['charged']}), "
        f"problems={ledger['problems'] or 'none'}"
    )
    console.print(
        f"demo: jobs={len(submitted)} completed={report.completed} dead_lettered={len(report.dead_lettered)} "
        f"lost={len(report.lost)} duplicates={len(report.duplicates)} wait_p95={report.wait_p95():.1f}s "
        f"instance_seconds={instance_seconds:.0f} refunded={ledger['refunds']}"
    )
    return report, status
