"""What happened to every job: read from the workers' JSON logs and the dead-letter queues."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class JobReport:
    submitted: set[str]
    completions: Counter[str] = field(default_factory=Counter)
    waits: list[float] = field(default_factory=list)
    dead_lettered: set[str] = field(default_factory=set)
    #: job_ids whose worker was SIGKILLed while holding them: the only ones allowed to run twice.
    killed_holders: set[str] = field(default_factory=set)

    @property
    def completed(self) -> int:
        return sum(1 for job in self.submitted if self.completions[job])

    @property
    def lost(self) -> set[str]:
        return {job for job in self.submitted if not self.completions[job] and job not in self.dead_lettered}

    @property
    def duplicates(self) -> set[str]:
        return {job for job, count in self.completions.items() if count > 1}

    def wait_p95(self) -> float:
        if not self.waits:
            return 0.0
        ordered = sorted(self.waits)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def read_worker_logs(instances_dir: Path, report: JobReport) -> None:
    """Count completions and queue waits from every instance's log (JSON lines; other lines skipped)."""
    for log in sorted(instances_dir.glob("*.log")):
        started: set[str] = set()
        finished: set[str] = set()
        stopped_cleanly = False
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            job = entry.get("job_id")
            event = entry.get("event")
            if event == "worker_stopped":
                stopped_cleanly = True
            elif not job:
                continue
            elif event == "job_started":
                started.add(job)
                if "queue_wait_seconds" in entry:
                    report.waits.append(float(entry["queue_wait_seconds"]))
            elif event == "job_completed":
                report.completions[job] += 1
                finished.add(job)
            elif event in ("job_failed", "job_released"):
                finished.add(job)
        if not stopped_cleanly:
            # The worker was killed: what it had started but not finished may legitimately run again.
            report.killed_holders |= started - finished


def read_dead_letters(sqs: Any, dlq_urls: list[str], report: JobReport) -> None:
    """Every job_id in the DLQs (messages are only looked at: received with a short visibility)."""
    for url in dlq_urls:
        seen: set[str] = set()
        for _ in range(100):
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                if message["MessageId"] in seen:
                    continue
                seen.add(message["MessageId"])
                try:
                    report.dead_lettered.add(str(json.loads(message["Body"])["job_id"]))
                except (ValueError, KeyError, TypeError):
                    report.dead_lettered.add(f"malformed:{message['MessageId']}")
