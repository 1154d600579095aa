"""workers/userdata.sh under bash, with PATH reduced to the tools the default image ships.

The default WorkerAmi is the standard Amazon Linux 2023 AMI. Its tools are taken from the host
(symlinked into a bin directory that is the whole PATH), except where using them would leave the
machine: `aws` (every call is an API call), `dnf` (downloads from the package repository; installing
`docker` puts the stand-in docker below on PATH, as the real package would) and `systemctl` (no init
system runs a test). The docker stand-in answers for the daemon and the registry. The stubs record
every call; nothing leaves the machine.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS

SCRIPT = Path(__file__).resolve().parents[2] / "workers" / "userdata.sh"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/queue-worker:1.4.0"
SECRET = "s3cr3t-value"

pytestmark = pytest.mark.timeout(60)

# The commands of the standard Amazon Linux 2023 AMI the script and the stubs use, by package, from
# the AL2023 User Guide's package comparison of its images
# (https://docs.aws.amazon.com/linux/al2023/ug/image-comparison.html): bash, coreutils, sed, gawk,
# grep, awscli-2, dnf and systemd are in the standard AMI; docker is in none of the AL2023 AMIs, and
# awscli-2 is not in the minimal image the ECS-optimized AMI is built from.
AL2023_STANDARD = {
    "bash": ["bash"],
    "coreutils": ["basename", "cat", "cp", "cut", "date", "mkdir", "paste", "rm", "sleep", "tr", "uname"],
    "sed": ["sed"],
    "gawk": ["awk"],
    "grep": ["grep"],
}
NETWORK_STUBS = {"awscli-2": "aws", "dnf": "dnf", "systemd": "systemctl"}

DNF_STUB = r"""#!/usr/bin/env bash
# Stub dnf: installing a package downloads it; here it puts the package's stand-in on PATH.
printf 'dnf %s\n' "$*" >>"$STUB_DIR/calls"
[ -f "$STUB_DIR/dnf_fail" ] && { echo "Error: Failed to download metadata for repo 'amazonlinux'" >&2; exit 1; }
for package in "$@"; do
  case $package in
    docker) cp "$STUB_DIR/docker.package" "$STUB_BIN/docker" ;;
    awscli-2) cp "$STUB_DIR/aws.package" "$STUB_BIN/aws" ;;
  esac
done
"""

SYSTEMCTL_STUB = r"""#!/usr/bin/env bash
printf 'systemctl %s\n' "$*" >>"$STUB_DIR/calls"
: >"$STUB_DIR/docker_started"
"""

AWS_STUB = r"""#!/usr/bin/env bash
# Stub aws CLI: answers from files in $STUB_DIR, records its arguments.
printf 'aws %s\n' "$*" >>"$STUB_DIR/calls"
args=" $* "
case $args in
  *" ssm get-parameters-by-path "*)
    if [ -f "$STUB_DIR/ssm_fail" ]; then echo "AccessDeniedException: not authorized" >&2; exit 254; fi
    printf '/qs/test/video/env/QUEUE_URLS\thttp://sqs.local/1/video-pro,http://sqs.local/1/video-free\n'
    printf '/qs/test/video/env/JOB_HANDLER\tqueue_worker.examples:sleep_job\n'
    printf '/qs/test/video/env/API_TOKEN\t%s\n' "$STUB_SECRET"
    ;;
  *" ecr get-login-password "*) echo "ecr-token" ;;
  *" logs create-log-stream "*) : ;;
  *" logs put-log-events "*)
    file=$(printf '%s\n' "$@" | sed -n 's|^file://||p')
    cp "$file" "$STUB_DIR/shipped.json"
    ;;
  *) echo "stub aws: unexpected $*" >&2; exit 2 ;;
