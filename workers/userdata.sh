#!/usr/bin/env bash
# Launch-template user data of a queue-scaler worker instance: read the worker's environment from
# SSM Parameter Store, log in to ECR, start the worker container, and ship this script's log and
# the container's log to CloudWatch Logs.
#
# Written for the standard Amazon Linux 2023 AMI (the template's default WorkerAmi), which ships
# the AWS CLI v2 and the SSM Agent but not Docker: Docker is installed from the distribution's own
# repository (dnf) when missing, and so is the AWS CLI on an image without it (the minimal or
# ECS-optimized AL2023 images). Every other tool is checked before anything runs; a missing one
# stops the script with one line naming it.
#
# Settings, all from environment variables (the launch template sets them before this script):
#   QS_POOL                pool name: the log stream prefix, and POOL_NAME in the container
#   QS_IMAGE               full ECR image URI, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/queue-worker:1.4.0
#   QS_ENV_PARAMETER_PATH  SSM path, e.g. /queue-scaler/prod/video/env; each parameter directly under it
#                          becomes one container variable named after the parameter's last path segment
#                          (SecureString values decrypted; values must be single-line). It must provide
#                          at least QUEUE_URLS and JOB_HANDLER.
#   QS_DRAIN_SECONDS       drain window: DRAIN_SECONDS in the container (how long its jobs may run after
#                          SIGTERM); the container's stop timeout (SIGKILL) is that plus the release margin
#   QS_WORKER_SLOTS        jobs one worker runs at once: WORKER_SLOTS in the container (the scaler's
#                          slots_per_instance for this pool is the same template parameter)
#   QS_LOG_GROUP           CloudWatch Logs group (existing) for the container's and this script's logs
#   QS_GROUP_NAME          the instance's Auto Scaling group: the worker keeps scale-in protection on in it
#                          while it holds a job (SCALE_IN_PROTECTION; its instance id comes from IMDS)
#   AWS_REGION             region of SSM, ECR and CloudWatch Logs
# Optional: QS_WORK_DIR (default /run/queue-worker, a tmpfs: the environment file holds secrets and
# is deleted on exit), QS_RETRY_BASE_SECONDS (default 5: retries wait 5, then 10 seconds),
# QS_NOTICE_DIR (default /run/queue-worker-notice, where the Spot drain writes; for tests only).
#
# The template embeds this file with Fn::Sub, which reads a dollar sign followed by a brace as its
# own variable: the script therefore only uses the plain $VAR form, and no `set -u` (whose safe
# defaults would need the brace form); each setting is checked explicitly instead.
set -eo pipefail
umask 077

# Tools every AL2023 image has (coreutils, sed, gawk, grep): without one, stop before anything else.
for tool in awk basename cut date mkdir paste rm sed sleep tr uname grep; do
  command -v "$tool" >/dev/null 2>&1 || {
    printf 'queue-worker-userdata ERROR: FAILED: required tool %s is not installed; the worker is not running\n' "$tool" >&2
    exit 1
  }
done

work_dir=$QS_WORK_DIR
[ -n "$work_dir" ] || work_dir=/run/queue-worker
retry_base=$QS_RETRY_BASE_SECONDS
[ -n "$retry_base" ] || retry_base=5
container=queue-worker
# The worker releases what still runs at the end of its drain window; Docker's SIGKILL comes this much
# later (queue_scaler/lifecycle/domain/deadlines.py RELEASE_MARGIN_SECONDS; tests/contract checks the two agree,
# and the worker refuses to start on a stop timeout that leaves less).
release_margin=15
# The Spot drain writes the instance's end into this directory (queue_scaler/lifecycle/domain/commands.py
# STOP_NOTICE_DIR); the container reads it, read-only, at the same path. Empty at every start.
notice_dir=$QS_NOTICE_DIR
[ -n "$notice_dir" ] || notice_dir=/run/queue-worker-notice
mkdir -p "$work_dir"
log_file=$work_dir/userdata.log
events_file=$work_dir/userdata.events
env_file=$work_dir/worker.env
: >"$events_file"
stream_prefix="$QS_POOL/$(uname -n)"
# Bounded AWS CLI calls: standard retry mode, 3 attempts each, connect and read timeouts.
export AWS_RETRY_MODE=standard AWS_MAX_ATTEMPTS=3
awscli() {
  aws --region "$AWS_REGION" --cli-connect-timeout 10 --cli-read-timeout 30 "$@"
}

