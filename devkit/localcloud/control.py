"""The local cloud's control: start, find, ask, stop (`queue-scaler local`, `make demo`, `--local`, the tests).

The CLI (`devkit/commands/local.py`) is a thin layer over these functions; nothing here prints or
parses arguments.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from devkit.localcloud import stack
from devkit.localcloud.daemon import SPOT_INTERRUPTION_PATH, STATE_FILE
from devkit.localcloud.stack import LocalSettings
from queue_scaler.scaling.domain.pool import PoolConfig

#: The local emulator's dummy credentials: never valid anywhere else (the operator's side of the local cloud).
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
DEFAULT_DIR = Path(".localcloud")
#: `make demo`'s local cloud: `local status|down` and `--local` look here too.
DEMO_DIR = Path(".localcloud-demo")
SEARCH_DIRS = (DEFAULT_DIR, DEMO_DIR)
# Generous: on a busy 2-core machine (a CI runner, the tests beside it) the daemon takes minutes to start.
START_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0
#: Seconds a status request may take: it reads every queue, group and table of the local cloud.
STATUS_TIMEOUT = 10.0


class OptionsDiffer(RuntimeError):
    """`local up` was asked for options the running local cloud does not have."""


class LocalCloudFailed(RuntimeError):
    """The local cloud could not start; the message gives the cause in one line."""


def running(pid: int) -> bool:
    """Whether `pid` still runs. A daemon started by this process (the demo, tests) is reaped here:
    once exited it would otherwise linger as a zombie, which signal 0 still reaches."""
    try:
        reaped, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        reaped = 0  # not our child: the `local up` that started it has exited
    if reaped == pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_state(state_dir: Path) -> dict[str, Any] | None:
    """The running local cloud's pid and URLs, or None when none runs there."""
    path = state_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # being replaced as we read it
    if not running(int(state["pid"])):
        path.unlink(missing_ok=True)  # left by a daemon that died; nothing runs
        return None
    return state


