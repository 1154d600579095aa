"""Handlers and workers under their own roles, in-process, with moto's IAM authorization switched on.

The local cloud's stack is created in moto (as the local cloud creates it), the roles come from the
transformed templates (devkit/localcloud/iam.py), and after setup every request is authorized: the
first N requests are free, as `set_initial_no_auth_action_count` makes them, then none. A broken
copy of the templates shows that a missing grant is refused, as AWS refuses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import settings as moto_settings

from devkit.localcloud import functions
from devkit.localcloud import stack as stack_module
from devkit.localcloud.iam import LocalIam, worker_component
from devkit.localcloud.stack import LocalSettings
from devkit.stackmodel import TRANSFORMED
from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.refund import RefundPolicy
from queue_scaler.producer import Producer, SubmitFailed
from queue_scaler.scaling.adapters.sqs import SqsJobQueues
from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.shared.adapters import clients
from tests.fakes import RecordingMetrics
from tests.functional.handlers import FakeContext, event, load_handler
from tests.functional.moto_stack import desired_of

SETTINGS = LocalSettings()
REGION = SETTINGS.region


def _cloud(monkeypatch: pytest.MonkeyPatch, templates: Path | None = None) -> tuple[stack_module.LocalStack, LocalIam]:
    # Restored after the test: authorization stays off for every other test of the session.
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    clients.clear()
    local = stack_module.create(SETTINGS, None)  # type: ignore[arg-type]  # no endpoint: moto in-process
    iam = LocalIam(SETTINGS, None, templates)  # type: ignore[arg-type]
    iam.start()
    return local, iam


@pytest.fixture
def enforced(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[stack_module.LocalStack, LocalIam]]:
    yield _cloud(monkeypatch)
    clients.clear()


def _scaler(monkeypatch: pytest.MonkeyPatch) -> Any:
    overrides = {"TICK_SECONDS": "0.05", "RUN_SECONDS": "0.1", "SAFETY_MARGIN_SECONDS": "0"}
    for key, value in functions.environment("ScalerFunction", SETTINGS, overrides).items():
        monkeypatch.setenv(key, value)
    return load_handler("scaler")


def _jobs(local: stack_module.LocalStack, queue: str, count: int) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    for i in range(count):
        sqs.send_message(QueueUrl=local.queue_names()[queue], MessageBody=json.dumps({"n": i}))


def test_given_the_scaler_under_its_role_when_jobs_wait_at_zero_then_it_scales_out(
    enforced: tuple[stack_module.LocalStack, LocalIam], monkeypatch: pytest.MonkeyPatch
) -> None:
    local, iam = enforced
    _jobs(local, f"{SETTINGS.stack}-video-pro", 20)
    handler = _scaler(monkeypatch)
    with iam.acting_as("ScalerFunction"):
        result = handler.lambda_handler(event("scaler", "scheduled.json"), FakeContext())
    video = next(p for p in result["pools"] if p["pool"] == "video")
    assert "error" not in video, video
    assert desired_of(f"{SETTINGS.stack}-video") > 0


def test_given_a_role_without_set_desired_capacity_when_the_scaler_acts_then_aws_refuses_it(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = json.loads(TRANSFORMED.read_text())
    statements = data["templates"]["template.yaml"]["Resources"]["ScalerFunctionRole"]["Properties"]["Policies"][0]
    statements = statements["PolicyDocument"]["Statement"]
    statements[:] = [s for s in statements if s.get("Sid") != "SizeThisStacksGroups"]
    broken = tmp_path / "templates.json"
    broken.write_text(json.dumps(data))
    local, iam = _cloud(monkeypatch, broken)
    _jobs(local, f"{SETTINGS.stack}-video-pro", 20)
    handler = _scaler(monkeypatch)
    with iam.acting_as("ScalerFunction"):
        result = handler.lambda_handler(event("scaler", "scheduled.json"), FakeContext())
    video = next(p for p in result["pools"] if p["pool"] == "video")
    assert "AccessDenied" in json.dumps(video) or "forbidden" in json.dumps(video).lower(), video
    assert desired_of(f"{SETTINGS.stack}-video") == 0
    clients.clear()


def test_given_a_pools_instance_role_then_it_consumes_its_own_queues_and_no_other_pools(
    enforced: tuple[stack_module.LocalStack, LocalIam],
) -> None:
    local, iam = enforced
    credentials = iam.environment(worker_component("video"))
    worker = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
    ).client("sqs")
    names = local.queue_names()
    worker.receive_message(QueueUrl=names[f"{SETTINGS.stack}-video-pro"], WaitTimeSeconds=0)
    for queue in (f"{SETTINGS.stack}-messaging-jobs", f"{SETTINGS.stack}-video-pro-dlq"):
        with pytest.raises(ClientError, match="AccessDenied"):
            worker.receive_message(QueueUrl=names[queue], WaitTimeSeconds=0)
    with pytest.raises(ClientError, match="AccessDenied"):
        worker.send_message(QueueUrl=names[f"{SETTINGS.stack}-video-pro"], MessageBody="{}")


# --- issue 23, case 7: a worker's forgeries on the ledger, denied by IAM -------------------------------
def _client_as(iam: LocalIam, component: str, service: str) -> Any:
    credentials = iam.environment(component)
    return boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
    ).client(service)


def _key(pk: str, sk: str = "JOB") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _update(ddb: Any, key: dict[str, Any], **values: str) -> Any:
    return ddb.update_item(
        TableName=stack_module.ledger_table(SETTINGS),
        Key=key,
        UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values),
        ExpressionAttributeNames={f"#{name}": name for name in values},
        ExpressionAttributeValues={f":{name}": {"S": value} for name, value in values.items()},
    )


def test_given_a_messaging_workers_credentials_when_it_marks_a_video_job_completed_then_iam_denies_it(
    enforced: tuple[stack_module.LocalStack, LocalIam],
) -> None:
    _, iam = enforced
    ddb = _client_as(iam, worker_component("messaging"), "dynamodb")
    # The same write on its own pool's job is granted (the control: the denial is the pool's).
    _update(ddb, _key("JOB#messaging#j-1"), completed_at="2026-12-07T00:00:00+00:00", completed_attempt="a-1")
    with pytest.raises(ClientError, match="AccessDenied"):
        _update(ddb, _key("JOB#video#j-2"), completed_at="2026-12-07T00:00:00+00:00", completed_attempt="a-1")
    with pytest.raises(ClientError, match="AccessDenied"):
        _update(ddb, _key("JOB#video#j-2", "ATTEMPT#a-1"), outcome="completed", attempt_id="a-1")


def test_given_a_workers_credentials_when_it_puts_over_a_reservation_then_iam_denies_it(
    enforced: tuple[stack_module.LocalStack, LocalIam],
) -> None:
    _, iam = enforced
    ddb = _client_as(iam, worker_component("video"), "dynamodb")
    forged = {**_key("JOB#video#j-3"), "status": {"S": "reserved"}, "user_id": {"S": "mallory"}, "credits": {"N": "1"}}
    with pytest.raises(ClientError, match="AccessDenied"):
        ddb.put_item(TableName=stack_module.ledger_table(SETTINGS), Item=forged)
    with pytest.raises(ClientError, match="AccessDenied"):
        ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": stack_module.ledger_table(SETTINGS), "Item": forged}}]
        )
    with pytest.raises(ClientError, match="AccessDenied"):
        ddb.delete_item(TableName=stack_module.ledger_table(SETTINGS), Key=_key("JOB#video#j-3"))


# Not `status`: the worker's conditions read it, and IAM cannot tell a condition's read from a write
# (credits/adapters/ledger.py, WORKER_WRITABLE_ATTRIBUTES).
@pytest.mark.parametrize("field", ["credits", "user_id", "refunded", "plan", "notice"])
def test_given_a_workers_credentials_when_it_changes_a_reservation_field_of_its_own_pools_job_then_iam_denies_it(
    enforced: tuple[stack_module.LocalStack, LocalIam], field: str
) -> None:
    _, iam = enforced
    ddb = _client_as(iam, worker_component("video"), "dynamodb")
    with pytest.raises(ClientError, match="AccessDenied"):
        _update(ddb, _key("JOB#video#j-4"), **{field: "forged"})
    # Hidden inside a transaction beside a write the worker may make, it is denied all the same.
    allowed = {"Update": {"TableName": stack_module.ledger_table(SETTINGS), "Key": _key("JOB#video#j-4", "ATTEMPT#a")}}
    allowed["Update"] |= {"UpdateExpression": "SET outcome = :o", "ExpressionAttributeValues": {":o": {"S": "x"}}}
    forged = {"Update": {"TableName": stack_module.ledger_table(SETTINGS), "Key": _key("JOB#video#j-4")}}
    forged["Update"] |= {
        "UpdateExpression": "SET #f = :v",
        "ExpressionAttributeNames": {"#f": field},
        "ExpressionAttributeValues": {":v": {"S": "forged"}},
    }
    with pytest.raises(ClientError, match="AccessDenied"):
        ddb.transact_write_items(TransactItems=[allowed, forged])


def test_given_a_workers_credentials_when_it_touches_a_users_balance_then_iam_denies_it(
    enforced: tuple[stack_module.LocalStack, LocalIam],
) -> None:
    _, iam = enforced
    ddb = _client_as(iam, worker_component("ai"), "dynamodb")
    with pytest.raises(ClientError, match="AccessDenied"):
        _update(ddb, _key("USER#u-1", "ACCOUNT"), outcome="x")
    with pytest.raises(ClientError, match="AccessDenied"):
        ddb.get_item(TableName=stack_module.ledger_table(SETTINGS), Key=_key("USER#u-1", "ACCOUNT"))


# --- issue 24, point 6: the refund function's queues; the producer's policy ------------------------------
def test_given_the_refund_functions_role_when_it_sends_a_forged_spot_warning_then_iam_denies_it(
    enforced: tuple[stack_module.LocalStack, LocalIam],
) -> None:
    local, iam = enforced
    names = local.queue_names()
    intake = boto3.client("sqs", region_name=REGION).get_queue_url(
        QueueName=stack_module.lifecycle_events_queue(SETTINGS)
    )["QueueUrl"]
    with iam.acting_as("DlqRefundFunction"):
        sqs = boto3.client("sqs", region_name=REGION)
        # Its own: a released job back to its job queue, and its dead-letter queue.
        sqs.send_message(QueueUrl=names[f"{SETTINGS.stack}-video-pro"], MessageBody="{}")
        sqs.receive_message(QueueUrl=names[f"{SETTINGS.stack}-video-pro-dlq"], WaitTimeSeconds=0)
        with pytest.raises(ClientError, match="AccessDenied"):
            sqs.send_message(QueueUrl=intake, MessageBody=json.dumps({"detail-type": "EC2 Spot Instance Interruption"}))
        with pytest.raises(ClientError, match="AccessDenied"):
            sqs.receive_message(QueueUrl=f"{intake}-dlq", WaitTimeSeconds=0)
        with pytest.raises(ClientError, match="AccessDenied"):
            sqs.send_message(QueueUrl=names[f"{SETTINGS.stack}-video-pro-dlq"], MessageBody="{}")


def test_given_the_producer_role_then_it_submits_and_reads_jobs_and_nothing_else(
    enforced: tuple[stack_module.LocalStack, LocalIam],
) -> None:
    local, iam = enforced
    names = local.queue_names()
    sqs = _client_as(iam, "Producer", "sqs")
    sqs.send_message(QueueUrl=names[f"{SETTINGS.stack}-messaging-jobs"], MessageBody="{}")
    for denied in (
        lambda: sqs.receive_message(QueueUrl=names[f"{SETTINGS.stack}-messaging-jobs"], WaitTimeSeconds=0),
        lambda: sqs.send_message(QueueUrl=names[f"{SETTINGS.stack}-messaging-jobs-dlq"], MessageBody="{}"),
        lambda: sqs.purge_queue(QueueUrl=names[f"{SETTINGS.stack}-messaging-jobs"]),
    ):
        with pytest.raises(ClientError, match="AccessDenied"):
            denied()
    ddb = _client_as(iam, "Producer", "dynamodb")
    ddb.get_item(TableName=stack_module.ledger_table(SETTINGS), Key=_key("USER#u-1", "ACCOUNT"))
    with pytest.raises(ClientError, match="AccessDenied"):
        ddb.scan(TableName=stack_module.ledger_table(SETTINGS))
    with pytest.raises(ClientError, match="AccessDenied"):
        ddb.delete_item(TableName=stack_module.ledger_table(SETTINGS), Key=_key("DEPOSIT#purchase-1", "DEPOSIT"))


def test_given_the_producer_role_when_a_send_is_rejected_then_it_may_release_the_reservation(
    enforced: tuple[stack_module.LocalStack, LocalIam],
) -> None:
    """A definite rejection releases the reservation: the release deletes the job's items (one
    transaction), so the producer's policy must allow that delete on job items, and only there."""
    local, iam = enforced
    dlq = local.queue_names()[f"{SETTINGS.stack}-messaging-jobs-dlq"]  # IAM refuses the producer's send here
    config = ScalerConfig.model_validate(
        {
            "pools": [
                {"name": "messaging", "max_size": 1, "queues": [{"name": "jobs", "url": dlq, "target_per_instance": 1}]}
            ]
        },
    )
    ledger = DynamoLedger(stack_module.ledger_table(SETTINGS), _client_as(iam, "Producer", "dynamodb"))
    service = Producer(
        ledger, SqsJobQueues(_client_as(iam, "Producer", "sqs")), config, RecordingMetrics(), policy=RefundPolicy()
    )
    now = datetime.now(UTC)
    service.deposit("u-iam", 10, "purchase-iam", now)
    with pytest.raises(SubmitFailed, match="nothing was sent"):
        service.submit(user_id="u-iam", plan="pro", kind="messaging.email", credits=4, now=now, job_id="j-iam")
    assert ledger.job("j-iam") is None, "released: no job item, no job-id pointer"
    account = ledger.account("u-iam")
    assert account is not None and account.balance == 10
