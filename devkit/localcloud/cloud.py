"""The local cloud: moto on 127.0.0.1, the stack's resources, instances that run real workers, schedules.

The real boto3 adapters and the real handlers talk to it through AWS_ENDPOINT_URL; only what moto
lacks is emulated (devkit/localcloud/emulation.py).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from devkit.lambdas import LocalContext
from devkit.localcloud import functions
from devkit.localcloud import stack as stack_module
from devkit.localcloud.emulation import AutoScalingEmulator, RunCommandEmulator
from devkit.localcloud.fleet import WorkerFleet
from devkit.localcloud.iam import LocalIam, current_component, resource_context
from devkit.localcloud.imds import instance_metadata
from devkit.localcloud.ledger import local_ledger
from devkit.localcloud.recording import CallRecorder, default_session
from devkit.localcloud.server import moto_server
from devkit.localcloud.stack import LocalSettings, LocalStack
from queue_scaler.lifecycle.domain.deadlines import SPOT_NOTICE_SECONDS

logger = logging.getLogger(__name__)
CONTROL_SECONDS = 0.2
#: The sample events (events/), the same files `sam local invoke -e` reads.
EVENTS = Path(__file__).resolve().parents[2] / "events"


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
class FunctionRunner:
    """One template function, loaded in-process, invoked as Lambda would (counts kept for status)."""

    name: str
    module: Any
    handler: str
    timeout: float
    memory_mb: int = 128
    invocations: int = 0
    errors: int = 0
    last_error: str | None = None
    last: Any = None
    #: Runs the invocation under the function's own role (devkit/localcloud/iam.py).
    acting_as: Callable[[str], AbstractContextManager[None]] = lambda _name: nullcontext()

    def invoke(self, event: dict[str, Any]) -> Any:
        """The handler's result, or None when it raised."""
        try:
            self.invocations += 1
            context = LocalContext(self.timeout, self.name, memory_limit_in_mb=self.memory_mb)
            with self.acting_as(self.name):
                self.last = result = getattr(self.module, self.handler)(event, context)
            return result
        except Exception as error:
            self.errors += 1
            self.last_error = f"{type(error).__name__}: {error}"
            logger.exception("%s invocation failed", self.name)
            return None

    def invoke_async(self, event: dict[str, Any]) -> None:
        threading.Thread(target=self.invoke, args=(event,), name=self.name, daemon=True).start()

    def status(self) -> dict[str, Any]:
        return {"invocations": self.invocations, "errors": self.errors, "last_error": self.last_error}


