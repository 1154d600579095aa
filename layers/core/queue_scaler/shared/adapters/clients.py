"""boto3 clients: created lazily, cached per execution environment, with timeouts and bounded retries.

boto3 itself honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>), which is how the local cloud
and the tests point the real adapters at 127.0.0.1; `endpoint_url` overrides it for the CLI.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

# A tick makes a handful of calls and must finish well inside Lambda's deadline: fail fast and let
# the next tick (10 s later) try again rather than wait on a slow endpoint. "standard" retry mode
# backs off with jitter on throttles and 5xx, three attempts in all.
CONFIG = Config(
    connect_timeout=3,
    read_timeout=5,
    retries={"max_attempts": 3, "mode": "standard"},
    max_pool_connections=20,
)


@cache
def _client(service: str, endpoint_url: str | None) -> Any:
    # One cache key per (service, endpoint): `sqs()` and `sqs(None)` must return the same client.
    return boto3.client(service, config=CONFIG, endpoint_url=endpoint_url)  # type: ignore[call-overload]


def sqs(endpoint_url: str | None = None) -> SQSClient:
    return cast("SQSClient", _client("sqs", endpoint_url))


def autoscaling(endpoint_url: str | None = None) -> AutoScalingClient:
    return cast("AutoScalingClient", _client("autoscaling", endpoint_url))


def dynamodb(endpoint_url: str | None = None) -> DynamoDBClient:
    return cast("DynamoDBClient", _client("dynamodb", endpoint_url))


def ssm(endpoint_url: str | None = None) -> SSMClient:
    return cast("SSMClient", _client("ssm", endpoint_url))


def sns(endpoint_url: str | None = None) -> SNSClient:
    return cast("SNSClient", _client("sns", endpoint_url))


def clear() -> None:
    """Forget cached clients (tests start and stop emulators; a client must not outlive its endpoint),
    and boto3's default session, which keeps the credentials it first resolved: the next client reads
    the environment's credentials as they are now."""
    _client.cache_clear()
    boto3.DEFAULT_SESSION = None
