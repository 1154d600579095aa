"""`make bench-worker`: messages per second of `python -m queue_worker` against a naive consumer.

Both consumers are separate processes, run one after the other against the same moto server on
127.0.0.1, each on its own queue pre-loaded with the same `sleep_job` messages. The naive consumer
is the loop most first versions look like: receive one message, run it, delete it. Each rate is
measured from the consumer's first received message to its last deletion, so that interpreter start
time does not count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from queue_scaler.shared.jobs import JobEnvelope

BENCH_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "PYTHONUNBUFFERED": "1",
}
#: A consumer that has not drained its queue by then has hung; the benchmark stops it and says so.
CONSUMER_TIMEOUT_SECONDS = 300


def _client(endpoint: str | None = None) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        config=Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3}),
    )


def naive_consume(url: str) -> dict[str, float]:
    """Receive one message, run it, delete it; until the queue is empty. Returns count and seconds."""
    from queue_worker.examples import sleep_job

    sqs = _client()
    done, first, last = 0, 0.0, 0.0
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            return {"messages": done, "seconds": last - first}
        first = first or time.monotonic()
        sleep_job(JobEnvelope.from_body(messages[0]["Body"]))
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        done += 1
        last = time.monotonic()


def _load(sqs: Any, name: str, count: int, job_seconds: float) -> str:
    url: str = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for start in range(0, count, 10):
        entries = []
        for i in range(start, min(start + 10, count)):
            body = {
                "job_id": f"{name}-{i}",
                "user_id": "bench",
                "plan": "pro",
                "kind": "bench.sleep",
                "credits": 0,
                "submitted_at": "2026-01-01T00:00:00Z",
                "payload": {"seconds": job_seconds},
            }
            entries.append({"Id": str(i - start), "MessageBody": json.dumps(body)})
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    return url


def _run_naive(env: dict[str, str], url: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "devkit.bench_worker", "--naive-consumer", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=CONSUMER_TIMEOUT_SECONDS,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _log_time(record: dict[str, Any]) -> float:
    return datetime.strptime(record["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z").timestamp()


def _run_worker(env: dict[str, str], sqs: Any, url: str, *, count: int, slots: int, log_dir: Path) -> dict[str, float]:
    worker_env = env | {
        "QUEUE_URLS": url,
        "JOB_HANDLER": "queue_worker.examples:sleep_job",
        "WORKER_SLOTS": str(slots),
        "WORKER_PREFETCH": str(min(10, slots)),
        "DRAIN_SECONDS": "5",
        "POLL_WAIT_SECONDS": "1",
        "HEALTH_FILE": str(log_dir / "worker.health"),
        "POOL_NAME": "bench",
    }
    log_path = log_dir / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "queue_worker"], env=worker_env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + CONSUMER_TIMEOUT_SECONDS
            names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            while time.monotonic() < deadline:
                attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
                if all(attributes[n] == "0" for n in names):
                    break
                time.sleep(0.2)
            process.terminate()
            process.wait(10)
        finally:
            if process.poll() is None:
                process.kill()
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    started = [_log_time(r) for r in records if r.get("event") == "job_started"]
    completed = [_log_time(r) for r in records if r.get("event") == "job_completed"]
    if len(completed) != count:
        raise RuntimeError(f"the worker completed {len(completed)} of {count} messages; log: {log_path}")
    return {"messages": len(completed), "seconds": max(completed) - min(started)}


def run_benchmark(messages: int, job_seconds: float, slots: int) -> dict[str, Any]:
    """Run both consumers on one moto server; returns their counts, seconds and rates."""
    from devkit.localcloud.server import moto_server

    with moto_server() as endpoint:
        env = {"PATH": os.environ.get("PATH", ""), **BENCH_ENV, "AWS_ENDPOINT_URL": endpoint}
        sqs = _client(endpoint)
        with tempfile.TemporaryDirectory(prefix="bench-worker-") as log_dir:
            naive = _run_naive(env, _load(sqs, "bench-naive", messages, job_seconds))
            worker = _run_worker(
                env,
                sqs,
                _load(sqs, "bench-worker", messages, job_seconds),
                count=messages,
                slots=slots,
                log_dir=Path(log_dir),
            )
    results = {"naive": naive, "queue_worker": worker}
    for result in results.values():
        result["per_second"] = result["messages"] / result["seconds"] if result["seconds"] > 0 else 0.0
    return {
        "messages": messages,
        "job_seconds": job_seconds,
        "slots": slots,
        "consumers": results,
        "speedup": worker["per_second"] / naive["per_second"] if naive["per_second"] else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the benchmark (and, internally, of the naive consumer process)."""
    parser = argparse.ArgumentParser(prog="bench-worker", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300, help="messages per consumer (default 300)")
    parser.add_argument("--job-seconds", type=float, default=0.01, help="sleep_job duration (default 0.01)")
    parser.add_argument("--slots", type=int, default=8, help="WORKER_SLOTS of the worker (default 8)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--naive-consumer", metavar="QUEUE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive_consumer:
        print(json.dumps(naive_consume(args.naive_consumer)))
        return 0
    result = run_benchmark(args.messages, args.job_seconds, args.slots)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"worker benchmark: {result['messages']} messages of sleep_job({args.job_seconds} s) per consumer, "
        "one moto server on 127.0.0.1"
    )
    print(f"{'consumer':<40} {'messages':>8} {'seconds':>8} {'msg/s':>8}")
    labels = {
        "naive": "naive (receive 1, run, delete)",
        "queue_worker": f"queue_worker ({args.slots} slots, batches)",
    }
    for key, label in labels.items():
        row = result["consumers"][key]
        print(f"{label:<40} {row['messages']:>8} {row['seconds']:>8.2f} {row['per_second']:>8.1f}")
    if result["speedup"] is not None:
        print(f"speed-up: {result['speedup']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