esac
"""

DOCKER_STUB = r"""#!/usr/bin/env bash
# Stub docker: `run` fails the first $(cat run_failures) times; records arguments and the env file.
printf 'docker %s\n' "$*" >>"$STUB_DIR/calls"
case $1 in
  info) [ -f "$STUB_DIR/docker_started" ] || { echo "Cannot connect to the Docker daemon" >&2; exit 1; } ;;
  rm) : ;;
  login) cat >"$STUB_DIR/login_password" ;;
  run)
    runs=$(($(cat "$STUB_DIR/runs" 2>/dev/null || echo 0) + 1))
    echo "$runs" >"$STUB_DIR/runs"
    prev=""
    for arg in "$@"; do
      if [ "$prev" = "--env-file" ]; then cp "$arg" "$STUB_DIR/env_file_seen"; fi
      prev=$arg
    done
    if [ "$runs" -le "$(cat "$STUB_DIR/run_failures")" ]; then
      echo "docker: Error response from daemon: pull access denied (try $runs)" >&2
      exit 125
    fi
    echo "0123456789ab"
    ;;
  ps) printf 'CONTAINER ID   IMAGE   STATUS\n0123456789ab   queue-worker   Up 1 second\n' ;;
  *) echo "stub docker: unexpected $*" >&2; exit 2 ;;
