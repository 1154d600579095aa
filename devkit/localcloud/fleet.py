"""Worker processes for the local cloud's instances: one `python -m queue_worker` per booted instance.

An instance boots for `boot_seconds`, then runs its worker (the real consumer, against the local
SQS). Terminating instances get SIGTERM and are removed once their worker has drained and exited.
A worker that dies while its instance is in service (a crash, or chaos) makes the instance
unhealthy, and Auto Scaling replaces it, as EC2 health checks would.

Docker's side of a stop is emulated as Docker does it: `docker stop --time N` (the drain commands,
and an instance's shutdown with the container's `--stop-timeout`) sends SIGTERM and then SIGKILL
exactly N seconds later if the worker still runs. A Spot interruption reclaims its instance at the
notice's end whatever runs on it: the worker is SIGKILLed and the instance removed.

A warm pool's instances (emulation.py) boot like any other, and their worker runs with the user
data's WARM_POOL_STANDBY=true: it reads its instance's target lifecycle state from the instance
metadata (the local cloud's, imds.py, through `AWS_EC2_METADATA_SERVICE_ENDPOINT`), receives
nothing while it says Warmed:*, and is healthy meanwhile, which is what LifecycleFunction's warm pass
checks. Once the warm pass completes, a Stopped pool's instance stops: its worker is stopped as
`docker stop` would (an instance's shutdown), and started again, after the shorter warm start, when
a scale-out takes the instance; the worker then reads InService and serves at once, as Docker
restarts the container on EC2. A Hibernated pool keeps the instance's RAM: its worker process is
frozen (SIGSTOP) as it stands by, and resumed (SIGCONT) after the warm start, when it reads InService
and serves without starting again. A Running pool's worker keeps standing by until its state turns.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from devkit.localcloud import stack as stack_module
from devkit.localcloud.emulation import AutoScalingEmulator
from devkit.localcloud.iam import LocalIam, worker_component
from devkit.localcloud.stack import LocalStack
from queue_scaler.lifecycle.domain.deadlines import stop_timeout_seconds

RUNNING_STATES = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")
STOPPING_STATES = ("Terminating", "Terminating:Proceed")
#: Launched into a warm pool and being prepared: the worker boots and stands by.
WARMING_STATES = ("Warmed:Pending", "Warmed:Pending:Wait")


@dataclass
class Worker:
    instance_id: str
    pool: str
    process: subprocess.Popen[bytes]
    log_path: Path
    health_file: Path
    log: IO[bytes]
    notice_file: Path
    signalled: bool = False
    kills: list[str] = field(default_factory=list)
    #: Docker's pending SIGKILL (`docker stop --time`): the earliest one asked for wins, as in Docker.
    kill_timer: threading.Timer | None = None
    kill_at: float | None = None
    #: Frozen (SIGSTOP) while its instance hibernates in a warm pool.
    suspended: bool = False

    @property
    def running(self) -> bool:
        return self.process.poll() is None


@dataclass
class WorkerFleet:
    """Starts, signals and reaps the worker processes that follow each group's instances."""

    stack: LocalStack
    emulator: AutoScalingEmulator
    endpoint_url: str
    state_dir: Path
    clock: Callable[[], float]
    job_handler: str = "queue_worker.examples:sleep_job"
    #: The local instance metadata service (imds.py): a warm pool's workers read their target state there.
    imds_url: str = ""
    #: Each worker runs under its pool's instance role, its AWS calls recorded (devkit/localcloud/recording.py).
    iam: LocalIam | None = None
    workers: dict[str, Worker] = field(default_factory=dict)
    finished: list[dict[str, Any]] = field(default_factory=list)
    #: Spot instances EC2 reclaims at the given time (the end of their interruption notice).
    reclaims: dict[str, float] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def _pool_of(self, group: str) -> str:
        for name, pool in self.stack.pools.items():
            if pool.config.group_name == group:
                return name
        raise KeyError(group)

    def _env(self, pool: str, health_file: Path, instance_id: str, group: str) -> dict[str, str]:
        settings = self.stack.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QUEUE_", "JOB_HANDLER", "POWERTOOLS_"))}
        env.update(
            {
                "QUEUE_URLS": ",".join(self.stack.pools[pool].queue_urls),
                "JOB_HANDLER": self.job_handler,
                "DRAIN_SECONDS": str(settings.drain_seconds),
                # What the user data gives the container: its stop timeout, and where the Spot drain writes.
                "STOP_TIMEOUT_SECONDS": str(stop_timeout_seconds(settings.drain_seconds)),
                "STOP_NOTICE_FILE": str(self._notice_file(instance_id)),
                "WORKER_SLOTS": str(settings.worker_slots),
                "VISIBILITY_TIMEOUT": str(settings.visibility_timeout),
                "RETRY_DELAY_SECONDS": str(settings.retry_delay_seconds),
                "POLL_WAIT_SECONDS": "1",
                "HEALTH_FILE": str(health_file),
                "POOL_NAME": pool,
                # As the image sets it (workers/Dockerfile): each log line is written when logged, so a
                # SIGKILL loses none of the lines before it (the chaos report reads them).
                "PYTHONUNBUFFERED": "1",
                # What the user data gives the container on EC2 (the instance id comes from IMDS there).
                "SCALE_IN_PROTECTION": "true",
                "INSTANCE_ID": instance_id,
                "AUTOSCALING_GROUP_NAME": group,
                "PROTECTION_LINGER_SECONDS": "1",
                "LEDGER_TABLE": stack_module.ledger_table(settings),
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_DEFAULT_REGION": settings.region,
                "AWS_REGION": settings.region,
                "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
                "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            }
        )
        warm_state = self.emulator.warm_pool_state(group)
        if warm_state is not None:
            # The user data's standby (queue_worker/warm.py), reading this instance's metadata (imds.py).
            env["WARM_POOL_STANDBY"] = "true"
            env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = f"{self.imds_url}/{instance_id}"
        if self.iam is not None:
            env.update(self.iam.environment(worker_component(pool)))
        return env

    def _notice_file(self, instance_id: str) -> Path:
        return (self.state_dir / "instances" / f"{instance_id}.notice").resolve()

    def _start(self, instance_id: str, group: str) -> None:
        pool = self._pool_of(group)
        logs = self.state_dir / "instances"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{instance_id}.log"
        health = (logs / f"{instance_id}.health").resolve()
        log = log_path.open("ab")
        entry = ["-m", "queue_worker"]
        if self.iam is not None:
            entry = [
                "-m",
                "devkit.localcloud.recording",
                worker_component(pool),
                str(self.state_dir / "calls"),
                "queue_worker",
            ]
        process = subprocess.Popen(  # the container's entry point, as a local process
            [sys.executable, *entry],
            env=self._env(pool, health, instance_id, group),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: `down` can reap it and anything it spawned
        )
        self.workers[instance_id] = Worker(
            instance_id, pool, process, log_path, health, log, self._notice_file(instance_id)
        )

    def healthy(self, instance_id: str) -> bool:
        """The container HEALTHCHECK: the worker runs and its health file is fresh."""
        worker = self.workers.get(instance_id)
        if worker is None or not worker.running or not worker.health_file.exists():
            return False
        return self.clock() - worker.health_file.stat().st_mtime < 30

    def signal(self, instance_id: str, sig: signal.Signals) -> bool:
        """Send `sig` to an instance's worker (`docker stop` is SIGTERM; chaos also uses SIGKILL)."""
        with self.lock:
            worker = self.workers.get(instance_id)
            if worker is None or not worker.running:
                return False
            worker.kills.append(sig.name)
            if sig == signal.SIGTERM:
                worker.signalled = True
            sent = _killpg(worker.process.pid, sig)
            self._resume(worker)  # a hibernated worker gets its signal once it runs again
            return sent

    @staticmethod
    def _resume(worker: Worker) -> None:
        if worker.suspended:
            worker.suspended = False
            _killpg(worker.process.pid, signal.SIGCONT)

    def pid(self, instance_id: str) -> int | None:
        worker = self.workers.get(instance_id)
        return worker.process.pid if worker is not None and worker.running else None

    def pids(self) -> list[int]:
        """Every worker process this fleet started that may still run (for `down`'s no-leftover check)."""
        with self.lock:
            return [w.process.pid for w in self.workers.values()]

    def exit_code(self, instance_id: str) -> int | None:
        """The worker's exit code once it has exited (0 when the instance never ran one), else None."""
        worker = self.workers.get(instance_id)
        if worker is None:
            return 0
        return worker.process.poll()

    def tail(self, instance_id: str, lines: int = 20) -> str:
        """The last lines of the instance's worker log (`docker logs --tail`)."""
        worker = self.workers.get(instance_id)
        if worker is None or not worker.log_path.exists():
            return ""
        return "\n".join(worker.log_path.read_text(errors="replace").splitlines()[-lines:])

    def drain(self, instance_id: str, stop_timeout: float, notice_ends_at: float | None = None) -> None:
        """`docker stop --time <stop_timeout>`, after writing the stop notice when there is one (the Spot
        drain): SIGTERM, then SIGKILL at the timeout if the worker still runs."""
        with self.lock:
            worker = self.workers.get(instance_id)
            if worker is not None and notice_ends_at is not None:
                partial = worker.notice_file.with_suffix(".tmp")
                partial.write_text(f"{int(notice_ends_at)}\n")
                partial.replace(worker.notice_file)
            self.docker_stop(instance_id, stop_timeout)

    def docker_stop(self, instance_id: str, stop_timeout: float) -> None:
        """SIGTERM now; SIGKILL exactly `stop_timeout` s later unless the worker has exited (Docker's stop)."""
        with self.lock:
            worker = self.workers.get(instance_id)
            if worker is None or not worker.running:
                return
            self.signal(instance_id, signal.SIGTERM)
            kill_at = time.monotonic() + max(0.0, stop_timeout)
            if worker.kill_at is not None and worker.kill_at <= kill_at:
                return
            if worker.kill_timer is not None:
                worker.kill_timer.cancel()
            worker.kill_at = kill_at
            worker.kill_timer = threading.Timer(max(0.0, stop_timeout), self._kill, args=(worker,))
            worker.kill_timer.daemon = True
            worker.kill_timer.start()

    def _kill(self, worker: Worker) -> None:
        with self.lock:
            if worker.running:
                worker.kills.append(signal.SIGKILL.name)
                _killpg(worker.process.pid, signal.SIGKILL)

    def reclaim_at(self, instance_id: str, at: float) -> None:
        """A Spot interruption: EC2 takes the instance back at `at` (this fleet's clock)."""
        with self.lock:
            self.reclaims[instance_id] = at

    def _reclaim_due(self, now: float) -> None:
        for instance_id, at in list(self.reclaims.items()):
            if now < at:
                continue
            del self.reclaims[instance_id]
            worker = self.workers.get(instance_id)
            if worker is not None and worker.running:
                self._kill(worker)  # the instance is gone: no drain, no stop timeout
                worker.process.wait(timeout=5)
            if worker is not None:
                self._reap(instance_id)
            self.emulator.remove(instance_id)

    def step(self) -> None:
        """Follow the emulator: boot workers, mark them in service, drain and remove leaving ones."""
        now = self.clock()
        with self.lock:
            self._reclaim_due(now)
            for instance_id, group, state, started_at in self.emulator.snapshot():
                worker = self.workers.get(instance_id)
                if state in WARMING_STATES or state == "Warmed:Pending:Proceed":
                    self._warm_step(instance_id, group, state, started_at=started_at, now=now)
                elif state in RUNNING_STATES:
                    if worker is None and now - started_at >= self._boot_seconds(instance_id):
                        self._start(instance_id, group)
                    elif worker is not None and worker.suspended:
                        # A hibernated instance taken from the warm pool resumes after its warm start.
                        if now - started_at >= self._boot_seconds(instance_id):
                            self._resume(worker)
                    elif worker is not None and not worker.running:
                        # The container died under a serving instance: EC2 health checks replace it.
                        self.emulator.mark_unhealthy(instance_id)
                    elif (state == "Pending" and self.healthy(instance_id)) or state == "Pending:Proceed":
                        self.emulator.set_state(instance_id, "InService")
                elif state in STOPPING_STATES:
                    if worker is None:
                        self.emulator.remove(instance_id)
                    elif worker.running and not worker.signalled:
                        # The instance shuts down: Docker stops the container with its --stop-timeout.
                        self.docker_stop(instance_id, stop_timeout_seconds(self.stack.settings.drain_seconds))
                    elif not worker.running:
                        self._reap(instance_id)
                        self.emulator.remove(instance_id)

    def _boot_seconds(self, instance_id: str) -> float:
        """A cold boot, or the shorter start of an instance taken from a warm pool."""
        settings = self.stack.settings
        return settings.warm_start_seconds if self.emulator.warm_started(instance_id) else settings.boot_seconds

    def _warm_step(self, instance_id: str, group: str, state: str, *, started_at: float, now: float) -> None:
        """An instance launched into a warm pool: it boots and its worker stands by; once the warm pass
        completes (Warmed:Pending:Proceed) a Stopped pool's instance stops (its worker exits), a Hibernated
        pool's hibernates (its worker is frozen, SIGSTOP, and resumed by a warm start), a Running pool's
        worker keeps standing by."""
        worker = self.workers.get(instance_id)
        if state in WARMING_STATES:
            if worker is None and now - started_at >= self.stack.settings.boot_seconds:
                self._start(instance_id, group)
            elif state == "Warmed:Pending" and self.healthy(instance_id):
                self.emulator.set_state(instance_id, "Warmed:Pending:Proceed")  # no launch hook to wait for
            return
        pool_state = self.emulator.warm_pool_state(group)
        if pool_state in {"Running", "Hibernated"} and worker is not None and worker.running:
            if pool_state == "Hibernated":
                # Hibernation keeps the instance's RAM: the worker process is frozen as it is, standing by.
                _killpg(worker.process.pid, signal.SIGSTOP)
                worker.suspended = True
            self.emulator.warmed(instance_id)
        elif worker is not None and worker.running:
            if not worker.signalled:
                # The instance stops: Docker stops the container with its --stop-timeout.
                self.docker_stop(instance_id, stop_timeout_seconds(self.stack.settings.drain_seconds))
        else:
            if worker is not None:
                self._reap(instance_id)
            self.emulator.warmed(instance_id)

    def _reap(self, instance_id: str) -> None:
        worker = self.workers.pop(instance_id)
        if worker.kill_timer is not None:
            worker.kill_timer.cancel()
        worker.log.close()
        self.finished.append(
            {
                "instance_id": instance_id,
                "pool": worker.pool,
                "exit_code": worker.process.returncode,
                "signals": worker.kills,
            }
        )

    def stop_all(self, timeout: float) -> None:
        """SIGTERM every worker, wait for their drain, then SIGKILL what is left. Leaves no process."""
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            if worker.running:
                _killpg(worker.process.pid, signal.SIGTERM)
                self._resume(worker)
        for worker in workers:
            try:
                worker.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _killpg(worker.process.pid, signal.SIGKILL)
                worker.process.wait(timeout=5)
            # Anything the worker spawned in its group goes too.
            _killpg(worker.process.pid, signal.SIGKILL)
            worker.log.close()


def _killpg(pid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False  # already gone
    return True
