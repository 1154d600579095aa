"""Settings of each function, read from the environment (the only module that reads it).

One model per function, as the Lambda handler cookbook recommends: the template sets these variables,
and a missing or malformed one fails at cold start with the variable's name.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from queue_scaler.domain.refund import RefundPolicy


class ScalerSettings(BaseSettings):
    """ScalerFunction: where the pool configuration and the history live, and the tick cadence."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

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


class MetricsSettings(BaseSettings):
    """MetricsFunction: where the pool configuration lives and how far back to look for message ages."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    pool_config_parameter: str = Field(description="SSM parameter holding the pools' JSON configuration")
    environment: str = Field(default="dev", description="Deployment environment, a metric dimension")
    config_max_age_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    # SQS publishes ApproximateAgeOfOldestMessage once a minute, a few minutes late.
    age_lookback_seconds: Annotated[int, Field(ge=60, le=3600)] = 600


class DlqRefundSettings(BaseSettings):
    """DlqRefundFunction: the ledger, the parking table, the users' topic and the refund policy."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    ledger_table: str = Field(description="DynamoDB table of accounts, credit transactions and jobs")
    parking_table: str = Field(description="DynamoDB table of dead letters that could not be refunded")
    notice_topic_arn: str = Field(description="SNS topic of user notices (one per failed job)")
    environment: str = Field(default="dev", description="Deployment environment, a metric dimension")
    refund_cap: Annotated[int, Field(gt=0)] = Field(default=10_000, description="Largest refund of one job")
    uncharged_plans: str = Field(default="free", description="Comma-separated plans whose jobs reserve nothing")
    # A notice claim older than this is taken over by a later delivery: it must exceed one publish's
    # worst case (3 attempts of at most 8 s each) so that a live holder is never overtaken.
    notice_lease_seconds: Annotated[float, Field(ge=30, le=900)] = 60

    def policy(self) -> RefundPolicy:
        """The refund policy these settings describe (an unknown plan name fails here, at cold start)."""
        plans = [p.strip() for p in self.uncharged_plans.split(",") if p.strip()]
        return RefundPolicy.model_validate({"cap": self.refund_cap, "uncharged_plans": plans})
