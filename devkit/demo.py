"""`make demo`, first version: a scripted burst on an in-process AWS emulator (moto).

The real adapters and the real ScaleService run against moto; time is simulated (ticks of 10 s
advance a clock instead of sleeping) so that a burst, the scale-out from zero, the drain and the
300 s scale-down stabilization fit in a few seconds. Workers are modelled: each in-service instance
finishes a fixed number of jobs per tick.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import boto3
from rich.console import Console

from queue_scaler.adapters import clients
from queue_scaler.adapters.autoscaling import AutoScalingFleet
from queue_scaler.adapters.history import DynamoHistoryStore
from queue_scaler.adapters.sqs import SqsQueueMetrics
from queue_scaler.config import PoolConfig
from queue_scaler.observability import NullMetrics
from queue_scaler.services.scaling import ScaleService

TICK_SECONDS = 10.0
JOBS_PER_INSTANCE_PER_TICK = 2  # 1 slot, 5-second jobs
BURST_AT = 20.0
BURST = {"video-pro": 120, "video-free": 150}
GIVE_UP_AT = 1800.0


@dataclass
class DemoResult:
    jobs: int
    completed: int
    peak_desired: int
    first_scale_out_at: float | None
    back_to_zero_at: float | None

    @property
    def ok(self) -> bool:
        return self.completed == self.jobs and self.peak_desired > 0 and self.back_to_zero_at is not None


def _pool() -> PoolConfig:
    return PoolConfig.model_validate(
        {
            "name": "video",
            "min_size": 0,
            "max_size": 20,
            "queues": [
                {"name": "video-pro", "target_per_instance": 8},
                {"name": "video-free", "target_per_instance": 15},
            ],
        }
    )


def _create_stack(pool: PoolConfig) -> dict[str, str]:
    ec2 = boto3.client("ec2")
    ec2.create_launch_template(
        LaunchTemplateName="video-workers",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t4g.small"},
    )
    clients.autoscaling().create_auto_scaling_group(
        AutoScalingGroupName=pool.group_name,
        LaunchTemplate={"LaunchTemplateName": "video-workers", "Version": "$Latest"},
        MinSize=pool.min_size,
        MaxSize=pool.max_size,
        DesiredCapacity=0,
        AvailabilityZones=["us-east-1a"],
    )
    clients.dynamodb().create_table(
        TableName="demo-history",
        KeySchema=[{"AttributeName": "pool", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pool", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return {q.name: clients.sqs().create_queue(QueueName=q.name)["QueueUrl"] for q in pool.queues}


def _send_burst(urls: dict[str, str]) -> int:
    sent = 0
    for queue, count in BURST.items():
        for start in range(0, count, 10):
            entries = [
                {"Id": str(i), "MessageBody": json.dumps({"job_id": f"{queue}-{i}", "payload": {"seconds": 5}})}
                for i in range(start, min(start + 10, count))
            ]
            clients.sqs().send_message_batch(QueueUrl=urls[queue], Entries=entries)  # type: ignore[arg-type]
            sent += len(entries)
    return sent


def _work(urls: dict[str, str], in_service: int) -> int:
    """Each in-service instance finishes its jobs for this tick, higher-priority queue first."""
    budget = in_service * JOBS_PER_INSTANCE_PER_TICK
    done = 0
    for url in urls.values():
        while budget > 0:
            messages = (
                clients.sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, budget)).get("Messages", [])
            )
            if not messages:
                break
            clients.sqs().delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            budget -= len(messages)
            done += len(messages)
    return done


def run(console: Console, pace_seconds: float = 0.02) -> DemoResult:
    """Play the demo; `pace_seconds` of real time per simulated tick keeps it watchable."""
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[key] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)  # the emulator is in-process; nothing leaves this machine
    clients.clear()
    pool = _pool()
    with mock_aws():
        urls = _create_stack(pool)
        fleet = AutoScalingFleet()
        service = ScaleService(SqsQueueMetrics(), fleet, DynamoHistoryStore("demo-history"), NullMetrics())
        console.print(
            f"[bold]queue-scaler demo[/]: pool {pool.name} (min {pool.min_size}, max {pool.max_size}), queues "
            + ", ".join(f"{q.name} (target {q.target_per_instance:g}/instance)" for q in pool.queues)
            + f"; a tick every {TICK_SECONDS:g} s of simulated time"
        )
        result = DemoResult(jobs=0, completed=0, peak_desired=0, first_scale_out_at=None, back_to_zero_at=None)
        now = 0.0
        while now <= GIVE_UP_AT:
            if now == BURST_AT:
                result.jobs = _send_burst(urls)
                console.print(f"[yellow]t={now:5.0f}s burst: {result.jobs} jobs arrive[/]")
            [outcome] = service.tick([pool], now)
            if outcome.decision is None:
                console.print(f"[red]t={now:5.0f}s error: {outcome.error}[/]")
            else:
                d = outcome.decision
                arrow = f"{d.current} -> {d.desired}" if d.change else f"{d.desired}"
                style = "green" if d.change > 0 else "cyan" if d.change < 0 else "dim"
                console.print(f"[{style}]t={now:5.0f}s backlog={d.backlog:4d} desired {arrow} ({d.limited_by})[/]")
                for line in d.explanation[:-1]:
                    console.print(f"           [dim]{line}[/]")
                result.peak_desired = max(result.peak_desired, d.desired)
                if d.change > 0 and result.first_scale_out_at is None:
                    result.first_scale_out_at = now
                if result.peak_desired and d.desired == 0 and result.back_to_zero_at is None:
                    result.back_to_zero_at = now
                    break
            in_service = fleet.describe([pool.group_name])[pool.group_name].in_service
            result.completed += _work(urls, in_service)
            now += TICK_SECONDS
            time.sleep(pace_seconds)
    clients.clear()
    console.print(
        f"demo: jobs={result.jobs} completed={result.completed} peak_desired={result.peak_desired} "
        f"scale_out_at={result.first_scale_out_at}s back_to_zero_at={result.back_to_zero_at}s"
    )
    return result
