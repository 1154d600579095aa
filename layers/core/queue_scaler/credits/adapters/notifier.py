"""User notices through SNS: one message per failed job, with attributes subscribers can filter on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.credits.domain.refund import UserNotice
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.adapters.aws_errors import translate

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


class SnsNotifier:
    """Implements ports.Notifier: publishes the notice as JSON to one topic (email, SMS or app fan-out)."""

    def __init__(self, topic_arn: str, client: SNSClient | None = None) -> None:
        self._topic_arn = topic_arn
        self._client = client or clients.sns()

    def publish(self, notice: UserNotice) -> None:
        try:
            self._client.publish(
                TopicArn=self._topic_arn,
                Subject=notice.subject[:100],  # SNS rejects longer subjects
                Message=notice.model_dump_json(),
                MessageAttributes={
                    "user_id": {"DataType": "String", "StringValue": notice.user_id},
                    "event": {"DataType": "String", "StringValue": "job_failed"},
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise translate("Publish", error) from error
