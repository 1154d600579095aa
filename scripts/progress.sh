#!/usr/bin/env bash
# Usage: scripts/progress.sh LABEL COMMAND [ARG...]
# Runs COMMAND in the foreground (Ctrl-C stops it as usual), saying what it does: LABEL first, then
# a line every PROGRESS_SECONDS (15) while it runs, then how long it took. A quiet step (pip --quiet
# installs for minutes) thus never leaves the terminal silent. Exits with COMMAND's status.
set -uo pipefail
label=$1
shift
interval=${PROGRESS_SECONDS:-15}
start=$(date +%s)
echo "$label ..."
# The ticker stops with this script: killed on exit, and it checks that its parent still runs. Its
# sleep holds no output open, so a pipe reading this script ends when the script does.
(
	while sleep "$interval" >/dev/null 2>&1 && kill -0 $$ 2>/dev/null; do
		echo "$label: still running ($(($(date +%s) - start)) s)"
	done
) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null' EXIT
"$@"
status=$?
if [ "$status" -eq 0 ]; then
	echo "$label: done in $(($(date +%s) - start)) s"
else
	echo "$label: FAILED (exit $status) after $(($(date +%s) - start)) s" >&2
fi
exit "$status"