esac
"""


@dataclass
class Run:
    code: int
    stderr: str
    calls: list[str]
    stub_dir: Path
    work_dir: Path

    def shipped(self) -> list[dict[str, object]]:
        events: list[dict[str, object]] = json.loads((self.stub_dir / "shipped.json").read_text())
        return events

    def docker_runs(self) -> list[str]:
        return [c for c in self.calls if c.startswith("docker run ")]


@pytest.fixture
def run_userdata(tmp_path: Path) -> Callable[..., Run]:
    def run(
        run_failures: int = 0,
        ssm_fails: bool = False,
        without: tuple[str, ...] = (),
        dnf_fails: bool = False,
        **overrides: str | None,
    ) -> Run:
        """Run the script; `without` leaves those commands off the image (as another image would)."""
        stub_dir = tmp_path / "stubs"
        bin_dir = tmp_path / "bin"
        stub_dir.mkdir(exist_ok=True)
        bin_dir.mkdir(exist_ok=True)
        for tool in (t for tools in AL2023_STANDARD.values() for t in tools):
            host = shutil.which(tool)
            assert host is not None, f"the host lacks {tool}, which the image ships"
            if tool not in without:
                (bin_dir / tool).symlink_to(host)
        packages = {"aws": AWS_STUB, "docker": DOCKER_STUB}
        for name, text in (*packages.items(), ("dnf", DNF_STUB), ("systemctl", SYSTEMCTL_STUB)):
            (stub_dir / f"{name}.package").write_text(text)
            (stub_dir / f"{name}.package").chmod(0o755)
        for tool in NETWORK_STUBS.values():
            if tool not in without:
                shutil.copy(stub_dir / f"{tool}.package", bin_dir / tool)
        (stub_dir / "run_failures").write_text(str(run_failures))
        if ssm_fails:
            (stub_dir / "ssm_fail").touch()
        if dnf_fails:
            (stub_dir / "dnf_fail").touch()
        work_dir = tmp_path / "work"
        env = {
            "PATH": str(bin_dir),
            "STUB_DIR": str(stub_dir),
            "STUB_BIN": str(bin_dir),
            "STUB_SECRET": SECRET,
            "QS_POOL": "video",
            "QS_IMAGE": IMAGE,
            "QS_ENV_PARAMETER_PATH": "/qs/test/video/env",
            "QS_DRAIN_SECONDS": "45",
            "QS_WORKER_SLOTS": "2",
            "QS_LOG_GROUP": "/queue-scaler/test/workers",
            "QS_GROUP_NAME": "queue-scaler-test-video",
            "AWS_REGION": "eu-west-1",
            "QS_WORK_DIR": str(work_dir),
            "QS_NOTICE_DIR": str(tmp_path / "notice"),
            "QS_RETRY_BASE_SECONDS": "0",
        }
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        done = subprocess.run(
            [str(bin_dir / "bash"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
        )
        calls_file = stub_dir / "calls"
        calls = calls_file.read_text().splitlines() if calls_file.exists() else []
        return Run(done.returncode, done.stderr, calls, stub_dir, work_dir)

    return run


def test_given_working_services_when_run_then_the_container_starts_with_ssm_environment_and_drain_timeout(
    run_userdata: Callable[..., Run],
) -> None:
    run = run_userdata()
    assert run.code == 0, run.stderr
    # The standard AL2023 AMI has the AWS CLI but no Docker: installed, then its service started.
    assert "dnf install --assumeyes --quiet docker" in run.calls
    assert not any("awscli-2" in c for c in run.calls)
    assert "systemctl enable --now docker.service" in run.calls

    ssm = [c for c in run.calls if " ssm get-parameters-by-path " in c]
    assert len(ssm) == 1
    assert "--path /qs/test/video/env --with-decryption" in ssm[0]
    assert "--region eu-west-1" in ssm[0]
    assert (run.stub_dir / "login_password").read_text().strip() == "ecr-token"
    assert "docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com" in run.calls

    [docker_run] = run.docker_runs()
    notice = run.stub_dir.parent / "notice"
    for expected in (
        # Docker's SIGKILL comes the release margin after the drain window (queue_scaler/lifecycle/domain/deadlines.py).
        f"--stop-timeout {45 + RELEASE_MARGIN_SECONDS}",
        f"--env STOP_TIMEOUT_SECONDS={45 + RELEASE_MARGIN_SECONDS}",
        f"--volume {notice}:{notice}:ro --env STOP_NOTICE_FILE={notice}/deadline",
        "--stop-signal SIGTERM",
        "--env DRAIN_SECONDS=45",
        "--env POOL_NAME=video",
        "--env WORKER_SLOTS=2",
        "--env SCALE_IN_PROTECTION=true --env AUTOSCALING_GROUP_NAME=queue-scaler-test-video",
        "--log-driver awslogs",
        "--log-opt awslogs-group=/queue-scaler/test/workers",
        "--log-opt awslogs-region=eu-west-1",
    ):
        assert expected in docker_run
    assert docker_run.endswith(IMAGE)
    # The worker (uid 10001) reads the notice the Spot drain writes as root.
    assert notice.is_dir() and notice.stat().st_mode & 0o777 == 0o755
    env_lines = (run.stub_dir / "env_file_seen").read_text().splitlines()
    assert env_lines == [
        "QUEUE_URLS=http://sqs.local/1/video-pro,http://sqs.local/1/video-free",
        "JOB_HANDLER=queue_worker.examples:sleep_job",
        f"API_TOKEN={SECRET}",
    ]
    assert not (run.work_dir / "worker.env").exists(), "the secrets file is removed on exit"

    assert run.calls[-1].startswith("aws ")
    assert "logs put-log-events" in run.calls[-1]
    messages = [str(event["message"]) for event in run.shipped()]
    assert any("docker ps: CONTAINER ID" in m and "Up 1 second" in m for m in messages)
    assert "worker container queue-worker started for pool video" in messages[-1]
    assert any("API_TOKEN" in m for m in messages), "parameter names are logged"
    assert SECRET not in run.stderr + json.dumps(run.shipped()), "parameter values never are"
    assert all(isinstance(event["timestamp"], int) for event in run.shipped())


def test_given_docker_run_failing_twice_when_run_then_the_third_attempt_starts_it(
    run_userdata: Callable[..., Run],
) -> None:
    run = run_userdata(run_failures=2)
    assert run.code == 0, run.stderr
    assert len(run.docker_runs()) == 3
    assert sum(1 for c in run.calls if c.startswith("docker rm --force queue-worker")) == 3
    assert "attempt 1 of 3 failed: docker: Error response from daemon: pull access denied (try 1)" in run.stderr
    assert "attempt 2 of 3 failed" in run.stderr


def test_given_docker_run_always_failing_when_run_then_it_exits_1_with_a_clear_line_shipped(
    run_userdata: Callable[..., Run],
) -> None:
    run = run_userdata(run_failures=5)
    assert run.code == 1
    assert len(run.docker_runs()) == 3
    failure = [line for line in run.stderr.splitlines() if "FAILED" in line]
    assert len(failure) == 1
    assert re.search(
        r"ERROR: FAILED: docker run failed 3 times \(pool video, image .*queue-worker:1\.4\.0\)", failure[0]
    )
    assert "FAILED: docker run failed 3 times" in str(run.shipped()[-1]["message"])
    assert not any(c.startswith("docker ps") for c in run.calls)


def test_given_ssm_denied_when_run_then_no_container_and_the_reason_is_logged(
    run_userdata: Callable[..., Run],
) -> None:
    run = run_userdata(ssm_fails=True)
    assert run.code == 1
    assert sum(1 for c in run.calls if " ssm get-parameters-by-path " in c) == 3
    assert run.docker_runs() == []
    assert "AccessDeniedException" in run.stderr
    assert "FAILED: cannot read SSM parameters under /qs/test/video/env" in run.stderr


def test_given_missing_settings_when_run_then_it_names_them_and_touches_nothing(
    run_userdata: Callable[..., Run],
) -> None:
    run = run_userdata(QS_IMAGE=None, AWS_REGION="", QS_LOG_GROUP=None)
    assert run.code == 1
    assert "FAILED: missing settings: QS_IMAGE QS_LOG_GROUP AWS_REGION" in run.stderr
    assert run.calls == []


@pytest.mark.parametrize("slots", ["0", "02", "two", "-1"], ids=["zero", "leading zero", "a word", "negative"])
def test_given_worker_slots_not_a_whole_number_from_1_when_run_then_it_stops_naming_them(
    run_userdata: Callable[..., Run], slots: str
) -> None:
    run = run_userdata(QS_WORKER_SLOTS=slots)
    assert run.code == 1
    assert f"QS_WORKER_SLOTS must be a whole number of slots from 1, not '{slots}'" in run.stderr
    assert run.docker_runs() == []


def test_given_the_script_then_it_has_no_brace_expansion_that_fn_sub_would_resolve() -> None:
    assert "${" not in SCRIPT.read_text()


def test_given_an_image_without_the_aws_cli_when_run_then_it_is_installed_before_its_first_use(
    run_userdata: Callable[..., Run],
) -> None:
    # The minimal and ECS-optimized AL2023 images ship no AWS CLI.
    run = run_userdata(without=("aws",))
    assert run.code == 0, run.stderr
    install = run.calls.index("dnf install --assumeyes --quiet awscli-2")
    first_aws = next(i for i, c in enumerate(run.calls) if c.startswith("aws "))
    assert install < first_aws


def test_given_docker_missing_and_no_dnf_when_run_then_one_line_names_what_is_missing(
    run_userdata: Callable[..., Run],
) -> None:
    run = run_userdata(without=("dnf",))
    assert run.code == 1
    failure = [line for line in run.stderr.splitlines() if "FAILED" in line]
    assert len(failure) == 1
    assert "FAILED: docker is not installed and dnf is not available to install docker" in failure[0]
    assert "FAILED: docker is not installed" in str(run.shipped()[-1]["message"])


def test_given_the_package_repository_unreachable_when_run_then_it_stops_after_three_attempts(
    run_userdata: Callable[..., Run],
) -> None:
    run = run_userdata(dnf_fails=True)
    assert run.code == 1
    assert sum(1 for c in run.calls if c.startswith("dnf install")) == 3
    assert "FAILED: cannot install docker (for docker) with dnf" in run.stderr
    assert run.docker_runs() == []


@pytest.mark.parametrize("tool", ["sed", "awk", "date"])
def test_given_a_basic_tool_missing_when_run_then_it_stops_before_any_call_naming_the_tool(
    run_userdata: Callable[..., Run], tool: str
) -> None:
    run = run_userdata(without=(tool,))
    assert run.code == 1
    assert f"FAILED: required tool {tool} is not installed" in run.stderr
    assert run.calls == []