def find_running(state_dir: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The running local cloud in `state_dir`, or (without one) in `local up`'s or the demo's directory."""
    for directory in [state_dir] if state_dir is not None else SEARCH_DIRS:
        state = read_state(directory)
        if state is not None:
            return directory, state
    return None


def fetch_status(state: dict[str, Any], timeout: float = STATUS_TIMEOUT, ledger: bool = True) -> dict[str, Any]:
    """The local cloud's status (without the ledger's figures when `ledger` is false: see LocalCloud.status).

    Asked again while the daemon answers 503 (one of its own calls timed out on a busy machine) or drops
    the connection, until `timeout` seconds have passed; raises TimeoutError when no answer came in time.
    """
    url = state["status_url"] + ("" if ledger else "?ledger=0")
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the local cloud's status did not answer within {timeout:.0f} s")
        try:
            with urllib.request.urlopen(url, timeout=remaining) as response:  # noqa: S310 - loopback URL we wrote
                status: dict[str, Any] = json.loads(response.read())
            return status
        except urllib.error.HTTPError as error:
            if error.code != 503:
                raise
        except urllib.error.URLError as error:
            # urllib wraps a connect timeout; a read timeout arrives as TimeoutError itself.
            if isinstance(error.reason, TimeoutError):
                raise error.reason from error
            raise
        except ConnectionResetError:  # http.client.RemoteDisconnected: closed without an answer
            pass
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def spot_interruption(state: dict[str, Any], instance_id: str) -> dict[str, Any]:
    """Have the running local cloud's EC2 interrupt a Spot instance; returns the warning event."""
    base = state["status_url"].rsplit("/", 1)[0]
    request = urllib.request.Request(f"{base}{SPOT_INTERRUPTION_PATH}{instance_id}", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback URL we wrote
        event: dict[str, Any] = json.loads(response.read())
    return event


def up(
    state_dir: Path,
    schedule_seconds: float | None = None,
    drop_lifecycle_events: tuple[str, ...] = (),
    reconcile: bool = True,
    drain_seconds: int | None = None,
    *,
    warm_pools: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Start the daemon unless one runs; wait until it is ready. Returns its state.

    `warm_pools` gives pools a warm pool (the daemon's `--warm-pool POOL=STATE[:MIN_SIZE[:MAX_PREPARED]]`).
    A running daemon is reused only when it has the options asked for (OptionsDiffer otherwise).
    Interrupted while it starts (Ctrl-C, SIGTERM), the starting daemon and its workers are stopped.
    `drop_lifecycle_events` (fault injection, for tests) names detail-types whose events are lost.
    """
    state = read_state(state_dir)
    if state is not None:
        running_schedule = float(state.get("schedule_seconds", LocalSettings().schedule_seconds))
        if schedule_seconds is not None and schedule_seconds != running_schedule:
            raise OptionsDiffer(
                f"a local cloud already runs in {state_dir} ({state['endpoint_url']}) with --schedule-seconds "
                f"{running_schedule:g}, not {schedule_seconds:g}: stop it first (queue-scaler local down)"
            )
        running_drain = int(state.get("drain_seconds", LocalSettings().drain_seconds))
        if drain_seconds is not None and drain_seconds != running_drain:
            raise OptionsDiffer(
                f"a local cloud already runs in {state_dir} ({state['endpoint_url']}) with drain windows of "
                f"{running_drain} s, not {drain_seconds} s: stop it first (queue-scaler local down)"
            )
        if bool(state.get("reconcile", True)) != reconcile:
            raise OptionsDiffer(
                f"a local cloud already runs in {state_dir} ({state['endpoint_url']}) with its reconciler's "
                f"schedule {'on' if state.get('reconcile', True) else 'off (--no-reconcile)'}: stop it first "
                "(queue-scaler local down)"
            )
        if sorted(state.get("warm_pools", [])) != sorted(warm_pools):
            raise OptionsDiffer(
                f"a local cloud already runs in {state_dir} ({state['endpoint_url']}) with warm pools "
                f"{state.get('warm_pools', [])}, not {list(warm_pools)}: stop it first (queue-scaler local down)"
            )
        return state
    check_templates()
    state_dir.mkdir(parents=True, exist_ok=True)
    log = (state_dir / "localcloud.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit.localcloud.daemon", str(state_dir)]
        + ([] if schedule_seconds is None else ["--schedule-seconds", str(schedule_seconds)])
        + ([] if reconcile else ["--no-reconcile"])
        + ([] if drain_seconds is None else ["--drain-seconds", str(drain_seconds)])
        + [arg for kind in drop_lifecycle_events for arg in ("--drop-lifecycle-event", kind)]
        + [arg for spec in warm_pools for arg in ("--warm-pool", spec)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # outlives this command; `down` stops it
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log_path = state_dir / "localcloud.log"
                raise LocalCloudFailed(
                    f"the local cloud exited with {process.returncode}: {last_error(log_path)} (see {log_path})"
                )
            state = read_state(state_dir)
            if state is not None:
                return state
            time.sleep(0.2)
        raise LocalCloudFailed(
            f"the local cloud did not start within {START_TIMEOUT:.0f} s; see {state_dir / 'localcloud.log'}"
        )
    except BaseException:
        # Not started after all (a timeout, Ctrl-C, SIGTERM): nothing of it may keep running.
        _stop(process.pid, STOP_TIMEOUT)
        _kill_leftover_workers(state_dir)
        raise


class StaleTemplates(LocalCloudFailed):
    """The transformed templates the local cloud takes its roles from are missing or older than their sources."""


def check_templates() -> None:
    """Refuse to start a local cloud whose daemon would fail on the transformed templates (missing, or
    a template changed since `make transform`): the cause and the fix in one line, not in its log."""
    from devkit import stackmodel
    from devkit.localcloud.stack import templates_path

    path = templates_path()
    try:
        stackmodel.load_templates(path, check_sources=path == stackmodel.TRANSFORMED)
    except AssertionError as error:
        raise StaleTemplates(str(error)) from None


def last_error(log: Path) -> str:
    """The last line of a dead daemon's log: a traceback ends with the exception and its message."""
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "nothing logged"


def down(state_dir: Path, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the daemon (it drains and stops its workers first), then make sure no worker of this local
    cloud survives, even one a crashed daemon left behind. False when no daemon was running."""
    state = read_state(state_dir)
    if state is not None:
        _stop(int(state["pid"]), timeout)
        (state_dir / STATE_FILE).unlink(missing_ok=True)
    _kill_leftover_workers(state_dir)
    return state is not None


def _stop(pid: int, timeout: float) -> None:
    """SIGTERM the daemon's process group, SIGKILL it after `timeout`; returns once it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while running(pid):
        time.sleep(0.1)


def _kill_leftover_workers(state_dir: Path) -> None:
    for worker in leftover_workers(state_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(worker, signal.SIGKILL)


def leftover_workers(state_dir: Path) -> list[int]:
    """Worker processes of this local cloud still running: their HEALTH_FILE lies in its state dir."""
    marker = f"HEALTH_FILE={(state_dir / 'instances').resolve()}/".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"queue_worker" in (proc / "cmdline").read_bytes() and marker in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue  # exited meanwhile, or not ours to read
    return found


def stop_running(state_dir: Path | None) -> str:
    """`local down`: the running local cloud (in `state_dir`, or the one found); what it did, in words."""
    found = find_running(state_dir)
    if found is None:
        # Nothing answers, but a crashed daemon may have left workers behind.
        for directory in [state_dir] if state_dir is not None else SEARCH_DIRS:
            down(directory)
        return "not running"
    down(found[0])
    return f"stopped ({found[0]})"


class UnknownPool(ValueError):
    """`local new-image` was given a pool the local stack does not have."""


def new_image(state: dict[str, Any], pool: str) -> str:
    """`local new-image POOL`: a new launch template version in the pool's group; returns the version."""
    settings = LocalSettings()
    groups = {spec["name"]: PoolConfig.model_validate(spec).group_name for spec in stack.pool_specs(settings)}
    if pool not in groups:
        raise UnknownPool(f"no pool {pool!r}: the local stack's pools are {', '.join(groups)}")
    session = boto3.session.Session(
        region_name=settings.region,
        aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    endpoint = state["endpoint_url"]
    return stack.new_image(
        session.client("autoscaling", endpoint_url=endpoint),
        session.client("ec2", endpoint_url=endpoint),
        groups[pool],
    )
