"""The shell commands the LifecycleFunction runs on an instance, and the one format both ends read.

A command is sent with AWS-RunShellScript; its SSM Comment names what it is
(`queue-scaler <purpose> <container> <seconds>`) and its output starts with one `key=value` line
(`exit=<code>` for a drain or a Spot drain, `health=<status>` for a health check) followed by the
container's last log lines. The LifecycleFunction reads the outputs with `health_of`; the local cloud's emulated SSM
agent reads the comment with `parse_comment` and writes outputs with `drain_output` /
`health_output`, so the two can never drift apart.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from queue_scaler.lifecycle.domain.deadlines import stop_timeout_seconds

COMMENT_PREFIX = "queue-scaler"
#: First line of a health check's output: `health=<docker health status>`.
HEALTH_PREFIX = "health="
#: First line of a drain's output: `exit=<the container's exit code>`.
EXIT_PREFIX = "exit="
HEALTHY = "healthy"
#: Log lines kept from a command's output: enough to see why a worker failed, small enough for a log line.
LOG_TAIL_LINES = 20
#: SSM SendCommand refuses a Comment longer than this.
COMMENT_MAX_CHARS = 100
#: No command outlasts the lifecycle hook it serves, and a hook waits at most 48 hours (EC2 Auto
#: Scaling's global timeout): the most seconds a comment ever carries.
MAX_COMMAND_SECONDS = 48 * 3600
#: Docker's rule for container names (its RestrictedNamePattern); the name is also a shell word of
#: the scripts below and one word of the comment, which this rule keeps it.
CONTAINER_NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"
#: The instance's directory for the worker's stop notice, bind-mounted read-only into the container at
#: the same path by the user data (workers/userdata.sh); the worker reads STOP_NOTICE_FILE in it.
STOP_NOTICE_DIR = "/run/queue-worker-notice"
#: The stop notice: one line, the epoch second at which the instance goes (the end of a Spot notice).
STOP_NOTICE_FILE = f"{STOP_NOTICE_DIR}/deadline"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Purpose(StrEnum):
    DRAIN = "drain"  # seconds: the drain window
    SPOT = "spot"  # seconds: left of the Spot notice when the command was sent
    HEALTH = "health"  # seconds: how long the check waits
    SWEEP = "sweep"  # the reconciler's periodic look at the workers in service


class CommandRequest(_Model):
    """A shell script for AWS-RunShellScript, and what it is for (the SSM command's Comment)."""

    comment: str = Field(max_length=COMMENT_MAX_CHARS)
    script: list[str]
    execution_timeout_seconds: int


class CommandComment(_Model):
    """What a command's Comment says: its purpose, the container and its seconds (drain window or wait)."""

    purpose: Purpose
    container: str
    seconds: int = Field(ge=0)


def _comment(purpose: Purpose, container: str, seconds: int) -> str:
    return f"{COMMENT_PREFIX} {purpose} {container} {seconds}"


#: The longest container name whose every comment fits SSM's limit, the other words at their longest.
CONTAINER_NAME_MAX_CHARS = COMMENT_MAX_CHARS - len(_comment(max(Purpose, key=len), "", MAX_COMMAND_SECONDS))


def check_container_name(name: str) -> str:
    """`name` when Docker accepts it and every command's comment naming it fits; ValueError saying why not.

    Checked where the configuration is read, so that no drain or health check fails on it later.
    """
    if len(name) > CONTAINER_NAME_MAX_CHARS:
        raise ValueError(
            f"{len(name)} characters is too long: at most {CONTAINER_NAME_MAX_CHARS}, so that the SSM command's "
            f"Comment (`{COMMENT_PREFIX} <purpose> <container> <seconds>`) stays within {COMMENT_MAX_CHARS}"
        )
    if re.fullmatch(CONTAINER_NAME_PATTERN, name) is None:
        raise ValueError(f"{name!r} is not a Docker container name ({CONTAINER_NAME_PATTERN})")
    return name


def parse_comment(comment: str) -> CommandComment:
    """The comment `drain_command` / `health_command` wrote; ValueError naming what is wrong otherwise."""
    words = comment.split()
    if len(words) != 4 or words[0] != COMMENT_PREFIX:
        raise ValueError(f"comment {comment!r} is not `{COMMENT_PREFIX} <purpose> <container> <seconds>`")
    _, purpose, container, seconds = words
    if purpose not in set(Purpose):
        raise ValueError(f"comment {comment!r}: purpose must be one of {sorted(Purpose)}, not {purpose!r}")
    if not seconds.isdigit():
        raise ValueError(f"comment {comment!r}: seconds must be a whole number, not {seconds!r}")
    return CommandComment(purpose=Purpose(purpose), container=container, seconds=int(seconds))


#: The drain scripts' first test and last lines.
_IF_NO_CONTAINER = 'if ! docker inspect "$c" >/dev/null 2>&1; then echo "no container $c: nothing to drain"; exit 0; fi'
_REPORT_EXIT = (
    "code=$(docker inspect --format '{{.State.ExitCode}}' \"$c\")",
    f'echo "{EXIT_PREFIX}$code"',
    f'docker logs --tail {LOG_TAIL_LINES} "$c" 2>&1',
    '[ "$code" = 0 ]',
)


def drain_command(container: str, seconds: float) -> CommandRequest:
    """`docker stop` for a drain window of `seconds`: SIGTERM, the worker drains, SIGKILL only after.

    The worker lets its jobs run for the window and releases what still runs at its end; Docker's
    SIGKILL comes the release margin later (`stop_timeout_seconds`, queue_scaler/lifecycle/domain/deadlines.py).
    The worker exits 0 when it drained; any other exit code (137: killed) fails the command, so a
    drain cut short is reported as failed, with the worker's last log lines. An instance without
    the container has nothing to drain.
    """
    window = int(seconds)
    return CommandRequest(
        comment=_comment(Purpose.DRAIN, container, window),
        script=[
            f"c={container}",
            _IF_NO_CONTAINER,
            # docker stop prints the container's name: kept off stdout, whose first line is the answer.
            f'docker stop --time {stop_timeout_seconds(window)} "$c" >/dev/null',
            *_REPORT_EXIT,
        ],
        # docker stop returns by its timeout (then SIGKILL); a minute covers the rest.
        execution_timeout_seconds=stop_timeout_seconds(window) + 60,
    )


def spot_drain_command(container: str, ends_at: float, now: float) -> CommandRequest:
    """The drain for a Spot interruption warning: the worker learns when the instance goes, then SIGTERM.

    `ends_at` is the epoch second EC2 reclaims the instance (the warning's time + 2 minutes). The
    script writes it into the stop-notice file, then stops the container with the seconds left as
    its timeout: the worker releases at once every job that cannot finish the release margin before
    `ends_at`, lets the others finish, and releases what still runs at that point
    (queue_scaler/lifecycle/domain/deadlines.py). The comment carries the seconds left when it was sent.
    """
    deadline = int(ends_at)
    return CommandRequest(
        comment=_comment(Purpose.SPOT, container, max(0, int(ends_at - now))),
        script=[
            f"c={container}",
            _IF_NO_CONTAINER,
            f"ends={deadline}",
            # Written whole, then renamed: the worker never reads half a line. Without it (an instance
            # started before the notice existed) the worker still drains, on its own window.
            f"mkdir -p -m 755 {STOP_NOTICE_DIR}"
            f' && printf "%s\\n" "$ends" >{STOP_NOTICE_FILE}.tmp && chmod 644 {STOP_NOTICE_FILE}.tmp'
            f" && mv -f {STOP_NOTICE_FILE}.tmp {STOP_NOTICE_FILE}"
            ' || echo "stop notice not written" >&2',
            'left=$(( ends - $(date +%s) )); [ "$left" -gt 0 ] || left=0',
            'docker stop --time "$left" "$c" >/dev/null',
            *_REPORT_EXIT,
        ],
        execution_timeout_seconds=max(0, int(ends_at - now)) + 60,
    )


def health_command(container: str, wait_seconds: float) -> CommandRequest:
    """Poll the container's docker health every 5 s until healthy or `wait_seconds` pass.

    Prints `health=<status>` first (`missing` when there is no such container, the container's state
    when its image has no HEALTHCHECK), then, when not healthy, its last log lines.
    """
    wait = max(0, int(wait_seconds))
    return CommandRequest(
        comment=_comment(Purpose.HEALTH, container, wait),
        script=[
            f"c={container}",
            f"end=$(( $(date +%s) + {wait} ))",
            "while :; do",
            "  f='{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}'",
            '  s=$(docker inspect --format "$f" "$c" 2>/dev/null || echo missing)',
            f'  [ "$s" = {HEALTHY} ] && break',
            '  [ "$(date +%s)" -ge "$end" ] && break',
            "  sleep 5",
            "done",
            f'echo "{HEALTH_PREFIX}$s"',
            f'[ "$s" = {HEALTHY} ] || docker logs --tail {LOG_TAIL_LINES} "$c" 2>&1',
        ],
        execution_timeout_seconds=wait + 60,
    )


#: The sweep's second line: how often Docker restarted the container (its restart policy).
RESTARTS_PREFIX = "restarts="
#: Docker states of a worker that serves nothing: its health check failed, or the container is gone.
FAILED_HEALTH = frozenset({"unhealthy", "missing", "exited", "dead"})
#: Restarts after which a container that is not healthy now is crash-looping, not starting.
CRASH_LOOP_RESTARTS = 3


def sweep_command(container: str) -> CommandRequest:
    """The worker's docker health and restart count, at once (no wait), and its last lines when not healthy."""
    return CommandRequest(
        comment=_comment(Purpose.SWEEP, container, 0),
        script=[
            f"c={container}",
            "f='{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}} {{.RestartCount}}'",
            's=$(docker inspect --format "$f" "$c" 2>/dev/null || echo "missing 0")',
            f'echo "{HEALTH_PREFIX}${{s% *}}"',
            f'echo "{RESTARTS_PREFIX}${{s#* }}"',
            f'[ "${{s% *}}" = {HEALTHY} ] || docker logs --tail {LOG_TAIL_LINES} "$c" 2>&1',
        ],
        execution_timeout_seconds=60,
    )


def worker_failed(output: str) -> str | None:
    """Why a sweep's answer shows a worker that serves nothing, or None (healthy, or still starting)."""
    health = health_of(output)
    restarts = next(
        (
            int(line.removeprefix(RESTARTS_PREFIX))
            for line in output.splitlines()
            if line.startswith(RESTARTS_PREFIX) and line.removeprefix(RESTARTS_PREFIX).isdigit()
        ),
        0,
    )
    if health == HEALTHY:
        return None
    if health in FAILED_HEALTH:
        return f"worker {health}"
    if restarts >= CRASH_LOOP_RESTARTS:
        return f"worker {health} after {restarts} restarts (crash loop)"
    return None


def drain_output(exit_code: int, tail: str) -> str:
    """What the drain script prints once the container has exited."""
    return f"{EXIT_PREFIX}{exit_code}\n{tail}"


def health_output(status: str, tail: str = "") -> str:
    """What the health script prints: the status, then the log tail when not healthy."""
    return f"{HEALTH_PREFIX}{status}" if status == HEALTHY else f"{HEALTH_PREFIX}{status}\n{tail}"


def health_of(output: str) -> str:
    """The docker health a check printed, or `unknown` when it printed none."""
    for line in output.splitlines():
        if line.startswith(HEALTH_PREFIX):
            return line.removeprefix(HEALTH_PREFIX).strip() or "unknown"
    return "unknown"


def kept_output(output: str, limit: int) -> str:
    """At most `limit` characters of a command's output, to keep with its action.

    Its answer line (`health=...` or `exit=...`, printed first) and as much of its end as fits: the
    answer is what later decisions read, the last lines say why the worker failed. SSM itself hands
    over only the first 24,000 characters of stdout and 8,000 of stderr (GetCommandInvocation).
    """
    if len(output) <= limit:
        return output
    answer, _, _ = output.partition("\n")
    if not answer.startswith((HEALTH_PREFIX, EXIT_PREFIX)) or 2 * len(answer) >= limit:  # half the limit or more
        return output[-limit:]
    return f"{answer}\n{output[-(limit - len(answer) - 1) :]}"


def log_tail(output: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a command's output, for the log line of a failure."""
    return output.splitlines()[-lines:]
