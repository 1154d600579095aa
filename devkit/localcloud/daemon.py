"""`python -m devkit.localcloud.daemon STATE_DIR`: the process behind `queue-scaler local up`.

It runs the local cloud, serves its status as JSON on 127.0.0.1, writes `state.json` (pid, endpoint,
status URL) once ready, and on SIGTERM stops every process it started before it exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devkit.localcloud.cloud import LocalCloud, free_port
from devkit.localcloud.iam import PRODUCER
from devkit.localcloud.stack import WARM_POOL_STATES, LocalSettings, WarmPoolSettings

STATE_FILE = "state.json"


#: POST here with an instance id to have EC2 interrupt that Spot instance (LocalCloud.spot_interruption).
SPOT_INTERRUPTION_PATH = "/spot-interruption/"


def serve_status(cloud: LocalCloud) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if not self.path.startswith(SPOT_INTERRUPTION_PATH):
                self.send_error(404)
                return
            instance_id = self.path.removeprefix(SPOT_INTERRUPTION_PATH)
            if instance_id not in {i for i, *_ in cloud.emulator.snapshot()}:
                self.send_error(404, f"no instance {instance_id}")
                return
            body = json.dumps(cloud.spot_interruption(instance_id)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/status":
                self.send_error(404)
                return
            query = urllib.parse.parse_qs(url.query)
            try:
                status = cloud.status(ledger=query.get("ledger", ["1"])[-1] != "0")
            except Exception as error:
                # An emulated call that timed out on a busy machine: say so (503, the client may ask
                # again) instead of closing the connection without an answer.
                logging.exception("status failed")
                self.send_error(503, f"status failed: {type(error).__name__}: {error}"[:200])
                return
            body = json.dumps(status).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: status is polled every second by the demo."""

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, name="status", daemon=True).start()
    return server


def parse_warm_pool(spec: str) -> tuple[str, WarmPoolSettings]:
    """`ai=Stopped:0:2` -> ("ai", WarmPoolSettings("Stopped", 0, 2)); an unknown state is refused by name."""
    pool, _, rest = spec.partition("=")
    state, *sizes = rest.split(":")
    numbers = len(sizes) <= 2 and all(size.lstrip("-").isdigit() for size in sizes)
    if not pool or state not in WARM_POOL_STATES or not numbers:
        raise SystemExit(
            f"--warm-pool {spec!r}: write POOL=STATE[:MIN_SIZE[:MAX_PREPARED]], "
            f"STATE one of {', '.join(WARM_POOL_STATES)}"
        )
    min_size, max_prepared = [int(size) for size in sizes] + [0, -1][len(sizes) :]
    return pool, WarmPoolSettings(state, min_size, max_prepared)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devkit.localcloud.daemon")
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--schedule-seconds", type=float, default=LocalSettings().schedule_seconds)
    parser.add_argument("--no-reconcile", action="store_true", help="the lifecycle reconciler's schedule off")
    parser.add_argument(
        "--drain-seconds", type=int, default=LocalSettings().drain_seconds, help="every pool's DrainSeconds"
    )
    parser.add_argument(
        "--drop-lifecycle-event",
        action="append",
        default=[],
        metavar="DETAIL_TYPE",
        help="fault injection: lose every lifecycle event of this detail-type before it reaches its queue",
    )
    parser.add_argument(
        "--warm-pool",
        action="append",
        default=[],
        metavar="POOL=STATE[:MIN_SIZE[:MAX_PREPARED]]",
        help="give POOL a warm pool (as its WarmPoolState, WarmPoolMinSize, WarmPoolMaxPreparedCapacity)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per emulated API request would drown what matters; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    stopping = threading.Event()
    for stop_signal in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(stop_signal, lambda *_: stopping.set())

    settings = LocalSettings(
        schedule_seconds=args.schedule_seconds,
        reconcile_schedule=not args.no_reconcile,
        drain_seconds=args.drain_seconds,
        drop_lifecycle_events=tuple(args.drop_lifecycle_event),
        warm_pools=dict(parse_warm_pool(spec) for spec in args.warm_pool),
    )
    cloud = LocalCloud(args.state_dir, settings)
    try:
        endpoint = cloud.start()
        status = serve_status(cloud)
        state = {
            "pid": __import__("os").getpid(),
            "endpoint_url": endpoint,
            "status_url": f"http://127.0.0.1:{status.server_address[1]}/status",
            # What `--local` and `local up` compare against.
            "region": settings.region,
            "stack": settings.stack,
            "schedule_seconds": settings.schedule_seconds,
            "reconcile": settings.reconcile_schedule,
            # The producer role's session (ProducerPolicy only): what the demo's producer and the
            # CLI's submit / credits / jobs use with --local, as a product would on AWS.
            "producer": cloud.iam.environment(PRODUCER),
            "drain_seconds": settings.drain_seconds,
            "warm_pools": sorted(args.warm_pool),
        }
        # Written whole, then renamed: `local up` polls for this file and must never read half of it.
        partial = args.state_dir / f"{STATE_FILE}.partial"
        partial.write_text(json.dumps(state))
        partial.replace(args.state_dir / STATE_FILE)
        logging.info("local cloud ready at %s", endpoint)
        # Waiting in short steps keeps the main thread where signal handlers run.
        while not stopping.wait(1.0):
            pass
        status.shutdown()
    finally:
        cloud.stop()
        (args.state_dir / STATE_FILE).unlink(missing_ok=True)
        logging.info("local cloud stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
