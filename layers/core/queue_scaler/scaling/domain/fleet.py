"""What a group's raw state means for scaling: instances serving, booting, leaving and warmed.

Pure: the adapters return the group's instances with their lifecycle states and the lifecycle
function's records of leaving instances as they are stored; this decides what they count as, at
the `now` it is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from queue_scaler.scaling.domain.models import FleetObservation, RefreshState

#: What the LifecycleFunction records for an instance on its way out that no hook holds back yet
#: (its sort keys in the actions table): a Spot interruption warning, a rebalance recommendation.
LEAVING_KINDS = ("spot", "rebalance")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class InstanceState(_Model):
    instance_id: str
    lifecycle_state: str = Field(description="Auto Scaling's LifecycleState: InService, Pending:Wait, ...")
    healthy: bool = Field(default=True, description="Auto Scaling's HealthStatus is Healthy")
    launch_template: str | None = Field(
        default=None, description="The launch template id and version it was launched from: 'lt-0abc:3'"
    )

    @property
    def terminating(self) -> bool:
        # Terminating, Terminating:Wait, Terminating:Proceed: no longer counted in desired capacity.
        return self.lifecycle_state.startswith("Terminat")

    @property
    def pending(self) -> bool:
        # Pending, Pending:Wait (launch hook), Pending:Proceed: capacity that is coming but not serving.
        return self.lifecycle_state.startswith("Pending")


class WarmPool(_Model):
    """A group's warm pool as DescribeWarmPool returns it: its PoolState and its instances."""

    state: Literal["Stopped", "Running", "Hibernated"] = Field(description="WarmPoolConfiguration.PoolState")
    instances: list[InstanceState] = Field(default_factory=list)

    def ready(self) -> int:
        """Instances prepared and waiting (Warmed:Stopped, Warmed:Running, Warmed:Hibernated)."""
        return sum(1 for i in self.instances if i.lifecycle_state in _WARMED)

    def warming(self) -> int:
        """Instances launched into the pool and still being prepared (Warmed:Pending, :Wait, :Proceed)."""
        return sum(1 for i in self.instances if i.lifecycle_state.startswith("Warmed:Pending"))


#: The warm pool's steady states (EC2 Auto Scaling user guide, "Warm pool instance lifecycle").
_WARMED = frozenset({"Warmed:Stopped", "Warmed:Running", "Warmed:Hibernated"})


class GroupState(_Model):
    """One Auto Scaling group as DescribeAutoScalingGroups returns it (and DescribeWarmPool, when it has one)."""

    desired: Annotated[int, Field(ge=0)]
    instances: list[InstanceState] = Field(default_factory=list)
    min_size: Annotated[int, Field(ge=0)] | None = None
    max_size: Annotated[int, Field(ge=0)] | None = None
    capacity_rebalance: bool = Field(
        default=False, description="CapacityRebalance: Auto Scaling replaces its at-risk Spot instances itself"
    )
    launch_template: str | None = Field(
        default=None,
        description="The group's launch template id and version, 'lt-0abc:3'; None when it names no version "
        "number ($Latest, $Default: the stack pins the number, so an instance's version can be compared)",
    )
    warm_pool: WarmPool | None = Field(default=None, description="None: the group has no warm pool")

    def _outdated(self, instance: InstanceState) -> bool:
        return (
            self.launch_template is not None
            and instance.launch_template is not None
            and instance.launch_template != self.launch_template
        )

    def updating(self) -> bool:
        """Instances of another launch template version are still in the group (whatever their state):
        an image change is rolling out, or has yet to. Only then can an instance refresh be running
        (it skips matching instances), so only then is it worth asking."""
        return any(self._outdated(i) for i in self.instances)

    def outdated(self) -> int:
        """In-service instances launched from another launch template version than the group's."""
        return sum(1 for i in self.instances if i.lifecycle_state == "InService" and self._outdated(i))

    def counted(self) -> list[str]:
        """Instances still counted in desired capacity: the only ones that can be leaving early."""
        return [i.instance_id for i in self.instances if not i.terminating]

    def replaced_by_scaler(self) -> list[str]:
        """The instances whose early leaving the scaler makes up for: one replacement per leaving instance.

        None in a group with Capacity Rebalancing: Auto Scaling launches the replacement itself on the
        rebalance recommendation (which EC2 always sends before an interruption notice), then
        terminates the old instance through its terminate hook (drained). Topping desired up as well
        would launch a second replacement and keep it for the scale-down window.
        """
        return [] if self.capacity_rebalance else self.counted()


class LeavingRecord(_Model):
    """A record of an instance on its way out, as the actions table holds it."""

    instance_id: str
    kind: str
    expires_at: float = Field(description="When the record stops counting (the table's TTL attribute)")


def leaving_instances(records: Iterable[LeavingRecord], now: float) -> frozenset[str]:
    """The instances the records say are leaving at `now`. DynamoDB deletes expired items up to days
    late: an expired record no longer counts."""
    return frozenset(r.instance_id for r in records if r.kind in LEAVING_KINDS and r.expires_at > now)


#: An instance refresh in these states is not over (AWS refuses to start another).
REFRESH_ACTIVE = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
#: An instance refresh that ended in these states did not roll the new version out.
REFRESH_FAILED = frozenset({"Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"})
#: How long after a refresh failed the scaler leaves the outdated instances alone. A refresh fails when
#: the new image's replacements do not pass the launch gate (LaunchesAbandoned pages for that) or an
#: operator cancels it; starting the same refresh every tick would launch and abandon instances in a
#: loop. A new deploy within the hour is rolled out by hand (README, "Image and AMI updates").
REFRESH_RETRY_SECONDS = 3600.0


def refresh_state(status: str | None, ended_at: float | None, now: float) -> RefreshState:
    """The group's latest instance refresh, as the scaler acts on it: running (not over), failed (ended
    without rolling out, within REFRESH_RETRY_SECONDS), or none (no refresh, or one that is over)."""
    if status in REFRESH_ACTIVE:
        return "running"
    if status in REFRESH_FAILED and (ended_at is None or now - ended_at < REFRESH_RETRY_SECONDS):
        return "failed"
    return "none"


def refresh_needed(fleet: FleetObservation) -> bool:
    """Start an instance refresh: in-service instances run an older launch template version and no
    refresh is known to be running (an unknown state starts none: AWS would refuse a second one anyway,
    and the next tick asks again)."""
    return fleet.outdated > 0 and fleet.refresh == "none"


def fleet_observation(group: GroupState, leaving: frozenset[str], refresh: RefreshState = "none") -> FleetObservation:
    """The group's serving, booting, leaving and warmed counts. A leaving instance still counted in desired is
    capacity going away: neither serving nor pending. One already terminating is replaced anyway, and
    so is one marked Unhealthy (a worker that stopped answering its health check): it serves nothing."""
    staying = [i for i in group.instances if i.instance_id not in leaving or i.terminating]
    going = len(group.instances) - len(staying)
    warm = group.warm_pool
    return FleetObservation(
        desired=group.desired,
        # Warm-pool instances are outside the group's desired capacity and serve nothing: counted apart,
        # never as serving or booting (one leaving the pool is Pending in the group, and counted there).
        warm_pool=warm.state if warm is not None else None,
        warmed=warm.ready() if warm is not None else 0,
        warming=warm.warming() if warm is not None else 0,
        in_service=sum(1 for i in staying if i.lifecycle_state == "InService" and i.healthy),
        pending=sum(1 for i in staying if i.pending),
        leaving=going,
        min_size=group.min_size,
        max_size=group.max_size,
        outdated=group.outdated(),
        refresh=refresh,
    )
