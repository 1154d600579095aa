"""The drain and health scripts (lifecycle/domain/commands.py) run under bash, as AWS-RunShellScript runs them on
Amazon Linux 2023 (whose /bin/sh is bash), against a stand-in docker.

The stand-in docker answers `inspect` with the two Go templates the scripts use, for a container in
the states a test lists (one per call, the last one repeated), and refuses any other template, as
docker refuses a field its containers do not have; it answers `stop` and `logs --tail N` from files,
and records every call. `date +%s` reads a clock file and `sleep` advances it, so that a check's polls
are counted without waiting; past 200 polls (a loop that never ends) the stand-in kills the script.
What the scripts print is compared with what the emulated SSM agents print (`drain_output`,
`health_output`), since the lifecycle rules are tested against those.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from queue_scaler.lifecycle.domain.commands import (
    HEALTHY,
    LOG_TAIL_LINES,
    CommandRequest,
    drain_command,
    drain_output,
    health_command,
    health_of,
    health_output,
    sweep_command,
    worker_failed,
)
from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS

pytestmark = pytest.mark.timeout(60)

CONTAINER = "queue-worker"
HEALTH_TEMPLATE = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"

DOCKER_STUB = r"""#!/usr/bin/env bash
# Stand-in docker: the container's states (one line per inspect, the last repeated), exit code and logs
# come from files in $STUB_DIR; every call is recorded.
printf 'docker %s\n' "$*" >>"$STUB_DIR/calls"
container=${!#}
state() {
  polls=$(($(cat "$STUB_DIR/polls" 2>/dev/null || echo 0) + 1))
  echo "$polls" >"$STUB_DIR/polls"
  [ "$polls" -gt 200 ] && kill -KILL 0
  sed -n "${polls}p" "$STUB_DIR/states" | grep . || tail -n 1 "$STUB_DIR/states"
}
missing() { echo "Error: No such object: $container" >&2; exit 1; }
case "$1 $2" in
  "inspect --format")
    s=$(state)
    [ "$s" = missing ] && missing
    case $3 in
      "$HEALTH_TEMPLATE") echo "$s" ;;
      "$HEALTH_TEMPLATE {{.RestartCount}}") echo "$s $(cat "$STUB_DIR/restarts")" ;;
      "{{.State.ExitCode}}") cat "$STUB_DIR/exit_code" ;;
      *) echo "template parsing error: can't evaluate field in $3" >&2; exit 1 ;;
    esac
    ;;
  "inspect $container")
    [ "$(state)" = missing ] && missing
    echo '[{"Name": "/'"$container"'"}]'
    ;;
  "stop --time") echo "$container" ;;
  "logs --tail")
    [ "$(tail -n 1 "$STUB_DIR/states")" = missing ] && { echo "Error: No such container: $container" >&2; exit 1; }
    tail -n "$3" "$STUB_DIR/logs"
    ;;
  *) echo "stand-in docker: unexpected $*" >&2; exit 2 ;;