json_escape() {
  # Escape a string for a JSON value: backslash, quote, tab, control characters, newlines as \n.
  printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037\r' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' |
    awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }'
}

log() {
  # One line to stderr (cloud-init's output log), to the log file, and to the CloudWatch batch.
  local level=$1
  shift
  local line
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ) queue-worker-userdata $level: $*"
  printf '%s\n' "$line" >&2
  printf '%s\n' "$line" >>"$log_file"
  printf '{"timestamp": %s, "message": "%s"}\n' "$(date +%s%3N)" "$(json_escape "$line")" >>"$events_file"
}

fail() {
  log ERROR "FAILED: $* (pool $QS_POOL, image $QS_IMAGE); the worker is not running"
  exit 1
}

ship_logs() {
  # On every exit: delete the secrets, then send this script's log lines to CloudWatch Logs.
  local status=$?
  rm -f "$env_file"
  if [ -n "$QS_LOG_GROUP" ] && [ -s "$events_file" ]; then
    { printf '['; paste -sd, "$events_file"; printf ']'; } >"$work_dir/userdata.json"
    awscli logs create-log-stream --log-group-name "$QS_LOG_GROUP" \
      --log-stream-name "$stream_prefix/userdata" >/dev/null 2>&1 || true
    if ! awscli logs put-log-events --log-group-name "$QS_LOG_GROUP" \
      --log-stream-name "$stream_prefix/userdata" --log-events "file://$work_dir/userdata.json" >/dev/null; then
      printf 'queue-worker-userdata WARN: could not ship the log to %s; see %s\n' "$QS_LOG_GROUP" "$log_file" >&2
    fi
  fi
  exit "$status"
}
trap ship_logs EXIT

retry() {
  # retry DESCRIPTION COMMAND...: up to 3 attempts with doubling waits. The command's output is
  # kept in $retry_output and logged only on failure (it may hold secrets on success).
  local what=$1
  shift
  local attempt=1
  while true; do
    if retry_output=$("$@" 2>&1); then
      log INFO "$what: ok (attempt $attempt)"
      return 0
    fi
    log WARN "$what: attempt $attempt of 3 failed: $retry_output"
    if [ "$attempt" -ge 3 ]; then
      return 1
    fi
    sleep $((retry_base * (1 << (attempt - 1))))
    attempt=$((attempt + 1))
  done
}


install_package() {
  # install_package TOOL PACKAGE: install PACKAGE with dnf unless TOOL is already on PATH.
  command -v "$1" >/dev/null 2>&1 && return 0
  command -v dnf >/dev/null 2>&1 || fail "$1 is not installed and dnf is not available to install $2"
  retry "dnf install $2" dnf install --assumeyes --quiet "$2" || fail "cannot install $2 (for $1) with dnf"
  command -v "$1" >/dev/null 2>&1 || fail "dnf installed $2 but $1 is still not on PATH"
}

missing=""
[ -n "$QS_POOL" ] || missing="$missing QS_POOL"
[ -n "$QS_IMAGE" ] || missing="$missing QS_IMAGE"
[ -n "$QS_ENV_PARAMETER_PATH" ] || missing="$missing QS_ENV_PARAMETER_PATH"
[ -n "$QS_DRAIN_SECONDS" ] || missing="$missing QS_DRAIN_SECONDS"
[ -n "$QS_WORKER_SLOTS" ] || missing="$missing QS_WORKER_SLOTS"
[ -n "$QS_LOG_GROUP" ] || missing="$missing QS_LOG_GROUP"
[ -n "$QS_GROUP_NAME" ] || missing="$missing QS_GROUP_NAME"
[ -n "$AWS_REGION" ] || missing="$missing AWS_REGION"
[ -z "$missing" ] || fail "missing settings:$missing"
case $QS_DRAIN_SECONDS in
  '' | *[!0-9]*) fail "QS_DRAIN_SECONDS must be a whole number of seconds, not '$QS_DRAIN_SECONDS'" ;;
