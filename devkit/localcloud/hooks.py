"""Answers the local cloud's lifecycle events: the launch readiness gate and the terminate drain.

It drives the instances through the real Auto Scaling API (CompleteLifecycleAction and heartbeats
against the local endpoint), never by touching the emulator's state directly.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devkit.localcloud.fleet import WorkerFleet


@dataclass
class HookResponder:
    fleet: WorkerFleet
    autoscaling: Any  # a boto3 Auto Scaling client for the local endpoint
    clock: Callable[[], float]
    launch_timeout: float
    terminate_timeout: float
    poll_seconds: float = 0.2

    def __call__(self, event: dict[str, Any]) -> None:
        # Answer in the background: the emulator calls this while holding its lock.
        threading.Thread(target=self._answer, args=(event,), daemon=True, name="hook-responder").start()

    def _answer(self, event: dict[str, Any]) -> None:
        detail = event["detail"]
        instance = detail["EC2InstanceId"]
        if detail["LifecycleTransition"].endswith("LAUNCHING"):
            healthy = self._wait(lambda: self.fleet.healthy(instance), self.launch_timeout, detail)
            result = "CONTINUE" if healthy else "ABANDON"
        else:
            # Drain: SIGTERM (what `docker stop` sends), then wait for the worker's own drain to end.
            self.fleet.signal(instance, signal.SIGTERM)
            self._wait(lambda: self.fleet.worker_exited(instance), self.terminate_timeout, detail)
            # The instance leaves either way; CONTINUE lets it go now instead of at the hook's timeout.
            result = "CONTINUE"
        self.autoscaling.complete_lifecycle_action(
            LifecycleHookName=detail["LifecycleHookName"],
            AutoScalingGroupName=detail["AutoScalingGroupName"],
            LifecycleActionToken=detail["LifecycleActionToken"],
            LifecycleActionResult=result,
        )

    def _wait(self, done: Callable[[], bool], timeout: float, detail: dict[str, Any]) -> bool:
        started = self.clock()
        last_heartbeat = started
        while self.clock() - started < timeout:
            if done():
                return True
            if self.clock() - last_heartbeat > timeout / 3:
                self.autoscaling.record_lifecycle_action_heartbeat(
                    LifecycleHookName=detail["LifecycleHookName"],
                    AutoScalingGroupName=detail["AutoScalingGroupName"],
                    LifecycleActionToken=detail["LifecycleActionToken"],
                )
                last_heartbeat = self.clock()
            time.sleep(self.poll_seconds)
        return done()
