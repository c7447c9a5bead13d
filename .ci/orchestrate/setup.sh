#!/usr/bin/env bash
# Builds the python3.11 virtualenv that runs the Dagster definitions of orchestrate/ (Dagster
# itself, and its Celery and Kubernetes executors). Idempotent and non-interactive.
#
# The venv lives in a cache that survives between runs on the same machine:
#   ${TAP_CEILOMETER_CACHE:-$HOME/.cache/tap-ceilometer}/orchestrate/dagster-<hash>
# where <hash> is the first 16 hex digits of the sha256 of orchestrate/requirements.txt
# (tests/support/orchestrate.py finds the venv by the same rule). A venv whose requirements did
# not change and that still imports dagster is reused; anything else is rebuilt.
#
# Usage: bash .ci/orchestrate/setup.sh        (prints the venv path at the end)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
cache="${TAP_CEILOMETER_CACHE:-$home/.cache/tap-ceilometer}/orchestrate"
python="${TAP_CEILOMETER_PYTHON311:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
requirements="$repo/orchestrate/requirements.txt"
hash=$(sha256sum "$requirements" | cut -c1-16)
venv="$cache/dagster-$hash"
start=$SECONDS
log() { printf '[orchestrate setup %3ds] %s\n' "$((SECONDS - start))" "$*" >&2; }

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # two setups at once build one venv
if [[ -f "$venv/.complete" ]] && "$venv/bin/python" -c 'import dagster' >/dev/null 2>&1; then
    log "dagster venv present: $venv"
else
    log "building $venv (Dagster and its executors, from the package index)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    "$venv/bin/python" -c 'import dagster, dagster_celery, dagster_k8s'
    touch "$venv/.complete"
    log "done"
fi
echo "$venv"
