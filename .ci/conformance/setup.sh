#!/usr/bin/env bash
# Builds the two python3.11 virtualenvs of the conformance tier: the real Keystone 30.0.0 and the
# real Ceilometer 9.0.7 (API v2). Idempotent and non-interactive; safe on a fresh machine.
#
# Each venv lives in a cache that survives between runs on the same machine:
#   ${TAP_CEILOMETER_CACHE:-$HOME/.cache/tap-ceilometer}/conformance/<name>-<hash>
# where <hash> is the first 16 hex digits of the sha256 of .ci/conformance/requirements-<name>.txt
# (tests/conformance/stack.py finds the venvs by the same rule). A venv whose requirements did not
# change and whose python still imports the server is reused as it is; anything else is rebuilt.
#
# Usage: bash .ci/conformance/setup.sh        (prints the two venv paths at the end)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
cache="${TAP_CEILOMETER_CACHE:-$home/.cache/tap-ceilometer}/conformance"
python="${TAP_CEILOMETER_PYTHON311:-python3.11}"
start=$SECONDS

log() { printf '[conformance setup %3ds] %s\n' "$((SECONDS - start))" "$*" >&2; }

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

# System packages, only where missing: a python3.11 with venv and headers, and a C compiler for
# the few requirements that come only as source (msgpack-python builds an extension).
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

# build NAME IMPORT_CHECK: make sure the venv for requirements-NAME.txt exists in the cache.
build() {
    local name="$1" check="$2"
    local req="$here/requirements-$name.txt"
    local hash
    hash="$(sha256sum "$req" | cut -c1-16)"
    local venv="$cache/$name-$hash"
    local marker="$venv/.tap-ceilometer-complete"
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
        # pip's output goes to a log; it is shown only if the install fails. Meanwhile a line
        # every 20 s says what is going on (the first build takes minutes).
        "$venv/bin/python" -m pip install --no-deps --no-input --disable-pip-version-check \
            -r "$req" >"$venv.pip.log" 2>&1 &
        local pip_pid=$!
        while ! wait_for_exit "$pip_pid" 20; do
            log "$name: still installing with pip, $(grep -c '^Collecting\|^Processing' "$venv.pip.log" 2>/dev/null || true) of $(grep -c "==" "$req") pinned packages collected (the real servers of the conformance tier)"
        done
        if ! wait "$pip_pid"; then
            grep -v 'is ignored: it is neither a file nor a directory' "$venv.pip.log" | tail -40 >&2
            echo "conformance setup: pip install for $name failed (full log: $venv.pip.log)" >&2
            exit 1
        fi
        if ! "$venv/bin/python" -W ignore -c "$check" >"$venv.check.log" 2>&1; then
            cat "$venv.check.log" >&2
            echo "conformance setup: the $name venv was built but does not import its server" >&2
            exit 1
        fi
        "$python" --version >"$marker"
        log "$name: done"
    ) 9>"$cache/.$name.lock"
    echo "$venv"
}

keystone_venv="$(build keystone 'import keystone.server.flask.application, keystonemiddleware')"
ceilometer_venv="$(build ceilometer 'import sys; sys.path.insert(0, "'"$here"'/launcher"); import ceilometer_compat, ceilometer.api.app, ceilometer.storage.impl_sqlalchemy, psycopg2')"

log "ready in $((SECONDS - start)) s"
echo "keystone venv:   $keystone_venv"
echo "ceilometer venv: $ceilometer_venv"
