"""Worker settings, read from the environment (CONTRACTS.md section 4): the only module that reads it.

A missing or malformed variable stops the worker at start with the variable's name, before it takes
any message, so a bad deployment fails its health check instead of failing jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS, job_bound

#: SQS's largest long-poll wait and batch size.
MAX_WAIT_SECONDS = 20
MAX_BATCH = 10


class HealthSettings(BaseSettings):
    """What the HEALTHCHECK command needs: it must not fail on the worker's other settings."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    health_file: Path = Field(
        default=Path("/tmp/queue-worker.health"),  # noqa: S108 - a container-local marker, not a secret
        description="HEALTH_FILE: touched while polling works; the container HEALTHCHECK reads it",
    )
    health_max_age_seconds: Annotated[float, Field(gt=0)] = Field(
        default=60, description="HEALTH_MAX_AGE_SECONDS: an older health file means unhealthy"
    )


class WorkerSettings(HealthSettings):
    """Everything `python -m queue_worker` is configured with."""

    queue_urls: Annotated[list[str], NoDecode, Field(min_length=1)] = Field(
        description="QUEUE_URLS: comma-separated SQS queue URLs, highest priority first"
    )
    job_handler: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")] = Field(
        description="JOB_HANDLER: `module:function` called with each job's envelope"
    )
    drain_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=60,
        description="DRAIN_SECONDS: how long running jobs may go on after SIGTERM; what still runs then is "
        f"released. Docker's stop timeout must be at least {RELEASE_MARGIN_SECONDS} s longer",
    )
    stop_timeout_seconds: Annotated[float | None, Field(gt=0)] = Field(
        default=None,
        description="STOP_TIMEOUT_SECONDS: the container's stop timeout (when Docker sends SIGKILL), checked "
        f"to leave the release {RELEASE_MARGIN_SECONDS} s after DRAIN_SECONDS; the user data sets both",
    )
    stop_notice_file: Path | None = Field(
        default=None,
        description="STOP_NOTICE_FILE: read at SIGTERM; when it holds an epoch second (the end of a Spot "
        "notice, written by the Spot drain), the worker is gone then and drains to it",
    )
    job_max_seconds: Annotated[float | None, Field(gt=0)] = Field(
        default=None,
        description="JOB_MAX_SECONDS: the most seconds a job of this pool runs; DRAIN_SECONDS when unset. "
        "At a stop notice, a running job that cannot finish by then is released at once",
    )
    job_max_seconds_by_kind: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description='JOB_MAX_SECONDS_BY_KIND: JSON, e.g. {"video.transcode": 900}: a kind\'s own maximum',
    )
    worker_slots: Annotated[int, Field(ge=1, le=256)] = Field(
        default=1, description="WORKER_SLOTS: jobs this process runs at once"
    )
    worker_prefetch: Annotated[int, Field(ge=0, le=MAX_BATCH)] = Field(
        default=0,
        description="WORKER_PREFETCH: messages held beyond the free slots so that the next job starts "
        "without a receive round trip. 0 by default: a held message is one another instance could run, "
        "and a low-priority one held here delays a high-priority one arriving later",
    )
    visibility_timeout: Annotated[int, Field(ge=2, le=43_200)] = Field(
        default=120,
        description="VISIBILITY_TIMEOUT: seconds a received message stays hidden; the heartbeat keeps "
        "extending it while its job runs, so it bounds how late a crashed worker's jobs come back",
    )
    heartbeat_seconds: Annotated[float | None, Field(gt=0)] = Field(
        default=None, description="HEARTBEAT_SECONDS: visibility extension period; VISIBILITY_TIMEOUT/3"
    )
    poll_wait_seconds: Annotated[int, Field(ge=0, le=MAX_WAIT_SECONDS)] = Field(
        default=MAX_WAIT_SECONDS, description="POLL_WAIT_SECONDS: long-poll wait when every queue is empty"
    )
    retry_delay_seconds: Annotated[int, Field(ge=0, le=43_200)] = Field(
        default=10,
        description="RETRY_DELAY_SECONDS: visibility given to a failed job's message, so that the retry "
        "(and, after maxReceiveCount, the DLQ) comes soon but not in a hot loop",
    )
    starvation_limit: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=5,
        description="STARVATION_LIMIT: a queue skipped by this many consecutive receives is polled "
        "first by the next one, so that the lowest plan is never starved forever",
    )
    pool_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,80}$")] = Field(
        default="default", description="POOL_NAME: the pool this worker serves, a metric dimension"
    )
    scale_in_protection: bool = Field(
        default=False,
        description="SCALE_IN_PROTECTION: protect this instance from scale-in while it holds a job, so "
        "that scale-in takes idle instances (queue_worker/protection.py); the user data turns it on",
    )
    instance_id: Annotated[str | None, Field(pattern=r"^i-[0-9a-f]{8,17}$")] = Field(
        default=None, description="INSTANCE_ID: this instance; read from the instance metadata when unset"
    )
    autoscaling_group_name: Annotated[str | None, Field(min_length=1, max_length=255)] = Field(
        default=None, description="AUTOSCALING_GROUP_NAME: the group to protect the instance in"
    )
    protection_linger_seconds: Annotated[float, Field(ge=0, le=300)] = Field(
        default=5,
        description="PROTECTION_LINGER_SECONDS: how long protection outlives the last job, so that a busy "
        "worker does not unprotect and protect again between two jobs",
    )
    warm_pool_standby: bool = Field(
        default=False,
        description="WARM_POOL_STANDBY: receive nothing while the instance's target lifecycle state is Warmed:* "
        "(queue_worker/warm.py); the user data turns it on",
    )
    metrics_namespace: str = Field(default="QueueScaler", description="METRICS_NAMESPACE: EMF namespace")
    ledger_table: str | None = Field(
        default=None,
        description="LEDGER_TABLE: the ledger's DynamoDB table, where each attempt's outcome is recorded "
        "(so that a released job is never refunded as failed); unset, nothing is recorded",
    )
    metrics_flush_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=60, description="METRICS_FLUSH_SECONDS: how often EMF lines are written"
    )

    @field_validator("queue_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @model_validator(mode="after")
    def _poll_within_drain(self) -> WorkerSettings:
        # A long poll in progress when SIGTERM arrives must return (and its messages be released)
        # before the drain deadline, or those messages would stay hidden after the process exits.
        if self.poll_wait_seconds >= self.drain_seconds:
            self.poll_wait_seconds = max(0, int(self.drain_seconds) - 1)
        return self

    @model_validator(mode="after")
    def _kill_after_release(self) -> WorkerSettings:
        # Docker's SIGKILL must come after the worker has released what still runs, or those
        # attempts stay `started` and count as failures.
        if self.stop_timeout_seconds is not None and (
            self.stop_timeout_seconds < self.drain_seconds + RELEASE_MARGIN_SECONDS
        ):
            raise ValueError(
                f"STOP_TIMEOUT_SECONDS ({self.stop_timeout_seconds:g}) must be at least DRAIN_SECONDS "
                f"({self.drain_seconds:g}) + {RELEASE_MARGIN_SECONDS}: the container would be killed before "
                "the worker releases the jobs still running"
            )
        return self

    @model_validator(mode="after")
    def _protection_names_its_group(self) -> WorkerSettings:
        if self.scale_in_protection and not self.autoscaling_group_name:
            raise ValueError("SCALE_IN_PROTECTION needs AUTOSCALING_GROUP_NAME")
        return self

    def job_bound(self, kind: str) -> float:
        """The most seconds a job of `kind` is expected to run (queue_scaler/lifecycle/domain/deadlines.py)."""
        return job_bound(kind, self.job_max_seconds_by_kind, self.job_max_seconds, self.drain_seconds)

    @property
    def heartbeat_period(self) -> float:
        """Seconds between visibility extensions: a third of the timeout leaves two retries' room."""
        return self.heartbeat_seconds or self.visibility_timeout / 3

    @property
    def read_timeout(self) -> float:
        """HTTP read timeout: above the long-poll wait, or every empty poll would look like an error."""
        return self.poll_wait_seconds + 10
