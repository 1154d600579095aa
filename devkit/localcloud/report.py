"""What happened to every job: read from the workers' JSON logs, the ledger's attempts and the dead-letter queues."""

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
    #: The submitted jobs whose reservation holds credits: a dead letter among them must be refunded.
    charged: set[str] = field(default_factory=set)
    #: The submitted jobs whose handler fails on every attempt: exactly these fail for good.
    failing: set[str] = field(default_factory=set)
    completions: Counter[str] = field(default_factory=Counter)
    waits: list[float] = field(default_factory=list)
    dead_lettered: set[str] = field(default_factory=set)
    #: job_ids started by a worker that was SIGKILLed: the only ones allowed to run twice (it may have
    #: finished a job without deleting its message).
    killed_holders: set[str] = field(default_factory=set)
    #: Per job, the instances whose attempt the ledger still records as started (`read_open_attempts`):
    #: a worker SIGKILLed after it took the job's lease but before its `job_started` line holds it too.
    open_attempts: dict[str, set[str]] = field(default_factory=dict)
    #: job_ids a draining worker released (made visible again) at its deadline.
    released: set[str] = field(default_factory=set)
    #: job_ids some worker started.
    started: set[str] = field(default_factory=set)
    #: job_ids a worker received and skipped because the ledger marks them completed: the worker that
    #: completed one may have died (SIGKILL) before it logged `job_completed` and deleted the message.
    skipped: set[str] = field(default_factory=set)

    @property
    def completed(self) -> int:
        return sum(1 for job in self.submitted if self.completions[job] or job in self.skipped)

    @property
    def lost(self) -> set[str]:
        done = {job for job in self.submitted if self.completions[job]} | self.skipped
        return self.submitted - done - self.dead_lettered

    @property
    def duplicates(self) -> set[str]:
        return {job for job, count in self.completions.items() if count > 1}

    def wait_p95(self) -> float:
        if not self.waits:
            return 0.0
        ordered = sorted(self.waits)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def read_worker_logs(instances_dir: Path, report: JobReport) -> None:
    """Count completions and queue waits from every instance's log (JSON lines; other lines skipped).

    A job a SIGKILLed worker reported `job_succeeded` but not `job_completed` counts as completed:
    the kill may have come between its message's deletion and the completion line.
    """
    for log in sorted(instances_dir.glob("*.log")):
        started: set[str] = set()
        succeeded: set[str] = set()
        completed: set[str] = set()
        # Events that only add the job to a set (this log's, or the whole report's).
        sets = {
            "job_started": started,
            "job_succeeded": succeeded,
            "job_completed": completed,
            "job_released": report.released,
            "job_skipped": report.skipped,
        }
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
            elif job and event in sets:
                sets[event].add(job)
                if event == "job_completed":
                    report.completions[job] += 1
                elif event == "job_started":
                    report.started.add(job)
                    if "queue_wait_seconds" in entry:
                        report.waits.append(float(entry["queue_wait_seconds"]))
        if not stopped_cleanly:
            # Killed: any job it started may run again (finished but not yet deleted, or cut short), and
            # any job whose lease it took, logged or not: that receive comes back until the lease expires.
            report.killed_holders |= started
            report.killed_holders |= {job for job, held in report.open_attempts.items() if log.stem in held}
            for job in succeeded - completed:
                report.completions[job] += 1


def read_open_attempts(items: list[dict[str, Any]], report: JobReport) -> None:
    """Note, per job, the instances whose attempt the ledger records as started and never ended.

    `items` are the ledger table's items as a scan returns them; an ATTEMPT# item's `worker` is the
    lease owner, `<instance>:<pid>/<attempt>` (queue_worker.attempts.worker_identity). Read before the
    workers' logs: `read_worker_logs` counts the jobs a killed instance held this way as killed holders.
    """
    for item in items:
        if not item["sk"]["S"].startswith("ATTEMPT#") or item.get("outcome", {}).get("S") != "started":
            continue
        job = item["pk"]["S"].split("#", 2)[2]
        instance = item["worker"]["S"].split(":", 1)[0]
        report.open_attempts.setdefault(job, set()).add(instance)