class LocalCloud:
    """The whole system on one machine. `start()` brings it up, `stop()` takes every process down."""

    def __init__(self, state_dir: Path, settings: LocalSettings | None = None) -> None:
        self.settings = settings or LocalSettings()
        self.state_dir = state_dir
        self._resources = ExitStack()
        self.endpoint_url = ""
        self.stack: LocalStack | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: job_id (or message id, for a body that is not a job) of every dead letter delivered to the refunds.
        self.dead_lettered: set[str] = set()
        self.fleet: WorkerFleet | None = None
        #: Lifecycle events on their way to LifecycleEventsQueue (EventBridge's rule targets); sent by
        #: the event source thread, never from inside an emulated API call.
        self._outbox: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        #: Lifecycle events lost on purpose (LocalSettings.drop_lifecycle_events), by detail-type.
        self.dropped_events: Counter[str] = Counter()

    # --- lifecycle of the cloud itself ---------------------------------------------------------
    def start(self) -> str:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.endpoint_url = self._resources.enter_context(moto_server())
        self._environment()
        # Roles first: from here on every request is judged against its caller's policies.
        self.iam = LocalIam(self.settings, self.endpoint_url)
        self.iam.start()
        CallRecorder(
            self.state_dir / "calls",
            current_component,
            resource_context,
            partition_keys=stack_module.partition_keys(self.settings),
        ).attach(default_session())
        self.emulator = AutoScalingEmulator(
            clock=time.time, on_event=self._lifecycle_event, region=self.settings.region
        )
        self.emulator.install()
        session = boto3.session.Session(region_name=self.settings.region)
        self.autoscaling = session.client("autoscaling", endpoint_url=self.endpoint_url)
        self.sqs = session.client("sqs", endpoint_url=self.endpoint_url)
        self.dynamodb = session.client("dynamodb", endpoint_url=self.endpoint_url)
        self.cloudwatch = session.client("cloudwatch", endpoint_url=self.endpoint_url)
        # Lambda's SQS poller: its calls are the function's (recorded and judged against its role).
        self._poller = default_session().client("sqs", endpoint_url=self.endpoint_url)
        self.stack = stack_module.create(self.settings, self.endpoint_url)
        imds_url = self._resources.enter_context(instance_metadata(self.emulator.target_lifecycle_state))
        self.fleet = WorkerFleet(
            self.stack, self.emulator, self.endpoint_url, self.state_dir, time.time, imds_url=imds_url, iam=self.iam
        )
        self.agent = RunCommandEmulator(
            clock=time.time,
            drain=self.fleet.drain,
            exit_code=self.fleet.exit_code,
            healthy=self.fleet.healthy,
            tail=self.fleet.tail,
            on_event=self._lifecycle_event,
            region=self.settings.region,
        )
        self.agent.install()
        self.scaler = self._load_scaler()
        self.lifecycle = self._load("LifecycleFunction")
        self.metrics_function = self._load("MetricsFunction")
        self.refunds = self._load("DlqRefundFunction")
        self.ledger = local_ledger(self.endpoint_url, self.settings)
        self._spawn(self._lifecycle_event_source, "lifecycle-source")
        self._spawn(self._control_loop, "control")
        self._spawn(self._schedule_loop, "schedule")
        return self.endpoint_url

    def stop(self) -> None:
        """Stop the schedules, drain and stop every worker, then the emulator. Workers come first:
        they are the processes that would outlive this one."""
        logger.info("local cloud stopping")
        self._stop.set()
        control = [t for t in self._threads if t.name == "control"]
        for thread in control:
            thread.join(timeout=2)  # no worker may start after the fleet is stopped
        if self.fleet is not None:
            self.fleet.stop_all(timeout=self.settings.drain_seconds + 2)
        for thread in self._threads:
            # Daemon threads, each checking the stop event at least every second; an invocation still
            # running in one of them ends with the process.
            thread.join(timeout=2)
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
        # The admin key alone: a session token inherited from the caller (the demo's producer role, in a
        # process that ran the demo before) would make every request an unknown session's.
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- what drives the system ------------------------------------------------------------------
    def _lifecycle_event(self, event: dict[str, Any]) -> None:
        """EventBridge's rules: lifecycle, Spot and command-status events go to LifecycleEventsQueue."""
        kind = str(event.get("detail-type"))
        if kind in self.settings.drop_lifecycle_events:
            self.dropped_events[kind] += 1
            logger.warning("fault injection: %s for %s dropped", kind, json.dumps(event.get("detail")))
            return
        self._outbox.put(event)

    def _lifecycle_event_source(self) -> None:
        """LifecycleFunction's SQS event source on LifecycleEventsQueue (partial batch responses)."""
        url = self.sqs.get_queue_url(QueueName=stack_module.lifecycle_events_queue(self.settings))["QueueUrl"]
        arn = self._arn(url)
        while not self._stop.wait(CONTROL_SECONDS):
            try:
                while not self._outbox.empty():
                    self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(self._outbox.get()))
                while self._deliver(url, arn, self.lifecycle, visibility=10):
                    pass
            except Exception:
                logger.exception("lifecycle event delivery failed")

    def _control_loop(self) -> None:
        assert self.fleet is not None
        while not self._stop.wait(CONTROL_SECONDS):
            try:
                self.emulator.expire()
                self.emulator.fill_warm_pools()
                self.emulator.advance_refreshes()
                self.agent.step()
                self.fleet.step()
            except Exception:
                logger.exception("local cloud control step failed")

    def _load_scaler(self) -> FunctionRunner:
        module, spec = functions.load("ScalerFunction", functions.environment("ScalerFunction", self.settings))
        # The template reserves no concurrency by default: an invocation arriving while one runs
        # runs beside it, as on AWS (the history table's version condition keeps them from both acting).
        return FunctionRunner(
            "ScalerFunction",
            module,
            spec.handler,
            self.settings.schedule_seconds + 2,
            spec.memory_mb,
            acting_as=self.iam.acting_as,
        )

    def _load(self, logical_id: str) -> FunctionRunner:
        module, spec = functions.load(logical_id, functions.environment(logical_id, self.settings))
        return FunctionRunner(
            logical_id, module, spec.handler, spec.timeout, spec.memory_mb, acting_as=self.iam.acting_as
        )

    def _schedule_loop(self) -> None:
        """The template's schedule rules (the scaler's and the metrics' minute, the lifecycle
        reconciler's) and the dead-letter queues' event source mapping."""
        if self.settings.schedule_seconds > 0:
            self._spawn(lambda: self._every(self.settings.schedule_seconds, self.scaler, "ScalerSchedule"), "scaler")
            self._spawn(
                lambda: self._every(self.settings.schedule_seconds, self.metrics_function, "MetricsSchedule"), "metrics"
            )
        self._spawn(self._dead_letter_source, "dlq-source")
        if self.settings.reconcile_schedule:
            self._every(self.settings.reconcile_seconds, self.lifecycle, "LifecycleReconcile")

    def _dead_letter_source(self) -> None:
        """Lambda's SQS event source on every DLQ: batches of up to 10, partial batch responses.

        Records the function reports as failed stay in the queue and come back after their
        visibility timeout; the others are deleted, as Lambda deletes a batch's successes.
        """
        assert self.stack is not None
        sources = {
            dlq: source
            for pool in self.stack.pools.values()
            for source, dlq in zip(pool.queue_urls, pool.dlq_urls, strict=True)
        }
        arns = {url: self._arn(url) for url in [*sources, *sources.values()]}
        while not self._stop.wait(1.0):
            for dlq, source in sources.items():
                try:
                    self._deliver_dead_letters(dlq, arns[dlq], arns[source])
                except Exception:
                    logger.exception("dead-letter delivery from %s failed", dlq)

    def _deliver_dead_letters(self, dlq: str, dlq_arn: str, source_arn: str) -> None:
        # SQS adds the source queue to messages it moved to a DLQ; moto does not.
        self._deliver(
            dlq, dlq_arn, self.refunds, visibility=30, attributes={"DeadLetterQueueSourceArn": source_arn}, seen=True
        )

    def _deliver(
        self,
        url: str,
        arn: str,
        runner: FunctionRunner,
        *,
        visibility: int,
        attributes: dict[str, str] | None = None,
        seen: bool = False,
    ) -> bool:
        """One batch of Lambda's SQS event source: up to 10 records, partial batch responses.

        Records the function reports as failed stay in the queue and come back after their
        visibility timeout; the others are deleted, as Lambda deletes a batch's successes. False
        when the queue had nothing. `seen` records each body's job as dead-lettered (for status).
        Lambda's poller reads and deletes with the function's execution role, not its own.
        """
        with self.iam.acting_as(runner.name):
            return self._deliver_as_function(
                url, arn, runner, visibility=visibility, attributes=attributes or {}, seen=seen
            )

    def _deliver_as_function(
        self, url: str, arn: str, runner: FunctionRunner, *, visibility: int, attributes: dict[str, str], seen: bool
    ) -> bool:
        messages = self._poller.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=visibility, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return False
        records: list[dict[str, Any]] = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {**dict(m.get("Attributes", {})), **attributes},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": self.settings.region,
            }
            for m in messages
        ]
        if seen:
            for record in records:
                self.dead_lettered.add(_job_id(record["body"]) or f"message:{record['messageId']}")
        result = runner.invoke({"Records": records})
        if result is None:
            return True  # the whole invocation failed: every record comes back
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [r for r in records if r["messageId"] not in failed]
        if done:
            self._poller.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": str(r["receiptHandle"])} for i, r in enumerate(done)],
            )
        return True

    def _arn(self, url: str) -> str:
        return str(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    def _every(self, seconds: float, runner: FunctionRunner, rule: str) -> None:
        while not self._stop.is_set():
            runner.invoke_async(scheduled_event(self.settings.region, rule))
            self._stop.wait(seconds)

    # --- what `local status` shows ---------------------------------------------------------------
    def spot_interruption(self, instance_id: str) -> dict[str, Any]:
        """EC2's Spot interruption warning for an instance, in compressed time: the warning goes to the
        lifecycle intake as EventBridge delivers it, and the instance is reclaimed at the notice's end.

        The notice lasts `spot_notice_seconds` here instead of 120 s: the event's `time` is set that much
        less than 120 s ago, so that LifecycleFunction (which dates the notice's end from it) and the
        reclaim agree on one moment. Returns the event.
        """
        assert self.fleet is not None
        now = time.time()
        ends_at = now + self.settings.spot_notice_seconds
        event = json.loads((EVENTS / "lifecycle" / "spot-interruption.json").read_text())
        event |= {
            "id": str(uuid.uuid4()),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ends_at - SPOT_NOTICE_SECONDS)),
            "region": self.settings.region,
            "resources": [f"arn:aws:ec2:{self.settings.region}:123456789012:instance/{instance_id}"],
        }
        event["detail"] = {**event["detail"], "instance-id": instance_id}
        # The event's time has whole seconds: the reclaim is dated from what LifecycleFunction will read.
        self.fleet.reclaim_at(instance_id, float(int(ends_at - SPOT_NOTICE_SECONDS)) + SPOT_NOTICE_SECONDS)
        self._lifecycle_event(event)
        return dict(event)

    def status(self, ledger: bool = True) -> dict[str, Any]:
        """Every pool, queue, lifecycle action, worker and function; with `ledger`, the ledger's figures too.

        The ledger's figures come from a scan of the whole table (seconds with a few hundred jobs on a busy
        machine, and the scan holds this process meanwhile): a caller that polls for pools and queues
        leaves them out."""
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
                {
                    "id": i["InstanceId"],
                    "state": i["LifecycleState"],
                    "healthy": self.fleet.healthy(i["InstanceId"]),
                    "worker_pid": self.fleet.pid(i["InstanceId"]),
                    "launch_template_version": i.get("LaunchTemplate", {}).get("Version"),
                }
                for i in group["Instances"]
            ]
            # A group with a warm pool launches from its plain launch template (stack.py).
            spec = (
                group.get("LaunchTemplate")
                or group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
            )
            pools[name] = {
                "group": pool.config.group_name,
                "desired": group["DesiredCapacity"],
                "in_service": sum(1 for i in instances if i["state"] == "InService"),
                "instance_seconds": round(self.emulator.instance_seconds(pool.config.group_name), 1),
                "instances": instances,
                "launch_template_version": spec.get("Version"),
                "refreshes": [r.as_dict() for r in self.emulator.refreshes.get(pool.config.group_name, [])],
                "desired_changes": self.emulator.desired_changes.get(pool.config.group_name, []),
                # Its warm pool's instances (DescribeWarmPool), and each start into service: (instance id,
                # seconds from launch or warm start to InService, whether it was a warm start).
                **(
                    {
                        "warm_pool": self.emulator.warm_instances(pool.config.group_name),
                        "warm_pool_size": self.emulator.warm_pool_target(pool.config.group_name),
                    }
                    if self.emulator.warm_pool_state(pool.config.group_name) is not None
                    else {}
                ),
                "starts": self.emulator.starts.get(pool.config.group_name, []),
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
                "completed": sum(1 for a in actions if not a.pending and not a.timed_out and not a.cancelled),
                "timed_out": sum(1 for a in actions if a.timed_out),
                "cancelled": sum(1 for a in actions if a.cancelled),
                "pending": sum(1 for a in actions if a.pending),
                "results": dict(results),
                # What LifecycleFunction recorded (its actions table), however it was invoked.
                "recorded": self._recorded_actions(),
            },
            "workers": {
                "running": len(self.fleet.workers),
                "pids": self.fleet.pids(),
                "finished": self.fleet.finished[-50:],
                "reclaims": dict(self.fleet.reclaims),
            },
            "scaler": {**self.scaler.status(), "last": (self.scaler.last or {}).get("pools", [])},
            "functions": {
                runner.name: runner.status() for runner in (self.lifecycle, self.metrics_function, self.refunds)
            },
            **({"ledger": self._ledger_status()} if ledger else {}),
            "dropped_lifecycle_events": dict(self.dropped_events),
            # The metrics in CloudWatch (the EMF that `invoke` published, as CloudWatch Logs would).
            "metrics": sorted(
                {m["MetricName"] for m in self.cloudwatch.list_metrics(Namespace="QueueScaler").get("Metrics", [])}
            ),
            "dead_lettered_jobs": sorted(self.dead_lettered),
        }

    def _ledger_status(self) -> dict[str, Any]:
        summary = self.ledger.summary()
        return {
            "refunds": summary.refunds,
            "recorded": summary.recorded,
            # Every job the ledger knows, counted once by its outcome (CONTRACTS.md section 6).
            "outcomes": {str(outcome): count for outcome, count in summary.outcomes.items()},
            "reserved": summary.reserved,
            "refunded": summary.refunded,
            "charged": summary.charged,
            "problems": summary.problems(),
            "parked": len(self._items(stack_module.parking_table(self.settings))),
            "balances": {a.user_id: a.balance for a in summary.accounts},
        }

    def _items(self, table: str) -> list[dict[str, Any]]:
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        return [item for page in pages for item in page.get("Items", [])]

    def _recorded_actions(self) -> list[dict[str, Any]]:
        return [
            {name: item[name]["S"] for name in ("instance_id", "kind", "state", "command_id") if name in item}
            for item in self._items(stack_module.actions_table(self.settings))
        ]

    def _queue_counts(self, url: str) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _job_id(body: str) -> str | None:
    try:
        job = json.loads(body)
    except ValueError:
        return None
    return str(job["job_id"]) if isinstance(job, dict) and "job_id" in job else None
