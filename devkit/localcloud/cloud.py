"""The local cloud: moto on 127.0.0.1, the stack's resources, instances that run real workers, schedules.

The real boto3 adapters and the real handlers talk to it through AWS_ENDPOINT_URL; only what moto
lacks is emulated (devkit/localcloud/emulation.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from devkit.lambdas import LocalContext
from devkit.localcloud import functions
from devkit.localcloud import stack as stack_module
from devkit.localcloud.emulation import AutoScalingEmulator
from devkit.localcloud.fleet import WorkerFleet
from devkit.localcloud.hooks import HookResponder
from devkit.localcloud.server import moto_server
from devkit.localcloud.stack import LocalSettings, LocalStack

logger = logging.getLogger(__name__)
CONTROL_SECONDS = 0.2


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scheduled_event(region: str, rule: str) -> dict[str, Any]:
    """What EventBridge sends for a `rate(...)` schedule rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [f"arn:aws:events:{region}:123456789012:rule/{rule}"],
        "detail": {},
    }


@dataclass
class ScalerRuns:
    invocations: int = 0
    errors: int = 0
    last_error: str | None = None
    last: list[dict[str, Any]] = field(default_factory=list)


class LocalCloud:
    """The whole system on one machine. `start()` brings it up, `stop()` takes every process down."""

    def __init__(self, state_dir: Path, settings: LocalSettings | None = None) -> None:
        self.settings = settings or LocalSettings()
        self.state_dir = state_dir
        self._resources = ExitStack()
        self.endpoint_url = ""
        self.stack: LocalStack | None = None
        self.scaler = ScalerRuns()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._scaler_busy = threading.Lock()
        # The fleet exists only once the stack does; lifecycle events raised while creating it wait here.
        self.fleet: WorkerFleet | None = None
        self._early_events: list[dict[str, Any]] = []

    # --- lifecycle of the cloud itself ---------------------------------------------------------
    def start(self) -> str:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.endpoint_url = self._resources.enter_context(moto_server())
        self._environment()
        self.emulator = AutoScalingEmulator(
            clock=time.time, on_event=self._lifecycle_event, region=self.settings.region
        )
        self.emulator.install()
        session = boto3.session.Session(region_name=self.settings.region)
        self.autoscaling = session.client("autoscaling", endpoint_url=self.endpoint_url)
        self.sqs = session.client("sqs", endpoint_url=self.endpoint_url)
        self.stack = stack_module.create(self.settings, self.endpoint_url)
        self.fleet = WorkerFleet(self.stack, self.emulator, self.endpoint_url, self.state_dir, time.time)
        self.responder = HookResponder(
            self.fleet,
            self.autoscaling,
            time.time,
            launch_timeout=self.settings.launch_hook_timeout - 5,
            terminate_timeout=self.settings.drain_seconds + 10,
        )
        for pending in self._early_events:
            self.responder(pending)
        self._early_events.clear()
        self._scaler = self._load_scaler()
        self._spawn(self._control_loop, "control")
        self._spawn(self._schedule_loop, "schedule")
        return self.endpoint_url

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.settings.schedule_seconds + 5)
        if self.fleet is not None:
            self.fleet.stop_all(timeout=self.settings.drain_seconds + 2)
        self._resources.close()

    def _environment(self) -> None:
        """The process environment every in-process handler and client sees: the local endpoint only."""
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_DEFAULT_REGION": self.settings.region,
                "AWS_REGION": self.settings.region,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_MAX_ATTEMPTS": "2",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_NAMESPACE": "QueueScaler",
            }
        )
        os.environ.pop("AWS_PROFILE", None)

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- what drives the system ------------------------------------------------------------------
    def _lifecycle_event(self, event: dict[str, Any]) -> None:
        if self.fleet is None:
            self._early_events.append(event)
        else:
            self.responder(event)

    def _control_loop(self) -> None:
        assert self.fleet is not None
        while not self._stop.wait(CONTROL_SECONDS):
            try:
                self.emulator.expire()
                self.fleet.step()
            except Exception:
                logger.exception("local cloud control step failed")

    def _load_scaler(self) -> Any:
        # The template's environment, with the local cloud's compressed time.
        env = functions.environment(
            "ScalerFunction",
            self.settings,
            {
                "TICK_SECONDS": str(self.settings.tick_seconds),
                # End before the next scheduled invocation, as the deployed function does (55 of 60 s).
                "RUN_SECONDS": str(max(0.0, self.settings.schedule_seconds - self.settings.tick_seconds - 0.5)),
                "SAFETY_MARGIN_SECONDS": "0.5",
                "CONFIG_MAX_AGE_SECONDS": "5",
            },
        )
        module, _spec = functions.load("ScalerFunction", env)
        return module

    def invoke_scaler(self) -> None:
        """One scheduled invocation of ScalerFunction; skipped while one runs (reserved concurrency 1)."""
        if not self._scaler_busy.acquire(blocking=False):
            return
        try:
            self.scaler.invocations += 1
            context = LocalContext(timeout_seconds=self.settings.schedule_seconds + 2, function_name="ScalerFunction")
            result = self._scaler.lambda_handler(scheduled_event(self.settings.region, "ScalerSchedule"), context)
            self.scaler.last = result["pools"]
        except Exception as error:
            self.scaler.errors += 1
            self.scaler.last_error = f"{type(error).__name__}: {error}"
            logger.exception("scaler invocation failed")
        finally:
            self._scaler_busy.release()

    def _schedule_loop(self) -> None:
        while not self._stop.is_set():
            threading.Thread(target=self.invoke_scaler, name="scaler", daemon=True).start()
            self._stop.wait(self.settings.schedule_seconds)

    # --- what `local status` shows ---------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        assert self.stack is not None
        assert self.fleet is not None
        groups = {
            g["AutoScalingGroupName"]: g
            for g in self.autoscaling.describe_auto_scaling_groups(
                AutoScalingGroupNames=[p.config.group_name for p in self.stack.pools.values()]
            )["AutoScalingGroups"]
        }
        pools: dict[str, Any] = {}
        queues: dict[str, Any] = {}
        for name, pool in self.stack.pools.items():
            group = groups[pool.config.group_name]
            instances = [
                {"id": i["InstanceId"], "state": i["LifecycleState"], "healthy": self.fleet.healthy(i["InstanceId"])}
                for i in group["Instances"]
            ]
            pools[name] = {
                "group": pool.config.group_name,
                "desired": group["DesiredCapacity"],
                "in_service": sum(1 for i in instances if i["state"] == "InService"),
                "instance_seconds": round(self.emulator.instance_seconds(pool.config.group_name), 1),
                "instances": instances,
            }
            for url, dlq in zip(pool.queue_urls, pool.dlq_urls, strict=True):
                attrs = self._queue_counts(url)
                queues[url.rsplit("/", 1)[-1]] = {
                    "pool": name,
                    "visible": attrs[0],
                    "in_flight": attrs[1],
                    "dlq": sum(self._queue_counts(dlq)),
                }
        actions = list(self.emulator.actions.values())
        results = Counter(a.result for a in actions if not a.pending)
        return {
            "endpoint_url": self.endpoint_url,
            "pools": pools,
            "queues": queues,
            "lifecycle": {
                "completed": sum(1 for a in actions if not a.pending and not a.timed_out),
                "timed_out": sum(1 for a in actions if a.timed_out),
                "pending": sum(1 for a in actions if a.pending),
                "results": dict(results),
            },
            "workers": {"running": len(self.fleet.workers), "finished": self.fleet.finished[-50:]},
            "scaler": {
                "invocations": self.scaler.invocations,
                "errors": self.scaler.errors,
                "last_error": self.scaler.last_error,
                "last": self.scaler.last,
            },
        }

    def _queue_counts(self, url: str) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])
