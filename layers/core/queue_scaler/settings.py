"""Settings of each function, read from the environment (the only module that reads it).

One model per function, as the Lambda handler cookbook recommends: the template sets these variables,
and a missing or malformed one fails at cold start with the variable's name.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