esac
"""

DATE_STUB = r"""#!/usr/bin/env bash
[ "$*" = "+%s" ] || { echo "stand-in date: unexpected $*" >&2; exit 2; }
cat "$STUB_DIR/clock"
"""

SLEEP_STUB = r"""#!/usr/bin/env bash
printf 'sleep %s\n' "$*" >>"$STUB_DIR/calls"
echo $(($(cat "$STUB_DIR/clock") + $1)) >"$STUB_DIR/clock"
"""

T0 = 1_700_000_000


@dataclass
class Ran:
    code: int
    stdout: str
    calls: list[str]
    seconds: int  # on the stand-in clock

    @property
    def polls(self) -> int:
        return sum(1 for c in self.calls if c.startswith("docker inspect --format"))


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., Ran]:
    def run_script(
        command: CommandRequest, states: list[str], logs: Sequence[str] = (), exit_code: int = 0, restarts: int = 0
    ) -> Ran:
        stub_dir, bin_dir = tmp_path / "stubs", tmp_path / "bin"
        stub_dir.mkdir()
        bin_dir.mkdir()
        for name, text in {"docker": DOCKER_STUB, "date": DATE_STUB, "sleep": SLEEP_STUB}.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        (stub_dir / "states").write_text("".join(f"{s}\n" for s in states))
        (stub_dir / "logs").write_text("".join(f"{line}\n" for line in logs))
        (stub_dir / "exit_code").write_text(f"{exit_code}\n")
        (stub_dir / "restarts").write_text(f"{restarts}\n")
        (stub_dir / "clock").write_text(f"{T0}\n")
        bash = shutil.which("bash")
        assert bash is not None
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "STUB_DIR": str(stub_dir),
            "HEALTH_TEMPLATE": HEALTH_TEMPLATE,
        }
        done = subprocess.run(
            [bash, "-c", "\n".join(command.script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            start_new_session=True,  # the stand-in's `kill 0` ends this script's processes only
        )
        calls = (stub_dir / "calls").read_text().splitlines() if (stub_dir / "calls").exists() else []
        seconds = int((stub_dir / "clock").read_text()) - T0
        return Ran(done.returncode, done.stdout, calls, seconds)

    return run_script


LOGS = [f"worker log line {i}" for i in range(1, 31)]
TAIL = LOGS[-LOG_TAIL_LINES:]


@dataclass
class Check:
    name: str
    wait: float
    states: list[str]  # what each poll sees, the last one repeated
    health: str
    polls: int
    printed: list[str] = field(default_factory=lambda: TAIL)  # after the health line
    code: int = 0


CHECKS = [
    Check("given a healthy container then one poll and only its health", 60, [HEALTHY], HEALTHY, 1, []),
    Check(
        "given a container turning healthy then it polls every 5 s until it is",
        60,
        ["starting", "starting", HEALTHY],
        HEALTHY,
        3,
        [],
    ),
    Check(
        "given a container never healthy then it polls until the wait is over, then prints its last logs",
        10,
        ["starting"],
        "starting",
        3,
    ),
    Check("given a wait of 12 s then the poll after it ends the check", 12, ["unhealthy"], "unhealthy", 4),
    Check("given a wait of 0 then it polls once", 0, ["starting"], "starting", 1),
    Check("given a wait under a second then it polls once", 0.4, ["starting"], "starting", 1),
    Check("given a launch past its wait then it polls once", -3, ["starting"], "starting", 1),
    Check(
        "given no such container then it is missing",
        0,
        ["missing"],
        "missing",
        1,
        [f"Error: No such container: {CONTAINER}"],
        code=1,  # docker logs fails too: the command fails, and its health says why
    ),
    Check("given an image without a HEALTHCHECK then its state is printed", 0, ["running"], "running", 1),
]


@pytest.mark.parametrize("case", CHECKS, ids=[c.name for c in CHECKS])
def test_given_a_container_when_its_health_is_checked_then_the_script_prints_its_health_first(
    run: Callable[..., Ran], case: Check
) -> None:
    command = health_command(CONTAINER, case.wait)
    ran = run(command, case.states, LOGS)
    assert ran.code == case.code, ran
    assert health_of(ran.stdout) == case.health
    assert ran.stdout.splitlines() == [f"health={case.health}", *case.printed]
    assert ran.polls == case.polls
    assert ran.calls.count("sleep 5") == case.polls - 1
    assert ran.seconds < command.execution_timeout_seconds  # SSM would have killed it otherwise


@pytest.mark.parametrize(
    ("name", "state", "logs", "tail"),
    [
        ("given a healthy container with logs then only its health", HEALTHY, LOGS, "\n".join(TAIL)),
        ("given an unhealthy container then its health and last logs", "unhealthy", LOGS, "\n".join(TAIL)),
        ("given an unhealthy container without a log line then its health only", "unhealthy", [], None),
    ],
)
def test_given_a_check_when_run_then_it_prints_what_the_emulated_agents_print(
    run: Callable[..., Ran], name: str, state: str, logs: list[str], tail: str | None
) -> None:
    ran = run(health_command(CONTAINER, 0), [state], logs)
    emulated = health_output(state) if tail is None else health_output(state, tail)
    assert ran.stdout.rstrip("\n") == emulated.rstrip("\n"), name


@pytest.mark.parametrize(
    ("name", "wait", "timeout"),
    [
        ("a check of 0 s gets a minute for SSM delivery and docker", 0, 60),
        ("a check of 45 s gets 45 s and that minute", 45, 105),
        ("a check past its wait gets the minute only", -3, 60),
    ],
)
def test_given_a_wait_then_the_checks_execution_timeout_is_the_wait_and_a_minute(
    name: str, wait: float, timeout: int
) -> None:
    assert health_command(CONTAINER, wait).execution_timeout_seconds == timeout, name


@pytest.mark.parametrize(
    ("name", "exit_code", "code"),
    [
        ("given a worker that drains then the command succeeds", 0, 0),
        ("given a worker killed at the end of the window then the command fails", 137, 1),
        ("given a worker that exits 1 then the command fails", 1, 1),
    ],
)
def test_given_a_container_when_drained_then_docker_stop_gets_the_window_and_its_exit_code_decides(
    run: Callable[..., Ran], name: str, exit_code: int, code: int
) -> None:
    command = drain_command(CONTAINER, 60.9)
    ran = run(command, ["running"], LOGS, exit_code)
    assert ran.code == code, name
    # SIGKILL the release margin after the window (queue_scaler/lifecycle/domain/deadlines.py).
    assert f"docker stop --time {60 + RELEASE_MARGIN_SECONDS} {CONTAINER}" in ran.calls, name
    assert ran.stdout == f"{drain_output(exit_code, chr(10).join(TAIL))}\n", name
    assert command.execution_timeout_seconds == 60 + RELEASE_MARGIN_SECONDS + 60, name


def test_given_no_container_when_drained_then_nothing_is_stopped_and_the_command_succeeds(
    run: Callable[..., Ran],
) -> None:
    ran = run(drain_command(CONTAINER, 60), ["missing"], LOGS)
    assert ran.code == 0
    assert ran.stdout == f"no container {CONTAINER}: nothing to drain\n"
    assert not any(c.startswith("docker stop") for c in ran.calls)


@pytest.mark.parametrize(
    ("state", "restarts", "verdict"),
    [
        (HEALTHY, 0, None),
        ("starting", 1, None),
        ("unhealthy", 0, "worker unhealthy"),
        ("missing", 0, "worker missing"),
        ("starting", 3, "worker starting after 3 restarts (crash loop)"),
    ],
)
def test_given_a_worker_in_service_when_swept_then_the_answer_says_whether_it_failed(
    run: Callable[..., Ran], state: str, restarts: int, verdict: str | None
) -> None:
    ran = run(sweep_command(CONTAINER), [state], LOGS, restarts=restarts)
    assert ran.polls == 1 and ran.seconds == 0  # one look, no wait
    assert ran.stdout.splitlines()[:2] == [f"health={state}", f"restarts={restarts}"]
    assert ("worker log line 30" in ran.stdout) is (state not in {HEALTHY, "missing"})
    assert worker_failed(ran.stdout) == verdict
