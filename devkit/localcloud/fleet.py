"""Worker processes for the local cloud's instances: one `python -m queue_worker` per booted instance.

An instance boots for `boot_seconds`, then runs its worker (the real consumer, against the local
SQS). Terminating instances get SIGTERM and are removed once their worker has drained and exited.
A worker that dies while its instance is in service (a crash, or chaos) makes the instance
unhealthy, and Auto Scaling replaces it, as EC2 health checks would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from devkit.localcloud import stack as stack_module
from devkit.localcloud.emulation import AutoScalingEmulator
from devkit.localcloud.iam import LocalIam, worker_component
from devkit.localcloud.stack import LocalStack

RUNNING_STATES = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")
STOPPING_STATES = ("Terminating", "Terminating:Proceed")


@dataclass
class Worker:
    instance_id: str
    pool: str
    process: subprocess.Popen[bytes]
    log_path: Path
    health_file: Path
    log: IO[bytes]
    signalled: bool = False
    kills: list[str] = field(default_factory=list)

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
    #: Each worker runs under its pool's instance role, its AWS calls recorded (devkit/localcloud/recording.py).
    iam: LocalIam | None = None
    workers: dict[str, Worker] = field(default_factory=dict)
    finished: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def _pool_of(self, group: str) -> str:
        for name, pool in self.stack.pools.items():
            if pool.config.group_name == group:
                return name
        raise KeyError(group)

    def _env(self, pool: str, health_file: Path, instance_id: str, group: str) -> dict[str, str]:
        settings = self.stack.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QUEUE_", "JOB_", "POWERTOOLS_"))}
        env.update(
            {
                "QUEUE_URLS": ",".join(self.stack.pools[pool].queue_urls),
                "JOB_HANDLER": self.job_handler,
                "DRAIN_SECONDS": str(settings.drain_seconds),
                "WORKER_SLOTS": str(settings.worker_slots),
                "VISIBILITY_TIMEOUT": str(settings.visibility_timeout),
                "RETRY_DELAY_SECONDS": str(settings.retry_delay_seconds),
                "POLL_WAIT_SECONDS": "1",
                "HEALTH_FILE": str(health_file),
                "POOL_NAME": pool,
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
        if self.iam is not None:
            env.update(self.iam.environment(worker_component(pool)))
        return env

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
        self.workers[instance_id] = Worker(instance_id, pool, process, log_path, health, log)

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
            return _killpg(worker.process.pid, sig)

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

    def drain(self, instance_id: str) -> None:
        """`docker stop`: SIGTERM to the worker, which drains and exits."""
        self.signal(instance_id, signal.SIGTERM)

    def step(self) -> None:
        """Follow the emulator: boot workers, mark them in service, drain and remove leaving ones."""
        now = self.clock()
        with self.lock:
            for instance_id, group, state, launched_at in self.emulator.snapshot():
                worker = self.workers.get(instance_id)
                if state in RUNNING_STATES:
                    if worker is None and now - launched_at >= self.stack.settings.boot_seconds:
                        self._start(instance_id, group)
                    elif worker is not None and not worker.running:
                        # The container died under a serving instance: EC2 health checks replace it.
                        self.emulator.mark_unhealthy(instance_id)
                    elif (state == "Pending" and self.healthy(instance_id)) or state == "Pending:Proceed":
                        self.emulator.set_state(instance_id, "InService")
                elif state in STOPPING_STATES:
                    if worker is None:
                        self.emulator.remove(instance_id)
                    elif worker.running and not worker.signalled:
                        self.signal(instance_id, signal.SIGTERM)
                    elif not worker.running:
                        self._reap(instance_id)
                        self.emulator.remove(instance_id)

    def _reap(self, instance_id: str) -> None:
        worker = self.workers.pop(instance_id)
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
