"""Functional tests run against moto, in-process: no network, no real AWS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from queue_scaler.adapters import clients


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
