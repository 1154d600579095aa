"""The local cloud's status endpoint and its client: a failed status is answered (503) and asked again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devkit.localcloud.control import fetch_status
from devkit.localcloud.daemon import serve_status


class FlakyCloud:
    """Fails its first `failures` status calls, as the daemon's own scan does when it times out."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[bool] = []

    def status(self, ledger: bool = True) -> dict[str, Any]:
        self.calls.append(ledger)
        if len(self.calls) <= self.failures:
            raise RuntimeError("Read timeout on endpoint URL")
        return {"ledger": ledger}


@pytest.fixture
def serve() -> Iterator[Any]:
    servers = []

    def start(cloud: FlakyCloud) -> dict[str, str]:
        server = serve_status(cloud)  # type: ignore[arg-type]
        servers.append(server)
        return {"status_url": f"http://127.0.0.1:{server.server_address[1]}/status"}

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("ledger", [True, False])
def test_given_a_status_that_fails_twice_when_fetched_then_it_is_asked_again_and_answers(
    serve: Any, ledger: bool
) -> None:
    cloud = FlakyCloud(failures=2)
    assert fetch_status(serve(cloud), timeout=30, ledger=ledger) == {"ledger": ledger}
    assert cloud.calls == [ledger] * 3


def test_given_a_status_that_always_fails_when_fetched_then_a_timeout_names_the_bound(serve: Any) -> None:
    cloud = FlakyCloud(failures=10**6)
    with pytest.raises(TimeoutError, match="within 1 s"):
        fetch_status(serve(cloud), timeout=1.0)
    assert len(cloud.calls) >= 1


def test_given_an_unknown_path_when_fetched_then_the_error_is_not_retried(serve: Any) -> None:
    state = serve(FlakyCloud(failures=0))
    with pytest.raises(Exception, match="404"):
        fetch_status({"status_url": state["status_url"].replace("/status", "/nothing")}, timeout=5)