esac
case $QS_WORKER_SLOTS in
  '' | *[!0-9]* | 0*) fail "QS_WORKER_SLOTS must be a whole number of slots from 1, not '$QS_WORKER_SLOTS'" ;;
esac
stop_timeout=$((QS_DRAIN_SECONDS + release_margin))
log INFO "starting pool $QS_POOL: image $QS_IMAGE, drain $QS_DRAIN_SECONDS s (SIGKILL at $stop_timeout s), environment from $QS_ENV_PARAMETER_PATH"

install_package aws awscli-2
install_package docker docker
if ! docker info >/dev/null 2>&1; then
  command -v systemctl >/dev/null 2>&1 || fail "the docker daemon is not running and systemctl is not available to start it"
  retry "start the docker service" systemctl enable --now docker.service || fail "cannot start the docker service"
fi

fetch_parameters() {
  awscli ssm get-parameters-by-path --path "$QS_ENV_PARAMETER_PATH" --with-decryption \
    --query 'Parameters[].[Name,Value]' --output text
}
retry "read SSM parameters under $QS_ENV_PARAMETER_PATH" fetch_parameters ||
  fail "cannot read SSM parameters under $QS_ENV_PARAMETER_PATH"
: >"$env_file"
names=""
while IFS=$'\t' read -r name value; do
  [ -n "$name" ] || continue
  key=$(basename "$name")
  if ! printf '%s' "$key" | grep -Eq '^[A-Za-z_][A-Za-z0-9_]*$'; then
    fail "SSM parameter $name: '$key' is not a valid environment variable name"
  fi
  printf '%s=%s\n' "$key" "$value" >>"$env_file"
  names="$names $key"
done <<<"$retry_output"
retry_output=""
[ -n "$names" ] || fail "no SSM parameters under $QS_ENV_PARAMETER_PATH"
# Names only: the values may be secrets.
log INFO "container environment from SSM:$names"

registry=$(printf '%s' "$QS_IMAGE" | cut -d/ -f1)
ecr_login() {
  awscli ecr get-login-password | docker login --username AWS --password-stdin "$registry"
}
retry "docker daemon ready" docker info || fail "the docker daemon does not answer"
retry "ECR login to $registry" ecr_login || fail "cannot log in to ECR registry $registry"

start_container() {
  # A failed attempt may leave a created container behind; its name must be free for the next one.
  docker rm --force "$container" >/dev/null 2>&1 || true
  # Only the deepest folder is ever made (its parent, /run or the test's, exists), so -m applies to it.
  # shellcheck disable=SC2174
  mkdir -p -m 755 "$notice_dir" && rm -f "$notice_dir/deadline"
  # --env after --env-file wins: the drain window, the slots and the pool are the template's, not SSM's
  # (the scaler sizes the pool for exactly these slots). WARM_POOL_STANDBY: on an instance launched into
  # a warm pool, the worker receives nothing until the instance leaves it (queue_worker/warm.py).
  docker run --detach --name "$container" --restart unless-stopped \
    --stop-signal SIGTERM --stop-timeout "$stop_timeout" \
    --env-file "$env_file" --env "DRAIN_SECONDS=$QS_DRAIN_SECONDS" --env "POOL_NAME=$QS_POOL" \
    --env "STOP_TIMEOUT_SECONDS=$stop_timeout" \
    --volume "$notice_dir:$notice_dir:ro" --env "STOP_NOTICE_FILE=$notice_dir/deadline" \
    --env "WORKER_SLOTS=$QS_WORKER_SLOTS" \
    --env "AWS_REGION=$AWS_REGION" \
    --env SCALE_IN_PROTECTION=true --env "AUTOSCALING_GROUP_NAME=$QS_GROUP_NAME" \
    --env WARM_POOL_STANDBY=true \
    --log-driver awslogs --log-opt "awslogs-region=$AWS_REGION" --log-opt "awslogs-group=$QS_LOG_GROUP" \
    --log-opt "awslogs-stream=$stream_prefix/worker" --log-opt mode=non-blocking \
    --log-opt max-buffer-size=4m \
    "$QS_IMAGE"
}
retry "docker run $QS_IMAGE" start_container || fail "docker run failed 3 times"

log INFO "docker ps: $(docker ps --all --filter "name=$container" 2>&1)"
log INFO "worker container $container started for pool $QS_POOL"
