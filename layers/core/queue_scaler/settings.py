"""Settings of each function, read from the environment (the only module that reads it).

One model per function, as the Lambda handler cookbook recommends: the template sets these variables,
and a missing or malformed one fails at cold start with the variable's name. So does one that still
holds a CloudFormation reference: `sam local invoke` without `--env-vars` passes `!Ref LedgerTable`
as the text `LedgerTable` and a `!Sub` of nested stacks' outputs as `${...}`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from queue_scaler.credits.domain.refund import (
    DEFAULT_BALANCE_CAP,
    DEFAULT_DEPOSIT_CAP,
    MAX_CREDIT_CAP,
    CreditLimits,
    DeadLetterPolicy,
    RefundPolicy,
)
from queue_scaler.lifecycle.domain.commands import check_container_name
from queue_scaler.lifecycle.domain.lifecycle import HookResult, LifecyclePolicy, PoolTimings

#: What the functions' environments in template.yaml take by `!Ref` (Globals included): resources,
#: whose names CloudFormation gives, and parameters. SAM CLI without `--env-vars` gives a function the
#: logical id itself for a resource, and for a parameter referenced from Globals. A real name is
#: never one of these (the template names every resource after its stack). tests/contract/test_sam_env.py
#: derives this set from template.yaml and fails when the two differ.
TEMPLATE_REFERENCES = frozenset(
    {
        "EnvironmentName",
        "HealthCheckGracePeriodSeconds",
        "HistoryTable",
        "LedgerTable",
        "LifecycleActionsTable",
        "MaxDeadLetterReturns",
        "MaxReceiveCount",
        "MetricsPoolConfigParameter",
        "NoticeTopic",
        "ParkingTable",
        "PoolConfigParameter",
        "RefundCap",
        "UnchargedPlans",
    }
)
#: What SAM CLI leaves of a reference it cannot resolve: `${Pool.Outputs.Name}` inside a `!Sub`, or
#: the `Pool.Outputs.Name` of a `!GetAtt`.
_UNRESOLVED = re.compile(r"\$\{[^}]*\}|\b[A-Za-z0-9]+\.Outputs\.[A-Za-z0-9]+")
ENV_VARS_HINT = (
    "run `sam local invoke` with `--env-vars env.json`, written by `queue-scaler env-vars --local` "
    "(the local cloud) or `queue-scaler env-vars --stack STACK` (a deployed stack)"
)


def unresolved_reference(name: str, value: object) -> str | None:
    """Why the variable `name` holding `value` is an unresolved CloudFormation reference, or None."""
    if not isinstance(value, str):
        return None
    if value in TEMPLATE_REFERENCES:
        return f"{name.upper()}={value} is a logical id of the template, not a value"
    unresolved = _UNRESOLVED.search(value)
    if unresolved is not None:
        return f"{name.upper()} holds the unresolved reference {unresolved.group(0)}"
    return None


class FunctionSettings(BaseSettings):
    """What every function's settings share: variables read from the environment, and none of them
    an unresolved CloudFormation reference."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _resolved(cls, data: Any) -> Any:
        # Before any field's own parsing (a `${...}` in POOL_TIMINGS is not JSON), naming each culprit.
        if isinstance(data, dict):
            found = [reason for name, value in data.items() if (reason := unresolved_reference(str(name), value))]
            if found:
                raise ValueError(f"{'; '.join(found)}: {ENV_VARS_HINT}")
        return data


class ScalerSettings(FunctionSettings):
    """ScalerFunction: where the pool configuration and the history live, and the tick cadence."""

    pool_config_parameter: str = Field(description="SSM parameter holding the pools' JSON configuration")
    history_table: str = Field(description="DynamoDB table of recommendations and scale events per pool")
    environment: str = Field(default="dev", description="Deployment environment, a metric dimension")
    tick_seconds: Annotated[float, Field(gt=0, le=60)] = 10
    # Ticks stop after this long so that the invocation ends before the next scheduled one (60 s).
    run_seconds: Annotated[float, Field(ge=0, le=840)] = 55
    # Time kept free at the end of an invocation: one tick's AWS calls (each bounded by its
    # timeouts) must finish before Lambda's deadline.
    safety_margin_seconds: Annotated[float, Field(ge=0, le=60)] = 8
    config_max_age_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    actions_table: str | None = Field(
        default=None,
        description="LifecycleFunction's actions table: instances it recorded as leaving count as going away",
    )
    # An invocation whose first tick finds every pool idle (nothing queued or running, nothing to
    # change) ends there: the wait between ticks is what Lambda bills (docs/cost.md).
    stop_when_idle: bool = True


