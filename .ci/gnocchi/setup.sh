#!/usr/bin/env bash
# Builds the python3.11 virtualenv of the Gnocchi tier: the real Gnocchi 4.7.1 (API, metricd,
# gnocchi-upgrade) with its PostgreSQL indexer driver and keystonemiddleware. Idempotent and
# non-interactive; safe on a fresh machine. Same rules as .ci/conformance/setup.sh.
#
# The venv lives in a cache that survives between runs on the same machine:
#   ${TAP_CEILOMETER_CACHE:-$HOME/.cache/tap-ceilometer}/gnocchi/gnocchi-<hash>
# where <hash> is the first 16 hex digits of the sha256 of .ci/gnocchi/requirements-gnocchi.txt
# (tests/gnocchi/stack.py finds the venv by the same rule). A venv whose requirements did not
# change and whose python still imports the server is reused as it is; anything else is rebuilt.
#
# Usage: bash .ci/gnocchi/setup.sh        (prints the venv path at the end)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
cache="${TAP_CEILOMETER_CACHE:-$home/.cache/tap-ceilometer}/gnocchi"
python="${TAP_CEILOMETER_PYTHON311:-python3.11}"
start=$SECONDS

log() { printf '[gnocchi setup %3ds] %s\n' "$((SECONDS - start))" "$*" >&2; }

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# System packages, only where missing: a python3.11 with venv and headers, a C compiler and
# libpq's headers and pg_config (psycopg2 is built from its source distribution).
if ! command -v "$python" >/dev/null 2>&1; then
    apt_install python3.11 python3.11-venv python3.11-dev
    python=python3.11
fi
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    apt_install python3.11-venv
fi
if ! "$python" -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    apt_install python3.11-dev
fi
if ! command -v gcc >/dev/null 2>&1; then
    apt_install gcc libc6-dev
fi
command -v pg_config >/dev/null 2>&1 || apt_install libpq-dev
command -v flock >/dev/null 2>&1 || apt_install util-linux

mkdir -p "$cache"

# wait_for_exit PID SECONDS: true once PID has exited, false if it still runs after SECONDS.
wait_for_exit() {
    local pid="$1" seconds="$2"
    for _ in $(seq 1 "$seconds"); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 1
    done
    ! kill -0 "$pid" 2>/dev/null
}

name=gnocchi
req="$here/requirements-$name.txt"
check='import gnocchi.cli.api, gnocchi.cli.metricd, gnocchi.rest.app, gnocchi.indexer.sqlalchemy, gnocchi.storage.file, gnocchi.incoming.file, keystonemiddleware.auth_token, psycopg2, werkzeug.serving'
hash="$(sha256sum "$req" | cut -c1-16)"
venv="$cache/$name-$hash"
marker="$venv/.tap-ceilometer-complete"
(
    # One builder at a time per venv: two checkouts on one machine may run setup together.
    flock 9
    if [ -f "$marker" ] && "$venv/bin/python" -W ignore -c "$check" >/dev/null 2>&1; then
        log "$name: cached venv is current ($venv)"
        exit 0
    fi
    log "$name: building $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # pip's output goes to a log; it is shown only if the install fails. Meanwhile a line every
    # 20 s says what is going on (the first build takes about half a minute to a minute).
    "$venv/bin/python" -m pip install --no-deps --no-input --disable-pip-version-check \
        -r "$req" >"$venv.pip.log" 2>&1 &
    pip_pid=$!
    while ! wait_for_exit "$pip_pid" 20; do
        log "$name: still installing with pip, $(grep -c '^Collecting\|^Processing' "$venv.pip.log" 2>/dev/null || true) of $(grep -c "==" "$req") pinned packages collected (the real Gnocchi server)"
    done
    if ! wait "$pip_pid"; then
        grep -v 'is ignored: it is neither a file nor a directory' "$venv.pip.log" | tail -40 >&2
        echo "gnocchi setup: pip install failed (full log: $venv.pip.log)" >&2
        exit 1
    fi
    if ! "$venv/bin/python" -W ignore -c "$check" >"$venv.check.log" 2>&1; then
        cat "$venv.check.log" >&2
        echo "gnocchi setup: the venv was built but does not import the Gnocchi server" >&2
        exit 1
    fi
    "$python" --version >"$marker"
    log "$name: done"
) 9>"$cache/.$name.lock"

log "ready in $((SECONDS - start)) s"
echo "gnocchi venv: $venv"
