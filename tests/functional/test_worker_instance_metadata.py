"""The worker reads its instance id from IMDSv2, here a strict stand-in on 127.0.0.1: a PUT for a
session token (with its TTL header), then the GET carrying it, as EC2's instance metadata service wants."""

from __future__ import annotations

import socket
import threading
import urllib.error
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from queue_worker import protection

TOKEN = "AQAEAFTRvuAK-token"


class Imds(BaseHTTPRequestHandler):
    """IMDSv2's two calls; anything else is refused as the service refuses it."""

    requests: ClassVar[list[tuple[str, str]]] = []

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def do_PUT(self) -> None:
        Imds.requests.append(("PUT", self.path))
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if self.path != "/latest/api/token" or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            self._answer(400, "")
            return
        self._answer(200, TOKEN)

    def do_GET(self) -> None:
        Imds.requests.append(("GET", self.path))
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            self._answer(401, "")
            return
        if self.path != "/latest/meta-data/instance-id":
            self._answer(404, "")
            return
        self._answer(200, "i-0123456789abcdef0\n")

    def _answer(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def imds(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Imds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Imds.requests = []
    url = f"http://127.0.0.1:{server.server_address[1]}/latest"
    monkeypatch.setattr(protection, "IMDS", url)
    yield url
    server.shutdown()
    server.server_close()


def test_given_imdsv2_when_asked_then_the_instance_id_comes_with_a_session_token(imds: str) -> None:
    assert protection.instance_id_from_imds() == "i-0123456789abcdef0"
    assert Imds.requests == [("PUT", "/latest/api/token"), ("GET", "/latest/meta-data/instance-id")]


def test_given_a_service_that_refuses_the_token_then_the_error_reaches_the_caller(
    imds: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protection, "IMDS", imds.replace("/latest", "/other"))
    with pytest.raises(urllib.error.HTTPError) as refused:
        protection.instance_id_from_imds()
    assert refused.value.code == 400 and isinstance(refused.value, OSError)


def test_given_a_metadata_service_that_never_answers_then_the_call_gives_up_at_its_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    silent = socket.create_server(("127.0.0.1", 0), backlog=1)  # connects, never answers
    try:
        monkeypatch.setattr(protection, "IMDS", f"http://127.0.0.1:{silent.getsockname()[1]}/latest")
        with pytest.raises(OSError, match="timed out"):
            protection.instance_id_from_imds(timeout=0.5)
    finally:
        silent.close()
