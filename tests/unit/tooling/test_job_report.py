"""The e2e job report (devkit/localcloud/report.py): who may run a job twice, from logs and the ledger."""

from __future__ import annotations

import json
from pathlib import Path

from devkit.localcloud.report import JobReport, read_open_attempts, read_worker_logs


def attempt(job: str, instance: str, outcome: str) -> dict[str, dict[str, str]]:
    """An ATTEMPT# item as a DynamoDB scan returns it (worker: `<instance>:<pid>/<attempt>`)."""
    return {
        "pk": {"S": f"JOB#ai#{job}"},
        "sk": {"S": f"ATTEMPT#{instance}-{job}"},
        "outcome": {"S": outcome},
        "worker": {"S": f"{instance}:4242/{instance}-{job}"},
    }


def log(path: Path, *events: dict[str, str]) -> None:
    path.write_text("\n".join(json.dumps(e) for e in events) + "\nnot json\n")


def test_given_a_killed_worker_that_took_a_lease_without_logging_it_then_its_job_is_a_killed_holder(
    tmp_path: Path,
) -> None:
    # i-killed took job-1's lease and was SIGKILLed before its job_started line; i-clean took job-2's
    # lease, logged nothing for it either, but stopped cleanly (its lease ended as it released it).
    log(tmp_path / "i-killed.log", {"event": "job_started", "job_id": "job-3"})
    log(tmp_path / "i-clean.log", {"event": "job_started", "job_id": "job-4"}, {"event": "worker_stopped"})
    report = JobReport({"job-1", "job-2", "job-3", "job-4"})
    read_open_attempts(
        [
            attempt("job-1", "i-killed", "started"),
            attempt("job-2", "i-clean", "started"),
            attempt("job-5", "i-killed", "completed"),
            {"pk": {"S": "ACCOUNT#u-1"}, "sk": {"S": "BALANCE"}},
        ],
        report,
    )
    read_worker_logs(tmp_path, report)
    assert report.killed_holders == {"job-1", "job-3"}
