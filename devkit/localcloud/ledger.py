"""The local stack's credit ledger, for whoever reaches it from outside its functions."""

from __future__ import annotations

from devkit.localcloud import stack
from devkit.localcloud.stack import LocalSettings
from queue_scaler.bootstrap import refund_service
from queue_scaler.credits.domain.refund import RefundPolicy
from queue_scaler.credits.services.refunds import RefundService
from queue_scaler.scaling.adapters.memory import NullMetrics


def local_ledger(endpoint_url: str, settings: LocalSettings | None = None) -> RefundService:
    """The local stack's credit ledger, as a producer or the local cloud itself reaches it."""
    settings = settings or LocalSettings()
    return refund_service(
        ledger_table=stack.ledger_table(settings),
        parking_table=stack.parking_table(settings),
        notice_topic_arn=stack.notice_topic_arn(settings),
        metrics=NullMetrics(),
        policy=RefundPolicy(),
        lease_seconds=60,
        endpoint_url=endpoint_url,
    )