class LifecycleSettings(FunctionSettings):
    """LifecycleFunction: the actions table, this stack's groups, and the timings of drains and launches.

    The hook timeouts must equal the HeartbeatTimeout of the template's hooks, and DRAIN_SECONDS the
    workers' own DRAIN_SECONDS: the template passes the same parameters to both.
    """

    actions_table: str = Field(description="DynamoDB table of lifecycle actions (keys instance_id, action)")
    # A comma-separated list: only instances of these groups are drained or admitted. Spot warnings
    # arrive for every Spot instance of the account, not only ours.
    group_names: Annotated[frozenset[str], NoDecode] = Field(description="This stack's Auto Scaling groups")
    environment: str = Field(default="dev", description="Deployment environment, a metric dimension")
    worker_container: Annotated[str, AfterValidator(check_container_name)] = Field(
        default="queue-worker",
        description="The worker's container name on instances: Docker's rule, short enough for the SSM Comment",
    )
    drain_seconds: Annotated[int, Field(gt=0, le=3600)] = 60
    # SSM delivery on top of Docker's SIGKILL (the drain window + the release margin, lifecycle/domain/deadlines.py),
    # before a drain counts as stuck. A Spot drain needs no setting: it ends with the two-minute notice.
    drain_grace_seconds: Annotated[int, Field(ge=0, le=600)] = 30
    launch_timeout_seconds: Annotated[int, Field(gt=0, le=7200)] = 300
    launch_hook_timeout_seconds: Annotated[int, Field(ge=30, le=7200)] = 300
    terminate_hook_timeout_seconds: Annotated[int, Field(ge=30, le=7200)] = 160
    # The reconciler's schedule (rate(1 minute)); heartbeats are planned around it.
    reconcile_period_seconds: Annotated[int, Field(ge=1, le=600)] = 60
    health_wait_seconds: Annotated[int, Field(gt=0, le=900)] = 60
    command_retry_seconds: Annotated[int, Field(gt=0, le=600)] = 30
    # How often the reconciler looks at every worker in service (one SSM command for 50 instances);
    # one that is unhealthy, gone or crash-looping is marked Unhealthy and replaced. 0: never.
    sweep_period_seconds: Annotated[int, Field(ge=0, le=86400)] = 300
    drain_failed_result: Literal["CONTINUE", "ABANDON"] = "ABANDON"
    retention_seconds: Annotated[int, Field(ge=3600)] = 7 * 24 * 3600
    # JSON, per Auto Scaling group: {"<group>": {"drain_seconds": 600, "terminate_hook_timeout_seconds": 300}}.
    # Each pool drains for its own DrainSeconds (at least its jobs' p99); groups not listed use
    # DRAIN_SECONDS and TERMINATE_HOOK_TIMEOUT_SECONDS.
    # Decoded here, not by pydantic-settings, so that an unresolved `${...}` is refused as such first.
    pool_timings: Annotated[dict[str, PoolTimings], NoDecode] = Field(default_factory=dict)

    @field_validator("pool_timings", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("group_names", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(name.strip() for name in value.split(",") if name.strip())
        return value

    @model_validator(mode="after")
    def _hooks_outlive_heartbeats(self) -> LifecycleSettings:
        # Heartbeats come from the reconciler; a hook that times out between two of its runs would
        # be decided by its DefaultResult, not by us.
        for name in ("launch_hook_timeout_seconds", "terminate_hook_timeout_seconds"):
            if getattr(self, name) <= self.reconcile_period_seconds:
                raise ValueError(f"{name} must exceed reconcile_period_seconds ({self.reconcile_period_seconds})")
        for group, timings in self.pool_timings.items():
            hook = timings.terminate_hook_timeout_seconds
            if hook is not None and hook <= self.reconcile_period_seconds:
                raise ValueError(
                    f"pool_timings[{group}].terminate_hook_timeout_seconds must exceed reconcile_period_seconds "
                    f"({self.reconcile_period_seconds})"
                )
        if not self.group_names:
            raise ValueError("group_names must name at least one Auto Scaling group")
        self.policy()  # the domain's own rules (a drain within its hook's maximum), at load time
        return self

    def policy(self) -> LifecyclePolicy:
        """The domain's view of these settings."""
        return LifecyclePolicy(
            container=self.worker_container,
            drain_seconds=self.drain_seconds,
            drain_grace_seconds=self.drain_grace_seconds,
            launch_timeout_seconds=self.launch_timeout_seconds,
            launch_hook_timeout_seconds=self.launch_hook_timeout_seconds,
            terminate_hook_timeout_seconds=self.terminate_hook_timeout_seconds,
            reconcile_period_seconds=self.reconcile_period_seconds,
            health_wait_seconds=self.health_wait_seconds,
            command_retry_seconds=self.command_retry_seconds,
            sweep_period_seconds=self.sweep_period_seconds,
            drain_failed_result=HookResult(self.drain_failed_result),
            pools=self.pool_timings,
        )


class MetricsSettings(FunctionSettings):
    """MetricsFunction: where the pool configuration lives, and which pools EC2 target tracking sizes."""

    # Every pool, whoever sizes it: not the scaler's POOL_CONFIG_PARAMETER (the local cloud runs both
    # handlers in one process, where one environment variable cannot name two parameters).
    measured_pools_parameter: str = Field(description="SSM parameter holding every pool's JSON configuration")
    # Comma-separated: BacklogPerInstance is published every minute only for these (a custom metric is
    # billed for each hour it receives data, and only target tracking reads it).
    target_tracking_pools: Annotated[frozenset[str], NoDecode] = frozenset()
    # Each job queue's dead-letter queue is named after it with this suffix (templates/queue.yaml):
    # DeadLettersWaiting counts what they hold. Empty: none is counted.
    dead_letter_suffix: str = ""
    environment: str = Field(default="dev", description="Deployment environment, a metric dimension")
    config_max_age_seconds: Annotated[int, Field(ge=0, le=3600)] = 60

    @field_validator("target_tracking_pools", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(name.strip() for name in value.split(",") if name.strip())
        return value


class RefundPolicySettings(FunctionSettings):
    """The refund policy: the producer reserves and DlqRefundFunction refunds by the same one."""

    refund_cap: Annotated[int, Field(gt=0)] = Field(default=10_000, description="Largest refund of one job")
    uncharged_plans: str = Field(default="free", description="Comma-separated plans whose jobs reserve nothing")

    def policy(self) -> RefundPolicy:
        """The refund policy these settings describe (an unknown plan name fails here, at cold start)."""
        plans = [p.strip() for p in self.uncharged_plans.split(",") if p.strip()]
        return RefundPolicy.model_validate({"cap": self.refund_cap, "uncharged_plans": plans})


class ProducerSettings(RefundPolicySettings):
    """`queue-scaler submit`, `jobs show`, `credits deposit` and `queue_scaler.producer` users."""

    ledger_table: str | None = Field(
        default=None, description="LEDGER_TABLE: the ledger (the stack's LedgerTableName output)"
    )
    pool_config_parameter: str | None = Field(
        default=None, description="POOL_CONFIG_PARAMETER: the SSM parameter holding the pool configuration"
    )
    # Caps on credits (domain.refund explains the defaults).
    deposit_cap: Annotated[int, Field(gt=0, le=MAX_CREDIT_CAP)] = Field(
        default=DEFAULT_DEPOSIT_CAP, description="DEPOSIT_CAP: most credits one deposit adds"
    )
    balance_cap: Annotated[int, Field(gt=0, le=MAX_CREDIT_CAP)] = Field(
        default=DEFAULT_BALANCE_CAP, description="BALANCE_CAP: most credits one balance holds"
    )

    @model_validator(mode="after")
    def _limits(self) -> ProducerSettings:
        if self.deposit_cap > self.balance_cap:
            raise ValueError(f"DEPOSIT_CAP ({self.deposit_cap}) is above BALANCE_CAP ({self.balance_cap})")
        return self

    def limits(self) -> CreditLimits:
        """The credit limits these settings describe."""
        return CreditLimits(deposit_cap=self.deposit_cap, balance_cap=self.balance_cap)


class DlqRefundSettings(RefundPolicySettings):
    """DlqRefundFunction: the ledger, the parking table, the users' topic and the refund policy."""

    ledger_table: str = Field(description="DynamoDB table of accounts, credit transactions and jobs")
    parking_table: str = Field(description="DynamoDB table of dead letters that could not be refunded")
    notice_topic_arn: str = Field(description="SNS topic of user notices (one per failed job)")
    environment: str = Field(default="dev", description="Deployment environment, a metric dimension")
    # A notice claim older than this is taken over by a later delivery: it must exceed one publish's
    # worst case (3 attempts of at most 8 s each) so that a live holder is never overtaken.
    notice_lease_seconds: Annotated[float, Field(ge=30, le=900)] = 60
    required_failures: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=5,
        description="REQUIRED_FAILURES: real failures before a dead-lettered job is refunded (the queues' "
        "maxReceiveCount); a job with fewer, whose other receives were releases, is sent back instead",
    )
    max_returns: Annotated[int, Field(ge=0, le=100)] = Field(
        default=3, description="MAX_RETURNS: times one job is sent back before it is settled as failed for good"
    )

    def dead_letters(self) -> DeadLetterPolicy:
        """When a dead letter is a failure and how often a released job goes back."""
        return DeadLetterPolicy(required_failures=self.required_failures, max_returns=self.max_returns)
