"""Handlers and workers under their own roles, in-process, with moto's IAM authorization switched on.

The local cloud's stack is created in moto (as the local cloud creates it), the roles come from the
transformed templates (devkit/localcloud/iam.py), and after setup every request is authorized: the
first N requests are free, as `set_initial_no_auth_action_count` makes them, then none. A broken
copy of the templates shows that a missing grant is refused, as AWS refuses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
from queue_scaler.adapters import clients
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
