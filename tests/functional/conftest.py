"""Functional tests run against moto, in-process: no network, no real AWS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from devkit.localcloud.server import moto_server
from queue_scaler.shared.adapters import clients
from tests.functional.worker_fixtures import sqs_client


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh moto account; clients cached by the adapters are dropped before and after."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clients.clear()
    with mock_aws():
        yield
    clients.clear()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto server on loopback for the worker tests, whose workers are real processes."""
    with moto_server() as url:
        yield url


@pytest.fixture
def sqs(endpoint: str) -> Any:
    """The worker tests' own SQS client for `endpoint`."""
    return sqs_client(endpoint)
