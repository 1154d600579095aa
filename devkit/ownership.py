"""The CLI owns what it starts: a signal that ends it first stops its local cloud and workers.

Python turns Ctrl-C (SIGINT) into KeyboardInterrupt, so `finally` blocks run; SIGHUP (the terminal
closed) and SIGTERM would otherwise end the process at once and leave the local cloud's daemon and
its workers running in their own sessions. `stop_on_signals` makes all three raise `Stopped` (a
KeyboardInterrupt), and ignores further ones while the cleanup runs, so that a second Ctrl-C cannot
cut it short.

`claim_state_dir` keeps the demo from deleting a state directory whose daemon still lives.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from devkit.localcloud.control import down, running

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
OWNER_FILE = "owner.pid"


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; `signal` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signal = signal.Signals(signum)


class StateDirInUse(RuntimeError):
    """Another live process owns the state directory."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise Stopped in the main thread (once)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may install handlers (a CLI run from a test's thread)
        return

    def stop(signum: int, _frame: FrameType | None) -> None:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)  # the cleanup that follows must finish
        raise Stopped(signum)

    previous = {each: signal.signal(each, stop) for each in STOP_SIGNALS}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


def claim_state_dir(state_dir: Path) -> None:
    """Make `state_dir` this process's, empty. Refuses (StateDirInUse) while its owner lives; a local
    cloud it left behind (its owner was killed) is stopped, workers included, before the state goes."""
    owner_file = state_dir / OWNER_FILE
    with contextlib.suppress(OSError, ValueError):
        owner = int(owner_file.read_text())
        if owner != os.getpid() and running(owner):
            raise StateDirInUse(
                f"{state_dir} belongs to a running process (pid {owner}), probably another demo: stop it first"
            )
    down(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    owner_file.write_text(str(os.getpid()))


def release_state_dir(state_dir: Path) -> None:
    (state_dir / OWNER_FILE).unlink(missing_ok=True)
