"""Stop deadlines end to end: real workers, the real drain commands, Docker's SIGKILL and a Spot reclaim.

The local cloud's SSM agent runs what the drain scripts do (lifecycle/domain/commands.py) and its Docker sends
SIGKILL exactly at the script's stop timeout; its EC2 reclaims a Spot instance at the end of the
(compressed) two-minute notice. A job is never left `started` by either, and never refunded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devkit.localcloud.control import spot_interruption
from devkit.localcloud.stack import LocalSettings
from queue_scaler.credits.domain.ledger import JobRecord
from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS
from tests.e2e.conftest import Cloud, wait_for
from tests.e2e.test_settlement import CREDITS, GROUP, ROOT, cli, ledger, set_video_capacity, submit

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]
SETTINGS = LocalSettings()


def record(cloud: Cloud, job_id: str) -> JobRecord | None:
    return ledger(cloud).job(job_id)


def logged_on(cloud: Cloud, job_id: str, event: str) -> str | None:
    """The instance whose worker logged this event about the job (its log under the state directory)."""
    for log in sorted((cloud.state_dir / "instances").glob("i-*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if f'"{event}"' in line and f'"{job_id}"' in line:
                return log.stem
    return None


def running_on(cloud: Cloud, job_id: str) -> str | None:
    return logged_on(cloud, job_id, "job_started")


def completed_on(cloud: Cloud, job_id: str) -> str | None:
    return logged_on(cloud, job_id, "job_completed")


def finished(cloud: Cloud, instance_id: str) -> dict[str, Any] | None:
    return next((w for w in cloud.status()["workers"]["finished"] if w["instance_id"] == instance_id), None)


def outcomes(cloud: Cloud, job_id: str) -> list[str]:
    job = record(cloud, job_id)
    return [] if job is None else [str(a.outcome) for a in job.attempts]


def healthy_video(cloud: Cloud) -> list[str]:
    instances = cloud.status()["pools"]["video"]["instances"]
    return [i["id"] for i in instances if i["state"] == "InService" and i["healthy"]]


def terminate_event(tmp_path: Path, instance_id: str) -> Path:
    """The terminate hook's event for this instance, as EventBridge delivers it to LifecycleFunction."""
    event = json.loads((ROOT / "events" / "lifecycle" / "terminate.json").read_text())
    event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event["detail"] |= {"EC2InstanceId": instance_id, "AutoScalingGroupName": GROUP}
    path = tmp_path / "terminate.json"
    path.write_text(json.dumps(event))
    return path


def test_given_a_job_longer_than_the_drain_window_when_drained_then_it_is_released_before_the_sigkill_never_started(
    cloud_factory: Any, tmp_path: Path
) -> None:
    cloud = cloud_factory(schedule_seconds=0)
    assert cli(cloud, "credits", "deposit", "u-e2e", "100", "--reference", "grant").returncode == 0
    # Longer than the drain window (5 s here) and than Docker's stop timeout after it.
    submit(cloud, "e2e-window", {"seconds": SETTINGS.drain_seconds + RELEASE_MARGIN_SECONDS + 20})
    set_video_capacity(cloud, 1)
    wait_for(lambda: outcomes(cloud, "e2e-window") == ["started"], 120, "the job running")
    instance = running_on(cloud, "e2e-window")
    assert instance is not None

    # The terminate hook's drain, as LifecycleFunction sends it (SSM Run Command: `docker stop --time`).
    run = subprocess.run(
        [sys.executable, "-m", "devkit.cli", "invoke", "LifecycleFunction", str(terminate_event(tmp_path, instance)),
         "--state-dir", str(cloud.state_dir)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    wait_for(lambda: finished(cloud, instance) is not None, 60, "the drained worker gone")
    gone = finished(cloud, instance)
    assert gone is not None
    # It released its job at the end of its window and exited: Docker's SIGKILL never came.
    assert (gone["exit_code"], gone["signals"]) == (0, ["SIGTERM"]), gone
    job = record(cloud, "e2e-window")
    assert job is not None
    assert [(str(a.outcome), a.reason) for a in job.attempts] == [("released", "drain deadline reached")]

    # Retried elsewhere (the group replaces the instance), completed once, never refunded.
    wait_for(lambda: outcomes(cloud, "e2e-window")[-1:] == ["completed"], 180, "the job completed elsewhere")
    account = ledger(cloud).account("u-e2e")
    assert outcomes(cloud, "e2e-window") == ["released", "completed"]
    assert account is not None and (account.refunded, account.balance) == (0, 100 - CREDITS)
    assert completed_on(cloud, "e2e-window") not in (None, instance)


def test_given_a_spot_warning_on_a_pool_with_a_long_job_then_it_is_released_at_once_and_completes_elsewhere(
    cloud_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compressed as the local cloud compresses: the video pool's 900 s drain window is 60 s here, the
    # two-minute notice 30 s, and the "600 s" job 40 s (its kind's bound, JOB_MAX_SECONDS_BY_KIND, 45 s).
    monkeypatch.setenv("JOB_MAX_SECONDS_BY_KIND", json.dumps({"video.render": 45}))
    cloud = cloud_factory(schedule_seconds=0, drain_seconds=60)
    notice = SETTINGS.spot_notice_seconds
    assert notice > RELEASE_MARGIN_SECONDS
    assert cli(cloud, "credits", "deposit", "u-e2e", "100", "--reference", "grant").returncode == 0
    set_video_capacity(cloud, 2)
    wait_for(lambda: len(healthy_video(cloud)) == 2, 150, "two video instances in service")
    submit(cloud, "e2e-spot", {"seconds": 40})
    wait_for(lambda: outcomes(cloud, "e2e-spot") == ["started"], 60, "the job running")
    instance = running_on(cloud, "e2e-spot")
    assert instance is not None

    spot_interruption(cloud.state, instance)
    # Released at once (the event's delivery, the Spot drain, one turn of the worker's drain loop), long
    # before the worker's deadline (the notice's end less the release margin: 15 s here), and recorded
    # as a release, so that another instance starts it now.
    wait_for(lambda: outcomes(cloud, "e2e-spot")[:1] == ["released"], 8, "the release at once")
    job = record(cloud, "e2e-spot")
    assert job is not None
    assert job.attempts[0].reason == "cannot finish before the stop deadline"

    # EC2 reclaims the instance at the notice's end; the job completes on the other one, no refund.
    wait_for(lambda: instance not in {i["id"] for i in cloud.status()["pools"]["video"]["instances"]}, 60, "reclaim")
    wait_for(lambda: outcomes(cloud, "e2e-spot")[-1:] == ["completed"], 120, "the job completed elsewhere")
    account = ledger(cloud).account("u-e2e")
    assert outcomes(cloud, "e2e-spot") == ["released", "completed"]
    assert account is not None and (account.refunded, account.balance) == (0, 100 - CREDITS)
    assert completed_on(cloud, "e2e-spot") not in (None, instance)
    reclaimed = finished(cloud, instance)
    assert reclaimed is not None and "SIGKILL" not in reclaimed["signals"], "the worker was done before the reclaim"
