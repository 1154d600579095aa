"""The local instances' metadata service (IMDSv2), as much of it as the workers read.

Each local instance's worker is given `AWS_EC2_METADATA_SERVICE_ENDPOINT` (the AWS SDKs' setting, which
queue_worker/protection.py honours too) pointing at `<this server>/<instance id>`, so that one server
answers for every instance: `PUT latest/api/token` gives a session token, and `GET
latest/meta-data/autoscaling/target-lifecycle-state` the instance's target lifecycle state as Auto
Scaling publishes it (what queue_worker/warm.py reads to stand by in a warm pool). Anything else is 404.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN_PATH = "latest/api/token"  # noqa: S105 - a URL path, no secret
TARGET_STATE_PATH = "latest/meta-data/autoscaling/target-lifecycle-state"
TOKEN = "local-imds-token"  # noqa: S105 - what the local instances present back, no secret


@contextmanager
def instance_metadata(target_state: Callable[[str], str | None]) -> Iterator[str]:
    """Serve the instances' metadata on 127.0.0.1 while inside; yields the base URL (add `/<instance id>`).
    `target_state(instance_id)` answers the target lifecycle state, None for an unknown instance."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: str = "") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            _instance, _, path = self.path.lstrip("/").partition("/")
            self._answer(200, TOKEN) if path == TOKEN_PATH else self._answer(404)

        def do_GET(self) -> None:
            instance_id, _, path = self.path.lstrip("/").partition("/")
            if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                self._answer(401)  # IMDSv2 only, as the launch template requires (HttpTokens: required)
                return
            state = target_state(instance_id) if path == TARGET_STATE_PATH else None
            self._answer(404) if state is None else self._answer(200, state)

        def log_message(self, format: str, *args: object) -> None:
            return  # one line per request would drown the local cloud's log

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="imds", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
