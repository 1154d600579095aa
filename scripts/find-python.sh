#!/usr/bin/env bash
# Prints the path of a Python 3.12 interpreter: Lambda's python3.12 runtime is the target, so the
# project's environments are built with 3.12 (../shared/TOOLCHAIN.md). Exits 1 with a clear message
# when none is found.
set -euo pipefail

is_312() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' 2>/dev/null; }

for candidate in "${PYTHON312:-}" python3.12; do
  [ -n "$candidate" ] || continue
  if path=$(command -v "$candidate" 2>/dev/null) && is_312 "$path"; then
    echo "$path"; exit 0
  fi
done

if command -v pyenv >/dev/null 2>&1; then
  # Newest installed 3.12.x first.
  for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -t. -k3 -nr); do
    path="$(pyenv root)/versions/$version/bin/python3.12"
    if [ -x "$path" ] && is_312 "$path"; then
      echo "$path"; exit 0
    fi
  done
  # None installed yet: pyenv can build one (the registry of Python sources must be reachable).
  if [ "${QS_PYENV_INSTALL:-1}" = 1 ] && pyenv install --skip-existing 3.12 >&2; then
    version=$(pyenv versions --bare | grep -E '^3\.12\.[0-9]+$' | sort -t. -k3 -nr | head -n1)
    path="$(pyenv root)/versions/$version/bin/python3.12"
    if [ -x "$path" ] && is_312 "$path"; then echo "$path"; exit 0; fi
  fi
fi

echo "error: Python 3.12 not found. Lambda's python3.12 runtime is the target: install it" >&2
echo "       (e.g. 'pyenv install 3.12') or set PYTHON312=/path/to/python3.12." >&2
exit 1
