"""Real `python -m queue_worker` processes and signals: stop deadlines, Spot notices and Docker's SIGKILL.

The Spot drain (queue_scaler/lifecycle/domain/commands.py) writes the instance's end into STOP_NOTICE_FILE and
then sends SIGTERM; these tests do the same by hand. Windows are a few seconds; every wait is bounded.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS, stop_timeout_seconds
from tests.functional.worker_fixtures import (
    BASE_ENV,
    WorkerProcess,
    counts,
    envelope,
    make_queue,
    send_bodies,
    wait_for,
)

pytestmark = pytest.mark.timeout(90)

StartWorker = Callable[..., WorkerProcess]
CANNOT_FINISH = "cannot finish before the stop deadline"


@pytest.fixture
def start_worker(endpoint: str, tmp_path: Path) -> Iterator[StartWorker]:
    started: list[WorkerProcess] = []

    def start(name: str = "worker", **settings: str | int | float) -> WorkerProcess:
        worker = WorkerProcess(endpoint, tmp_path, name, **settings)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def job(job_id: str, kind: str, seconds: float) -> str:
    return json.dumps(json.loads(envelope(job_id, seconds=seconds)) | {"kind": kind})


def write_notice(path: Path, seconds_from_now: float) -> None:
    """What the Spot drain writes: the epoch second the instance goes."""
    path.write_text(f"{int(time.time() + seconds_from_now)}\n")


def released(worker: WorkerProcess) -> dict[str, str]:
    return {r["job_id"]: r["reason"] for r in worker.events("job_released")}


def test_given_a_spot_notice_when_sigterm_then_the_job_that_cannot_finish_is_released_at_once_and_the_other_completes(
    sqs: Any, start_worker: StartWorker, tmp_path: Path
) -> None:
    url, _ = make_queue(sqs, "spot")
    send_bodies(sqs, url, [job("video-1", "video.transcode", 60), job("quick-1", "test.sleep", 2)])
    notice = tmp_path / "notice"
    worker = start_worker(
        QUEUE_URLS=url,
        WORKER_SLOTS=2,
        DRAIN_SECONDS=30,
        JOB_MAX_SECONDS=3,
        JOB_MAX_SECONDS_BY_KIND=json.dumps({"video.transcode": 600}),
        STOP_NOTICE_FILE=str(notice),
        VISIBILITY_TIMEOUT=30,
    )
    assert wait_for(lambda: len(worker.job_ids("job_started")) == 2, 15), worker.log_text()

    # The instance goes in margin + 6 s: the worker must be done 6 s from now, far inside its 30 s window.
    write_notice(notice, RELEASE_MARGIN_SECONDS + 6)
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    # The 600 s job goes back at once, for another worker to start now rather than after the notice.
    assert wait_for(lambda: counts(sqs, url) == (1, 1), 2), (counts(sqs, url), worker.log_text())
    assert released(worker) == {"video-1": CANNOT_FINISH}
    # The quick one (bounded by 3 s) finishes on this instance, and the worker exits before the deadline.
    assert worker.wait(6 + 2) == 0
    assert time.monotonic() - sent < 6 + 2
    assert worker.job_ids("job_completed") == ["quick-1"]
    assert counts(sqs, url) == (1, 0)
    [stopping] = worker.events("worker_stopping")
    assert 4 < stopping["deadline_in_seconds"] <= 6 and stopping["notice_ends_in_seconds"] > RELEASE_MARGIN_SECONDS
    assert worker.events("worker_stopped")[0].items() >= {"completed": 1, "released": 1, "failed": 0}.items()


def test_given_no_notice_when_sigterm_then_jobs_within_their_bound_run_to_the_window_and_the_rest_go_at_once(
    sqs: Any, start_worker: StartWorker, tmp_path: Path
) -> None:
    url, _ = make_queue(sqs, "window")
    send_bodies(sqs, url, [job("video-2", "video.transcode", 60), job("quick-2", "test.sleep", 2.5)])
    worker = start_worker(
        QUEUE_URLS=url,
        WORKER_SLOTS=2,
        DRAIN_SECONDS=5,
        JOB_MAX_SECONDS_BY_KIND=json.dumps({"video.transcode": 600}),
        STOP_NOTICE_FILE=str(tmp_path / "absent"),  # the Spot drain never wrote it: a plain drain
        VISIBILITY_TIMEOUT=30,
    )
    assert wait_for(lambda: len(worker.job_ids("job_started")) == 2, 15), worker.log_text()
    worker.signal(signal.SIGTERM)
    assert wait_for(lambda: released(worker) == {"video-2": CANNOT_FINISH}, 2), worker.log_text()
    assert worker.wait(5 + 2) == 0
    assert worker.job_ids("job_completed") == ["quick-2"]
    assert "notice_ends_in_seconds" not in worker.events("worker_stopping")[0]  # None fields are left out


def test_given_a_drain_under_way_when_a_spot_notice_and_a_second_sigterm_come_then_the_deadline_tightens(
    sqs: Any, start_worker: StartWorker, tmp_path: Path
) -> None:
    url, _ = make_queue(sqs, "again")
    send_bodies(sqs, url, [job("long-3", "test.sleep", 60)])
    notice = tmp_path / "notice"
    # Bounded by 25 s: inside the 30 s window, so the first SIGTERM (a terminate drain) lets it run.
    worker = start_worker(
        QUEUE_URLS=url, DRAIN_SECONDS=30, JOB_MAX_SECONDS=25, STOP_NOTICE_FILE=str(notice), VISIBILITY_TIMEOUT=30
    )
    assert wait_for(lambda: worker.job_ids("job_started"), 15), worker.log_text()
    worker.signal(signal.SIGTERM)
    assert wait_for(lambda: worker.events("worker_stopping"), 5), worker.log_text()
    time.sleep(1)  # the drain has looked at its job once and kept it (a negative check needs a moment)
    assert released(worker) == {}

    write_notice(notice, RELEASE_MARGIN_SECONDS + 3)
    worker.signal(signal.SIGTERM)  # what a second `docker stop` sends
    assert wait_for(lambda: released(worker) == {"long-3": CANNOT_FINISH}, 3), worker.log_text()
    assert worker.wait(5) == 0
    assert worker.events("worker_stop_renewed")[0]["deadline_in_seconds"] <= 3


def test_given_a_job_longer_than_the_window_when_docker_stops_it_then_it_is_released_before_the_sigkill(
    sqs: Any, start_worker: StartWorker
) -> None:
    url, _ = make_queue(sqs, "kill")
    send_bodies(sqs, url, [job("long-4", "test.sleep", 60)])
    drain = 2
    worker = start_worker(QUEUE_URLS=url, DRAIN_SECONDS=drain, STOP_TIMEOUT_SECONDS=stop_timeout_seconds(drain))
    assert wait_for(lambda: worker.job_ids("job_started"), 15), worker.log_text()
    # `docker stop --time <stop timeout>`: SIGTERM, then SIGKILL if the process is still there.
    worker.signal(signal.SIGTERM)
    try:
        code = worker.wait(stop_timeout_seconds(drain))
    except subprocess.TimeoutExpired:
        worker.signal(signal.SIGKILL)
        code = worker.wait(5)
    assert code == 0, "the worker released its job and exited before Docker's SIGKILL"
    assert released(worker) == {"long-4": "drain deadline reached"}
    assert counts(sqs, url) == (1, 0)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        pytest.param(
            {"DRAIN_SECONDS": "60", "STOP_TIMEOUT_SECONDS": "60"}, "STOP_TIMEOUT_SECONDS", id="sigkill-at-the-window"
        ),
        pytest.param({"JOB_MAX_SECONDS_BY_KIND": '{"video": 0}'}, "job_max_seconds_by_kind", id="zero-bound"),
    ],
)
def test_given_a_stop_timeout_without_the_release_margin_when_started_then_it_exits_2_naming_it(
    endpoint: str, settings: dict[str, str], named: str
) -> None:
    env = BASE_ENV | {"AWS_ENDPOINT_URL": endpoint, "QUEUE_URLS": "http://q", "JOB_HANDLER": "m:f"} | settings
    done = subprocess.run(
        [sys.executable, "-m", "queue_worker"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert named in done.stderr
