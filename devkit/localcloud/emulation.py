"""What moto lacks, and only that (see ../shared/TOOLCHAIN.md): lifecycle hooks and the instances' SSM agent.

moto's Auto Scaling puts new instances InService at once, removes scaled-in ones at once, stores
lifecycle hooks without firing them, and does not implement CompleteLifecycleAction or
RecordLifecycleActionHeartbeat. This module patches moto, in the local cloud's process only, so that:

- a launch goes Pending (booting), or Pending:Wait when the group has a launch hook, then
  Pending:Proceed and InService once the action completes with CONTINUE (ABANDON terminates it);
- a scale-in picks instances as the group's default termination policy does: protected instances
  are never chosen; then the Availability Zone with the most instances, the oldest launch template
  version, the instance closest to its next billing hour, and at random among the rest (not "idle
  first": Auto Scaling cannot see whether a worker is busy, only its scale-in protection). A group
  whose desired capacity is below its protected instances keeps them, and terminates each one as its
  protection is removed (SetInstanceProtection). Chosen instances go Terminating:Wait when there is a
  terminate hook, Terminating:Proceed once it completes (or times out), and Terminated once the
  instance's worker has stopped;
- CompleteLifecycleAction and RecordLifecycleActionHeartbeat are real API calls, answered with the
  API's XML, so the project's boto3 code talks to them unchanged; an unknown or finished token is
  the API's ValidationError "No active Lifecycle Action found";
- a hook that nobody completes ends at its HeartbeatTimeout with its DefaultResult;
- StartInstanceRefresh and DescribeInstanceRefreshes are real API calls too (InstanceRefresh, below):
  each instance reports the launch template version it was launched from, and a refresh replaces
  the instances of another version, launch before terminate, through both hooks.

- a group with a warm pool (PutWarmPool, moto's own configuration) keeps it filled as AWS does: AWS's
  size (MaxGroupPreparedCapacity, or MaxSize, minus desired capacity; at least the pool's MinSize) of
  instances launched outside desired capacity, each through Warmed:Pending:Wait (the launch hook, its
  event's Origin EC2 and Destination WarmPool) to Warmed:<PoolState> once the action completes (the
  worker fleet stops a Stopped or Hibernated pool's worker, as the instance stops). A scale-out takes
  warmed instances first: Pending:Wait again, Origin WarmPool and Destination AutoScalingGroup, a warm
  start (LocalSettings.warm_start_seconds instead of a cold boot). DescribeWarmPool answers with them
  (moto's lists none). Not emulated: trimming a pool above its size, and ReuseOnScaleIn's way back.

- SendCommand runs on the local instances what the LifecycleFunction's scripts would run
  (RunCommandEmulator, below).

Everything else (queues, tables, topics, parameters, groups themselves) is moto's own.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.autoscaling import models as asg_models
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from queue_scaler.lifecycle.domain.commands import (
    COMMENT_MAX_CHARS,
    HEALTHY,
    CommandComment,
    Purpose,
    drain_output,
    health_output,
    parse_comment,
)

#: GetCommandInvocation's StandardOutputContent: the first 24,000 characters a command wrote to stdout.
STDOUT_CONTENT_CHARS = 24_000

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
TERMINATING_STATES = ("Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated")
#: An instance in (or headed for) a warm pool: outside the group's instances and desired capacity.
WARMED_PREFIX = "Warmed:"
#: The warm pool's steady states: prepared instances a scale-out starts first.
WARMED_READY = ("Warmed:Stopped", "Warmed:Running", "Warmed:Hibernated")


@dataclass
class LifecycleAction:
    """One pending (or finished) lifecycle action, as Auto Scaling tracks it."""

    token: str
    group: str
    hook: str
    instance_id: str
    transition: str
    started_at: float
    deadline: float
    heartbeat_timeout: float
    default_result: str
    result: str | None = None
    completed_at: float | None = None
    timed_out: bool = False
    #: Ended by the instance's termination (e.g. found unhealthy) before anyone completed it.
    cancelled: bool = False
    heartbeats: int = 0

    @property
    def pending(self) -> bool:
        return self.completed_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "group": self.group,
            "hook": self.hook,
            "instance_id": self.instance_id,
            "transition": self.transition,
            "result": self.result,
            "timed_out": self.timed_out,
            "cancelled": self.cancelled,
            "heartbeats": self.heartbeats,
            "seconds": round((self.completed_at or self.started_at) - self.started_at, 2),
        }


@dataclass
class InstanceRecord:
    instance_id: str
    group: str
    launched_at: float
    state: Any  # moto's InstanceState; its lifecycle_state is what DescribeAutoScalingGroups reports
    #: The group's launch template version when the instance launched (the policy's "oldest" rule).
    template_version: int = 0
    #: When its current start began: its launch, or its leaving the warm pool (a warm start).
    started_at: float = 0.0
    warm_start: bool = False
    #: Seconds spent stopped or hibernated in a warm pool (EC2 bills no instance time for them), and since
    #: when it is there now.
    parked_seconds: float = 0.0
    parked_since: float | None = None

    def billed_seconds(self, now: float) -> float:
        """Instance time EC2 bills: since launch, less the time stopped or hibernated in a warm pool."""
        parked = self.parked_seconds + (now - self.parked_since if self.parked_since is not None else 0.0)
        return now - self.launched_at - parked


#: An instance refresh in these states is not over (AWS refuses to start another).
REFRESH_ACTIVE = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")


class InstanceRefreshInProgress(AutoscalingClientError):
    code = "InstanceRefreshInProgress"


@dataclass
class InstanceRefresh:
    """One instance refresh, as Auto Scaling runs it with MinHealthyPercentage <= 100 <= MaxHealthyPercentage.

    The instances to replace are fixed at its start (with SkipMatching, those of another launch template
    version than the group's). While healthy capacity allows (MaxHealthyPercentage of the desired
    capacity), a replacement is launched for each, through the launch hook; once a replacement is
    InService, its old instance is terminated through the terminate hook if the in-service instances
    left stay at or above MinHealthyPercentage of desired. A refresh counts an old instance and its
    replacement as one instance of the desired capacity. Protected instances are replaced with
    ScaleInProtectedInstances "Refresh", skipped with "Ignore", waited for with "Wait". It succeeds once
    every instance to replace is gone.
    """

    refresh_id: str
    group: str
    started_at: float
    preferences: dict[str, Any]
    to_replace: list[str]
    total: int
    status: str = "InProgress"
    ended_at: float | None = None
    #: Old instance id -> the id of its replacement.
    pairs: dict[str, str] = field(default_factory=dict)

    def percent(self, key: str, default: int) -> int:
        value = self.preferences.get(key)
        return int(value) if value not in (None, "") else default

    @property
    def protected_rule(self) -> str:
        return str(self.preferences.get("ScaleInProtectedInstances") or "Wait")

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.refresh_id,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "total": self.total,
            "left": len(self.to_replace),
            "preferences": self.preferences,
        }

    def as_xml(self) -> str:
        done = self.total - len(self.to_replace)
        percentage = 100 if self.total == 0 else done * 100 // self.total
        end = f"<EndTime>{_iso(self.ended_at)}</EndTime>" if self.ended_at is not None else ""
        prefs = "".join(f"<{k}>{_xml_value(v)}</{k}>" for k, v in self.preferences.items() if not isinstance(v, dict))
        return (
            f"<member><InstanceRefreshId>{self.refresh_id}</InstanceRefreshId>"
            f"<AutoScalingGroupName>{self.group}</AutoScalingGroupName><Status>{self.status}</Status>"
            f"<StartTime>{_iso(self.started_at)}</StartTime>{end}"
            f"<PercentageComplete>{percentage}</PercentageComplete>"
            f"<InstancesToUpdate>{len(self.to_replace)}</InstancesToUpdate>"
            f"<Preferences>{prefs}</Preferences></member>"
        )


@dataclass
class AutoScalingEmulator:
    """Lifecycle states and actions on top of moto's Auto Scaling backend (one per local cloud)."""

    clock: Callable[[], float]
    #: Called with an EventBridge-shaped lifecycle event whenever an instance enters a :Wait state.
    on_event: Callable[[dict[str, Any]], None]
    account: str = "123456789012"
    region: str = "us-east-1"
    lock: threading.RLock = field(default_factory=threading.RLock)
    actions: dict[str, LifecycleAction] = field(default_factory=dict)
    instances: dict[str, InstanceRecord] = field(default_factory=dict)
    #: Seconds each removed instance lived (launch request to termination, as EC2 bills), per group.
    lifetimes: dict[str, list[float]] = field(default_factory=dict)
    #: The default termination policy's last tie-breaker: "at random".
    rng: random.Random = field(default_factory=random.Random)
    #: Each group's instance refreshes, the newest last.
    refreshes: dict[str, list[InstanceRefresh]] = field(default_factory=dict)
    #: Each group's changes of desired capacity: (when, from, to, whether a refresh was running).
    desired_changes: dict[str, list[tuple[float, int, int, bool]]] = field(default_factory=dict)
    #: Each group's starts into service: (instance id, seconds from launch or warm start to InService, warm).
    starts: dict[str, list[tuple[str, float, bool]]] = field(default_factory=dict)

    # --- installation -----------------------------------------------------------------------
    def install(self) -> None:
        """Patch moto in this process. Idempotent per process: the last installed emulator wins."""
        emulator = self

        def set_desired_capacity(group: Any, new_capacity: int | None) -> None:
            emulator._set_desired_capacity(group, new_capacity)

        def complete_lifecycle_action(response: AutoScalingResponse) -> str:
            emulator._complete(
                response._get_param("AutoScalingGroupName"),
                response._get_param("LifecycleHookName"),
                response._get_param("LifecycleActionToken"),
                response._get_param("InstanceId"),
                response._get_param("LifecycleActionResult"),
            )
            return _xml("CompleteLifecycleAction")

        def record_lifecycle_action_heartbeat(response: AutoScalingResponse) -> str:
            emulator._heartbeat(
                response._get_param("AutoScalingGroupName"),
                response._get_param("LifecycleHookName"),
                response._get_param("LifecycleActionToken"),
                response._get_param("InstanceId"),
            )
            return _xml("RecordLifecycleActionHeartbeat")

        def start_instance_refresh(response: AutoScalingResponse) -> str:
            refresh_id = emulator.start_refresh(
                response._get_param("AutoScalingGroupName"), response._get_param("Preferences") or {}
            )
            return _xml("StartInstanceRefresh", f"<InstanceRefreshId>{refresh_id}</InstanceRefreshId>")

        def describe_instance_refreshes(response: AutoScalingResponse) -> str:
            with emulator.lock:
                listed = list(reversed(emulator.refreshes.get(response._get_param("AutoScalingGroupName"), [])))
            limit = int(response._get_param("MaxRecords") or 50)
            members = "".join(r.as_xml() for r in listed[:limit])
            return _xml("DescribeInstanceRefreshes", f"<InstanceRefreshes>{members}</InstanceRefreshes>")

        instance_template = asg_models.InstanceState.launch_template

        def launch_template(state: Any) -> dict[str, Any] | None:
            # moto reports the template's default version for every instance; Auto Scaling reports the
            # version each instance was launched from, which is what a refresh compares.
            spec: dict[str, Any] | None = instance_template.fget(state)  # type: ignore[attr-defined]
            record = emulator.instances.get(state.instance.id)
            if spec is None or record is None:
                return spec
            return {**spec, "Version": str(record.template_version)}

        update_group = asg_models.FakeAutoScalingGroup.update

        def update(group: Any, **kwargs: Any) -> None:
            # UpdateAutoScalingGroup leaves what it is not given unchanged; moto drops the group's
            # MixedInstancesPolicy (and with it the launch template version) when it is not given.
            kept = group.mixed_instances_policy
            if kwargs.get("mixed_instances_policy") is None and not kwargs.get("launch_template") and kept:
                # moto stores the specification with both the id and the name, and refuses both given.
                template = dict(kept["LaunchTemplate"])
                spec = dict(template["LaunchTemplateSpecification"])
                spec.pop("LaunchTemplateName", None)
                template["LaunchTemplateSpecification"] = spec
                kwargs["mixed_instances_policy"] = {**kept, "LaunchTemplate": template}
            update_group(group, **kwargs)

        set_instance_protection = asg_models.AutoScalingBackend.set_instance_protection

        def protect(backend: Any, group_name: str, instance_ids: list[str], protected: bool | None) -> None:
            set_instance_protection(backend, group_name, instance_ids, protected)
            emulator._protection_changed(backend.autoscaling_groups[group_name])

        def describe_warm_pool(response: AutoScalingResponse) -> ActionResult:
            name = response._get_param("AutoScalingGroupName")
            configuration = emulator.backend.describe_warm_pool(group_name=name)
            return ActionResult({"WarmPoolConfiguration": configuration, "Instances": emulator.warm_instances(name)})

        asg_models.FakeAutoScalingGroup.update = update  # type: ignore[method-assign,assignment]
        asg_models.FakeAutoScalingGroup.set_desired_capacity = set_desired_capacity  # type: ignore[method-assign,assignment]
        asg_models.AutoScalingBackend.set_instance_protection = protect  # type: ignore[method-assign,assignment]
        AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action  # type: ignore[attr-defined]
        AutoScalingResponse.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat  # type: ignore[attr-defined]
        AutoScalingResponse.start_instance_refresh = start_instance_refresh  # type: ignore[attr-defined]
        AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes  # type: ignore[attr-defined]
        AutoScalingResponse.describe_warm_pool = describe_warm_pool  # type: ignore[method-assign,assignment]
        asg_models.InstanceState.launch_template = property(launch_template)  # type: ignore[method-assign,assignment]

    @property
    def backend(self) -> Any:
        return asg_models.autoscaling_backends[self.account][self.region]

    # --- scaling ------------------------------------------------------------------------------
    def _hook(self, group: Any, transition: str) -> Any | None:
        for hook in self.backend.describe_lifecycle_hooks(group.name):
            if hook.lifecycle_transition == transition:
                return hook
        return None

    def _set_desired_capacity(self, group: Any, new_capacity: int | None) -> None:
        with self.lock:
            # None while moto's constructor sets the first desired capacity.
            before = getattr(group, "desired_capacity", None) or 0
            group.desired_capacity = group.min_size if new_capacity is None else new_capacity
            refresh = self._active_refresh(group.name)
            if group.desired_capacity != before:
                change = (self.clock(), before, group.desired_capacity, refresh is not None)
                self.desired_changes.setdefault(group.name, []).append(change)
            live = [s for s in group.instance_states if s.lifecycle_state not in TERMINATING_STATES]
            # A refresh's replacement and the old instance it replaces count as one.
            ids = {s.instance.id for s in live}
            doubled = sum(1 for old, new in (refresh.pairs if refresh else {}).items() if old in ids and new in ids)
            delta = (group.desired_capacity or 0) - (len(live) - doubled)
            if delta > 0:
                delta -= self._start_warmed(group, delta)
            if delta > 0:
                before = set(group.instance_states)
                group.replace_autoscaling_group_instances(delta, group.get_propagated_tags())
                for state in [s for s in group.instance_states if s not in before]:
                    self._launched(group, state)
            elif delta < 0:
                for state in self._scale_in_order(live)[:-delta]:
                    self._terminate(group, state)

    def _protection_changed(self, group: Any) -> None:
        """Removed protection lets a group above its desired capacity terminate what it could not before."""
        with self.lock:
            self._set_desired_capacity(group, group.desired_capacity)

    def _scale_in_order(self, live: list[Any]) -> list[Any]:
        """The default termination policy's order, one choice at a time (protected instances never)."""
        candidates = [s for s in live if not s.protected_from_scale_in]
        chosen: list[Any] = []
        zones = Counter(s.instance.placement.zone for s in live)
        now = self.clock()
        while candidates:
            # 1. The zone with the most instances (protected ones count) that has a candidate.
            zone = max({s.instance.placement.zone for s in candidates}, key=lambda z: zones[z])
            in_zone = [s for s in candidates if s.instance.placement.zone == zone]
            # 2. The oldest launch template version; 3. closest to the next billing hour; 4. at random.
            oldest = min(self._record(s).template_version for s in in_zone)
            in_zone = [s for s in in_zone if self._record(s).template_version == oldest]
            to_hour = {s.instance.id: 3600 - (now - self._record(s).launched_at) % 3600 for s in in_zone}
            nearest = min(to_hour.values())
            pick = self.rng.choice([s for s in in_zone if to_hour[s.instance.id] - nearest < 1.0])
            chosen.append(pick)
            candidates.remove(pick)
            zones[zone] -= 1
        return chosen

    def _record(self, state: Any) -> InstanceRecord:
        return self.instances.get(state.instance.id) or InstanceRecord(state.instance.id, "", 0.0, state)

    def _launched(self, group: Any, state: Any, warm: bool = False) -> None:
        """A new instance: into service, or (`warm`) into the warm pool, through the launch hook either way."""
        now = self.clock()
        self.instances[state.instance.id] = InstanceRecord(
            state.instance.id, group.name, now, state, _template_version(group), started_at=now
        )
        prefix = WARMED_PREFIX if warm else ""
        hook = self._hook(group, LAUNCHING)
        if hook is None:
            state.lifecycle_state = f"{prefix}Pending"
            return
        state.lifecycle_state = f"{prefix}Pending:Wait"
        self._start_action(group, hook, state, LAUNCHING, now)

    # --- warm pool --------------------------------------------------------------------------------
    def warm_pool_size(self, group: Any) -> int:
        """AWS's size of the group's warm pool: MaxGroupPreparedCapacity (MaxSize when not set) minus
        desired capacity, at least the pool's MinSize."""
        pool = group.warm_pool
        prepared = pool.max_group_prepared_capacity
        # The API's query string gives moto text: "-1" (or nothing) is AWS's default, the group's MaxSize.
        ceiling = group.max_size if prepared in (None, "", -1, "-1") else int(prepared)
        return max(int(pool.min_size or 0), ceiling - (group.desired_capacity or 0))

    def _warm_records(self, group_name: str) -> list[InstanceRecord]:
        return [
            r
            for r in self.instances.values()
            if r.group == group_name and r.state.lifecycle_state.startswith(WARMED_PREFIX)
        ]

    def fill_warm_pools(self) -> None:
        """Launch into each warm pool what it lacks of its size (called by the local cloud's control loop)."""
        with self.lock:
            for group in list(self.backend.autoscaling_groups.values()):
                if getattr(group, "warm_pool", None) is None:
                    continue
                lacking = self.warm_pool_size(group) - len(self._warm_records(group.name))
                for _ in range(max(0, lacking)):
                    before = {s.instance.id for s in group.instance_states}
                    group.replace_autoscaling_group_instances(1, group.get_propagated_tags())
                    # Outside desired capacity: not one of the group's instances (DescribeAutoScalingGroups).
                    launched = [s for s in group.instance_states if s.instance.id not in before]
                    group.instance_states = [s for s in group.instance_states if s.instance.id in before]
                    for state in launched:
                        self._launched(group, state, warm=True)

    def _start_warmed(self, group: Any, wanted: int) -> int:
        """A scale-out takes warmed instances first: each starts (Pending:Wait, Origin WarmPool) and
        joins the group. Returns how many it took."""
        if getattr(group, "warm_pool", None) is None:
            return 0
        ready = sorted(
            (r for r in self._warm_records(group.name) if r.state.lifecycle_state in WARMED_READY),
            key=lambda r: r.launched_at,
        )[:wanted]
        now = self.clock()
        hook = self._hook(group, LAUNCHING)
        for record in ready:
            if record.state.lifecycle_state != "Warmed:Running":
                self.backend.ec2_backend.start_instances([record.instance_id])
            if record.parked_since is not None:
                record.parked_seconds += now - record.parked_since
                record.parked_since = None
            record.started_at, record.warm_start = now, True
            group.instance_states.append(record.state)
            if hook is None:
                record.state.lifecycle_state = "Pending"
                continue
            record.state.lifecycle_state = "Pending:Wait"
            self._start_action(group, hook, record.state, LAUNCHING, now, origin="WarmPool")
        return len(ready)

    def warmed(self, instance_id: str) -> None:
        """The warm pass is over (the worker fleet stopped what runs): the instance waits in Warmed:<PoolState>."""
        with self.lock:
            record = self.instances.get(instance_id)
            group = self.backend.autoscaling_groups.get(record.group) if record else None
            if record is None or group is None or group.warm_pool is None:
                return
            pool_state = group.warm_pool.pool_state or "Stopped"
            if pool_state != "Running":
                self.backend.ec2_backend.stop_instances([instance_id])
                record.parked_since = self.clock()
            record.state.lifecycle_state = f"{WARMED_PREFIX}{pool_state}"

    def warm_pool_target(self, group_name: str) -> int:
        """How many instances the group's warm pool holds once prepared (0 without a warm pool)."""
        with self.lock:
            group = self.backend.autoscaling_groups.get(group_name)
            return 0 if group is None or group.warm_pool is None else self.warm_pool_size(group)

    def warm_pool_state(self, group_name: str) -> str | None:
        """The group's PoolState, or None when it has no warm pool."""
        group = self.backend.autoscaling_groups.get(group_name)
        return None if group is None or group.warm_pool is None else str(group.warm_pool.pool_state or "Stopped")

    def target_lifecycle_state(self, instance_id: str) -> str | None:
        """What the instance's metadata says of where it is headed (autoscaling/target-lifecycle-state):
        Warmed:<PoolState> into a warm pool, Terminated when leaving, InService otherwise; None if unknown."""
        with self.lock:
            record = self.instances.get(instance_id)
            if record is None:
                return None
            state = record.state.lifecycle_state
            if state.startswith(WARMED_PREFIX):
                return f"{WARMED_PREFIX}{self.warm_pool_state(record.group) or 'Stopped'}"
            return "Terminated" if state in TERMINATING_STATES else "InService"

    def warm_instances(self, group_name: str) -> list[dict[str, Any]]:
        """DescribeWarmPool's Instances: the warm pool's, as the API lists them."""
        with self.lock:
            group = self.backend.autoscaling_groups.get(group_name)
            if group is None:
                raise ValidationError(f"AutoScalingGroup name not found - {group_name}")
            return [
                {
                    "InstanceId": r.instance_id,
                    "InstanceType": r.state.instance.instance_type,
                    "AvailabilityZone": r.state.instance.placement.zone,
                    "LifecycleState": r.state.lifecycle_state,
                    "HealthStatus": "Healthy",
                    "ProtectedFromScaleIn": False,
                }
                for r in self._warm_records(group_name)
            ]

    def record_in_service(self, instance_id: str) -> None:
        """An instance went InService: how long its start took (launch or warm start to InService)."""
        record = self.instances.get(instance_id)
        if record is not None:
            self.starts.setdefault(record.group, []).append(
                (instance_id, round(self.clock() - record.started_at, 2), record.warm_start)
            )

    def _terminate(self, group: Any, state: Any) -> None:
        now = self.clock()
        hook = self._hook(group, TERMINATING)
        if hook is None:
            state.lifecycle_state = "Terminating"
            return
        state.lifecycle_state = "Terminating:Wait"
        self._start_action(group, hook, state, TERMINATING, now)

    def _start_action(
        self, group: Any, hook: Any, state: Any, transition: str, now: float, *, origin: str | None = None
    ) -> None:
        timeout = float(hook.heartbeat_timeout)
        action = LifecycleAction(
            token=str(uuid.uuid4()),
            group=group.name,
            hook=hook.name,
            instance_id=state.instance.id,
            transition=transition,
            started_at=now,
            deadline=now + timeout,
            heartbeat_timeout=timeout,
            default_result=hook.default_result,
        )
        self.actions[action.token] = action
        self.on_event(self._event(action, state.lifecycle_state, origin))

    def _event(self, action: LifecycleAction, lifecycle_state: str = "", origin: str | None = None) -> dict[str, Any]:
        """The EventBridge event of a lifecycle action; Origin and Destination as AWS sets them, warm
        pools included (events/lifecycle/warm-pool-*.json)."""
        kind = "launch" if action.transition == LAUNCHING else "terminate"
        source = origin or ("EC2" if kind == "launch" else "AutoScalingGroup")
        destination = "AutoScalingGroup" if kind == "launch" else "EC2"
        if lifecycle_state.startswith(WARMED_PREFIX):
            destination = "WarmPool"
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": f"EC2 Instance-{kind} Lifecycle Action",
            "source": "aws.autoscaling",
            "account": self.account,
            "time": _iso(action.started_at),
            "region": self.region,
            "resources": [
                f"arn:aws:autoscaling:{self.region}:{self.account}:autoScalingGroup:local:"
                f"autoScalingGroupName/{action.group}"
            ],
            "detail": {
                "LifecycleActionToken": action.token,
                "AutoScalingGroupName": action.group,
                "LifecycleHookName": action.hook,
                "EC2InstanceId": action.instance_id,
                "LifecycleTransition": action.transition,
                "Origin": source,
                "Destination": destination,
            },
        }

    # --- instance refresh ----------------------------------------------------------------------
    def _active_refresh(self, group: str) -> InstanceRefresh | None:
        listed = self.refreshes.get(group) or []
        return listed[-1] if listed and listed[-1].status in REFRESH_ACTIVE else None

    def start_refresh(self, group_name: str, preferences: dict[str, Any]) -> str:
        """StartInstanceRefresh (Strategy Rolling): AWS refuses a second one while one is not over."""
        with self.lock:
            group = self.backend.autoscaling_groups.get(group_name)
            if group is None:
                raise ValidationError(f"AutoScalingGroup name not found - {group_name}")
            if self._active_refresh(group_name) is not None:
                raise InstanceRefreshInProgress(
                    f"An Instance Refresh is already in progress and blocks the execution of this Instance Refresh."
                    f" group: {group_name}"
                )
            version = _template_version(group)
            skip = str(preferences.get("SkipMatching", "false")).lower() == "true"
            to_replace = [
                r.instance_id
                for r in self.instances.values()
                if r.group == group_name
                and r.state.lifecycle_state not in TERMINATING_STATES
                and not r.state.lifecycle_state.startswith(WARMED_PREFIX)
                and not (skip and r.template_version == version)
            ]
            refresh = InstanceRefresh(
                str(uuid.uuid4()), group_name, self.clock(), dict(preferences), to_replace, len(to_replace)
            )
            self.refreshes.setdefault(group_name, []).append(refresh)
            return refresh.refresh_id

    def advance_refreshes(self) -> None:
        """One step of every running refresh (called by the local cloud's control loop)."""
        with self.lock:
            for group_name, listed in self.refreshes.items():
                refresh = listed[-1]
                group = self.backend.autoscaling_groups.get(group_name)
                if refresh.status in REFRESH_ACTIVE and group is not None:
                    self._advance(refresh, group)

    def _advance(self, refresh: InstanceRefresh, group: Any) -> None:
        states = {s.instance.id: s for s in group.instance_states}
        # An old instance that left by other means (scale-in, unhealthy) needs no replacement.
        refresh.to_replace = [i for i in refresh.to_replace if i in states]
        for old, new in list(refresh.pairs.items()):
            if old not in states:
                del refresh.pairs[old]
            elif new not in states or states[new].lifecycle_state in TERMINATING_STATES:
                del refresh.pairs[old]  # the replacement failed (abandoned launch): launch another
        if not refresh.to_replace:
            refresh.status, refresh.ended_at = "Successful", self.clock()
            return
        desired = group.desired_capacity or 0
        live = [s for s in group.instance_states if s.lifecycle_state not in TERMINATING_STATES]
        replaceable = [
            i
            for i in refresh.to_replace
            if states[i].lifecycle_state not in TERMINATING_STATES
            and (not states[i].protected_from_scale_in or refresh.protected_rule == "Refresh")
        ]
        # Launch: as many replacements as MaxHealthyPercentage of desired leaves room for.
        room = desired * refresh.percent("MaxHealthyPercentage", 100) // 100 - len(live)
        unpaired = [i for i in replaceable if i not in refresh.pairs]
        for old in unpaired[: max(0, room)]:
            before = {s.instance.id for s in group.instance_states}
            group.replace_autoscaling_group_instances(1, group.get_propagated_tags())
            for state in [s for s in group.instance_states if s.instance.id not in before]:
                self._launched(group, state)
                refresh.pairs[old] = state.instance.id
        # Terminate: an old instance whose replacement serves, while MinHealthyPercentage still holds.
        states = {s.instance.id: s for s in group.instance_states}
        floor = -(-desired * refresh.percent("MinHealthyPercentage", 90) // 100)
        serving = sum(1 for s in live if s.lifecycle_state == "InService")
        for old, new in list(refresh.pairs.items()):
            if states[new].lifecycle_state != "InService" or states[old].lifecycle_state != "InService":
                continue
            if serving - 1 < floor:
                break
            self._terminate(group, states[old])
            serving -= 1
        # An Ignore-d protected instance is left as it is; the refresh is over once none else remains.
        if refresh.protected_rule == "Ignore":
            refresh.to_replace = [i for i in refresh.to_replace if not states[i].protected_from_scale_in]

    # --- the API moto lacks ----------------------------------------------------------------------
    def _find(self, group: str, hook: str, token: str | None, instance_id: str | None) -> LifecycleAction:
        for action in self.actions.values():
            if action.group != group or action.hook != hook or not action.pending:
                continue
            if (token and action.token == token) or (not token and action.instance_id == instance_id):
                return action
        raise ValidationError(
            f"No active Lifecycle Action found with token {token or instance_id} for hook {hook} of group {group}"
        )

    def _complete(self, group: str, hook: str, token: str | None, instance_id: str | None, result: str) -> None:
        if result not in ("CONTINUE", "ABANDON"):
            raise ValidationError(f"LifecycleActionResult must be CONTINUE or ABANDON, not {result!r}")
        with self.lock:
            self._finish(self._find(group, hook, token, instance_id), result, timed_out=False)

    def _heartbeat(self, group: str, hook: str, token: str | None, instance_id: str | None) -> None:
        with self.lock:
            action = self._find(group, hook, token, instance_id)
            action.deadline = self.clock() + action.heartbeat_timeout
            action.heartbeats += 1

    def _finish(self, action: LifecycleAction, result: str, timed_out: bool) -> None:
        action.result, action.completed_at, action.timed_out = result, self.clock(), timed_out
        record = self.instances.get(action.instance_id)
        if record is None:
            return
        state = record.state
        if action.transition == TERMINATING:
            state.lifecycle_state = "Terminating:Proceed"
        elif state.lifecycle_state == "Warmed:Pending:Wait":
            # An abandoned warm pass terminates the instance; the pool then launches another.
            state.lifecycle_state = "Warmed:Pending:Proceed" if result == "CONTINUE" else "Terminating"
        elif result == "CONTINUE":
            state.lifecycle_state = "Pending:Proceed"
        else:
            # An abandoned launch is terminated; Auto Scaling then launches a replacement.
            state.lifecycle_state = "Terminating"

    # --- time passes -------------------------------------------------------------------------------
    def expire(self) -> None:
        """End every action past its deadline with its hook's default result."""
        now = self.clock()
        with self.lock:
            for action in self.actions.values():
                if action.pending and now >= action.deadline:
                    self._finish(action, action.default_result, timed_out=True)

    def mark_unhealthy(self, instance_id: str) -> None:
        """EC2 health checks failed: Auto Scaling terminates the instance (through its terminate hook)
        and, once it is gone, launches a replacement."""
        with self.lock:
            record = self.instances.get(instance_id)
            group = self.backend.autoscaling_groups.get(record.group) if record else None
            if record is None or group is None or record.state.lifecycle_state in TERMINATING_STATES:
                return
            self._cancel_actions(instance_id)
            self._terminate(group, record.state)

    def _cancel_actions(self, instance_id: str) -> None:
        for action in self.actions.values():
            if action.instance_id == instance_id and action.pending:
                action.result, action.completed_at, action.cancelled = "ABANDON", self.clock(), True

    def set_state(self, instance_id: str, lifecycle_state: str) -> None:
        with self.lock:
            self.instances[instance_id].state.lifecycle_state = lifecycle_state
            if lifecycle_state == "InService":
                self.record_in_service(instance_id)

    def remove(self, instance_id: str) -> None:
        """The instance has stopped: drop it from its group (and EC2), as Auto Scaling does after Terminated."""
        with self.lock:
            record = self.instances.pop(instance_id, None)
            if record is None:
                return
            self._cancel_actions(instance_id)
            self.lifetimes.setdefault(record.group, []).append(record.billed_seconds(self.clock()))
            self.backend.ec2_backend.terminate_instances([instance_id])
            group = self.backend.autoscaling_groups.get(record.group)
            if group is not None:
                group.instance_states = [s for s in group.instance_states if s.instance.id != instance_id]
                # An instance lost below the desired capacity (unhealthy, abandoned launch) is replaced,
                # as Auto Scaling does; one removed by a scale-in is not, the group being at desired.
                self._set_desired_capacity(group, group.desired_capacity)

    def instance_seconds(self, group: str) -> float:
        """Instance time the group has used so far, as EC2 bills it: removed instances and the ones still
        running (not the time stopped or hibernated in a warm pool)."""
        with self.lock:
            now = self.clock()
            live = sum(r.billed_seconds(now) for r in self.instances.values() if r.group == group)
            return live + sum(self.lifetimes.get(group, []))

    def snapshot(self) -> list[tuple[str, str, str, float]]:
        """(instance id, group, lifecycle state, started at) of every instance the emulator tracks: started
        at its launch, or at its warm start for one taken from a warm pool."""
        with self.lock:
            return [(r.instance_id, r.group, r.state.lifecycle_state, r.started_at) for r in self.instances.values()]

    def warm_started(self, instance_id: str) -> bool:
        """Whether the instance's current start is a warm start (taken from a warm pool)."""
        record = self.instances.get(instance_id)
        return record is not None and record.warm_start


def _template_version(group: Any) -> int:
    version = str(getattr(group, "launch_template_version", "") or "")
    return int(version) if version.isdigit() else 0


def _xml(action: str, result: str = "") -> str:
    return (
        f'<{action}Response xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
        f"<{action}Result>{result}</{action}Result>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>"
    )


def _xml_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _iso(at: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(at, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Running:
    command_id: str
    instance_id: str
    #: The command's parsed comment, or why it could not be parsed.
    purpose: CommandComment | str
    deadline: float
    invocation: dict[str, Any]


def check_send_command(comment: str) -> None:
    """SendCommand's own validation of its Comment, which moto skips: at most 100 characters."""
    from moto.ssm.exceptions import ValidationException

    if len(comment) > COMMENT_MAX_CHARS:
        raise ValidationException(
            f"1 validation error detected: Value '{comment}' at 'comment' failed to satisfy constraint: "
            f"Member must have length less than or equal to {COMMENT_MAX_CHARS}"
        )


@dataclass
class RunCommandEmulator:
    """The instances' SSM agent: runs the two scripts LifecycleFunction sends, on local workers.

    moto records SendCommand and answers Success at once without running anything. Here the command's
    Comment, read with the domain's own `parse_comment` (queue_scaler/lifecycle/domain/commands.py), says which
    script it is, and the agent does what the script does on an instance, printing what the script
    prints (`drain_output`, `health_output`): a drain runs the script's own `docker stop --time N`
    (SIGTERM, then SIGKILL at N s, as Docker does), a Spot drain first writes the notice's end
    (`ends=`) where the worker reads it and stops with the seconds left; both end with
    `exit=<code>` once the worker exits (137 when killed); the health
    check ends with `health=healthy` once the worker is healthy, or `health=starting` and its last log
    lines when the wait runs out. Each end is published as the EventBridge "EC2 Command Invocation
    Status-change Notification" it would be on AWS.
    """

    clock: Callable[[], float]
    #: `docker stop --time <seconds>` on an instance, after writing the stop notice's end when given.
    drain: Callable[[str, float, float | None], None]
    exit_code: Callable[[str], int | None]  # the worker's exit code once it exited, else None
    healthy: Callable[[str], bool]
    tail: Callable[[str], str]
    on_event: Callable[[dict[str, Any]], None]
    account: str = "123456789012"
    region: str = "us-east-1"
    running: list[_Running] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def install(self) -> None:
        from moto.ssm.models import SimpleSystemManagerBackend

        send_command = SimpleSystemManagerBackend.send_command
        agent = self

        def send_and_run(backend: Any, **kwargs: Any) -> Any:
            asked = list(kwargs.get("instance_ids") or [])
            check_send_command(kwargs.get("comment") or "")
            command = send_command(backend, **kwargs)
            # With no Targets moto adds every EC2 instance it knows: keep the instances asked for.
            command.invocations = [i for i in command.invocations if i["InstanceId"] in asked]
            command.instance_ids = asked  # what ListCommands(InstanceId=...) matches, as SSM's own targets
            try:
                parsed: CommandComment | str = parse_comment(kwargs.get("comment") or "")
            except ValueError as error:
                parsed = str(error)  # a command the local agent cannot run: it fails, as its script would
            script = list((kwargs.get("parameters") or {}).get("commands") or [])
            for invocation in command.invocations:
                agent._start(command.command_id, invocation, parsed, script)
            return command

        SimpleSystemManagerBackend.send_command = send_and_run  # type: ignore[method-assign,assignment]

    def _start(
        self, command_id: str, invocation: dict[str, Any], parsed: CommandComment | str, script: list[str]
    ) -> None:
        instance = invocation["InstanceId"]
        invocation.update(Status="InProgress", StatusDetails="InProgress", StandardOutputContent="")
        # Only a drain (terminate or Spot) stops the container; a health check or the reconciler's sweep reads it.
        if isinstance(parsed, CommandComment) and parsed.purpose in {Purpose.DRAIN, Purpose.SPOT}:
            self._docker_stop(instance, script)
        wait = parsed.seconds if isinstance(parsed, CommandComment) and parsed.purpose is Purpose.HEALTH else 0
        with self.lock:
            self.running.append(_Running(command_id, instance, parsed, self.clock() + wait, invocation))

    def _docker_stop(self, instance: str, script: list[str]) -> None:
        """What the drain script does to the container: its `docker stop`, with the notice written first."""
        text = "\n".join(script)
        ends = re.search(r"^ends=(\d+)$", text, re.MULTILINE)
        fixed = re.search(r"docker stop --time (\d+) ", text)
        if ends is not None:
            self.drain(instance, max(0.0, int(ends.group(1)) - self.clock()), float(ends.group(1)))
        elif fixed is not None:
            self.drain(instance, float(fixed.group(1)), None)
        else:
            raise ValueError(f"the local agent finds no `docker stop` in the drain script: {text!r}")

    def step(self) -> None:
        """Finish the commands whose work is done (called by the local cloud's control loop)."""
        now = self.clock()
        with self.lock:
            running, self.running = self.running, []
        for command in running:
            outcome = self._outcome(command, now)
            if outcome is None:
                with self.lock:
                    self.running.append(command)
                continue
            status, output = outcome
            command.invocation.update(
                Status=status, StatusDetails=status, StandardOutputContent=output[:STDOUT_CONTENT_CHARS]
            )
            self.on_event(self._event(command, status))

    def _outcome(self, command: _Running, now: float) -> tuple[str, str] | None:
        instance, parsed = command.instance_id, command.purpose
        if not isinstance(parsed, CommandComment):
            return "Failed", f"the local agent does not run this command: {parsed}"
        if parsed.purpose is not Purpose.HEALTH:
            code = self.exit_code(instance)
            if code is None:
                return None
            return ("Success" if code == 0 else "Failed", drain_output(code, self.tail(instance)))
        if self.healthy(instance):
            return "Success", health_output(HEALTHY)
        if now >= command.deadline:
            return "Success", health_output("starting", self.tail(instance))
        return None

    def _event(self, command: _Running, status: str) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "EC2 Command Invocation Status-change Notification",
            "source": "aws.ssm",
            "account": self.account,
            "time": _iso(self.clock()),
            "region": self.region,
            "resources": [f"arn:aws:ec2:{self.region}:{self.account}:instance/{command.instance_id}"],
            "detail": {
                "command-id": command.command_id,
                "document-name": "AWS-RunShellScript",
                "instance-id": command.instance_id,
                "requested-date-time": _iso(self.clock()),
                "status": status,
            },
        }
