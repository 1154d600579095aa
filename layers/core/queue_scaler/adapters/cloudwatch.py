"""Age of each queue's oldest message, from CloudWatch (SQS's attributes do not carry it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.adapters import clients
from queue_scaler.adapters.aws_errors import translate

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef

#: GetMetricData accepts at most 500 queries per call.
QUERIES_PER_CALL = 500


class CloudWatchMessageAges:
    """Implements ports.MessageAges: the latest ApproximateAgeOfOldestMessage (Maximum) per queue.

    SQS publishes it once a minute, a few minutes late, so the look-back spans several periods and the
    newest datapoint wins; a queue with no datapoint in it (idle, or just created) is simply absent.
    """

    def __init__(self, client: CloudWatchClient | None = None, lookback_seconds: int = 600) -> None:
        self._client = client or clients.cloudwatch()
        self._lookback = timedelta(seconds=lookback_seconds)

    def oldest(self, queues: Sequence[str], now: float) -> Mapping[str, float]:
        end = datetime.fromtimestamp(now, UTC)
        names = list(dict.fromkeys(queues))
        found: dict[str, float] = {}
        for start in range(0, len(names), QUERIES_PER_CALL):
            chunk = names[start : start + QUERIES_PER_CALL]
            ids = {f"q{i}": name for i, name in enumerate(chunk)}
            queries: list[MetricDataQueryTypeDef] = [
                {
                    "Id": query_id,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SQS",
                            "MetricName": "ApproximateAgeOfOldestMessage",
                            "Dimensions": [{"Name": "QueueName", "Value": name}],
                        },
                        "Period": 60,
                        "Stat": "Maximum",
                    },
                    "ReturnData": True,
                }
                for query_id, name in ids.items()
            ]
            try:
                pages = self._client.get_paginator("get_metric_data").paginate(
                    MetricDataQueries=queries,
                    StartTime=end - self._lookback,
                    EndTime=end,
                    ScanBy="TimestampDescending",
                )
                for page in pages:
                    for result in page.get("MetricDataResults", []):
                        name = ids.get(result.get("Id", ""))
                        values = result.get("Values", [])
                        # Newest first (TimestampDescending); a later page never holds a newer value.
                        if name is not None and values and name not in found:
                            found[name] = float(values[0])
            except (ClientError, BotoCoreError) as error:
                raise translate("GetMetricData", error) from error
        return found
