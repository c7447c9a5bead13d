#!/usr/bin/env bash
# Installs the Singer targets (and Meltano) that tap-ceilometer is tested against.
#
# Idempotent and non-interactive; safe to run on a fresh machine and fast on a second run:
#   1. system packages that mysqlclient (a dependency of thk-target-mysql) compiles against;
#   2. Meltano 4.4.1 in .tools/meltano-venv;
#   3. a Python 3.10 on PATH (thk-target-mysql says Requires-Python <=3.11, which 3.11.x fails);
#   4. `meltano install` of every plugin in meltano.yml (no Meltano Hub: all plugins are inline);
#   5. the MariaDB database the demo loads into.
# Afterwards the targets are at .meltano/loaders/<name>/venv/bin/<name>.
#
# Environment overrides: MELTANO_VERSION, PYTHON (for Meltano), PYTHON310, MYSQL_HOST, MYSQL_PORT,
# MYSQL_USER, MYSQL_DATABASE (a password, if any, via MYSQL_PWD, which the mysql client reads).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

MELTANO_VERSION="${MELTANO_VERSION:-4.4.1}"
TOOLS="$REPO/.tools"
MELTANO_VENV="$TOOLS/meltano-venv"
MELTANO="$MELTANO_VENV/bin/meltano"
MYSQL_HOST="${MYSQL_HOST:-127.0.0.1}"
MYSQL_PORT="${MYSQL_PORT:-3306}"
MYSQL_USER="${MYSQL_USER:-root}"
MYSQL_DATABASE="${MYSQL_DATABASE:-ceilometer}"

# Meltano must never reach its Hub, its usage collector or its version check.
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false
export MELTANO_CLI_DISABLE_VERSION_CHECK=true
# uv must use the interpreters on this machine, never download one.
export UV_PYTHON_DOWNLOADS=never

say() { printf '[setup-targets] %s\n' "$*"; }
die() { printf '[setup-targets] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR

# 1. System packages -------------------------------------------------------------------------
need_pkgs=()
for pkg in build-essential pkg-config libmariadb-dev mariadb-client; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    say "apt-get install ${need_pkgs[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${need_pkgs[@]}" >/dev/null
else
    say "system packages present"
fi

# 2. Meltano ---------------------------------------------------------------------------------
if [[ -x "$MELTANO" ]] && [[ "$("$MELTANO" --version 2>/dev/null)" == *"version $MELTANO_VERSION" ]]; then
    say "meltano $MELTANO_VERSION present in ${MELTANO_VENV#"$REPO"/}"
else
    PYTHON="${PYTHON:-python3}"
    say "installing meltano $MELTANO_VERSION into ${MELTANO_VENV#"$REPO"/} with $("$PYTHON" --version)"
    rm -rf "$MELTANO_VENV"
    "$PYTHON" -m venv "$MELTANO_VENV"
    "$MELTANO_VENV/bin/pip" install --quiet --disable-pip-version-check "meltano==$MELTANO_VERSION"
    "$MELTANO" --version
fi

# 3. Python 3.10 for target-mysql (meltano.yml says `python: python3.10`) -----------------------
mkdir -p "$TOOLS/bin"
works310() { [[ -n "$1" ]] && "$1" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; }
py310="${PYTHON310:-}"
if ! works310 "$py310"; then
    py310=""
    for cand in "$(command -v python3.10 || true)" "$HOME"/.pyenv/versions/3.10.*/bin/python3.10 \
        /usr/local/bin/python3.10 /usr/bin/python3.10; do
        if works310 "$cand"; then py310="$cand"; break; fi
    done
fi
[[ -n "$py310" ]] || die "no working Python 3.10 found (set PYTHON310=/path/to/python3.10)"
# A pyenv shim named python3.10 may be on PATH and refuse to run; put a real one first. The
# interpreter's own path, with links resolved: when .tools/bin is already on PATH (a command
# run from .ci/test), python3.10 is this very link, and linking it to itself broke it.
py310="$(readlink -f "$("$py310" -c 'import sys; print(sys.executable)')")"
ln -sfn "$py310" "$TOOLS/bin/python3.10"
export PATH="$TOOLS/bin:$PATH"
say "python3.10 -> $py310"

# 4. Meltano plugins (skipped by Meltano itself when their pip_url fingerprint is unchanged) -------
say "meltano install (extractor and loaders)"
"$MELTANO" install
for exe in .meltano/loaders/target-postgres/venv/bin/target-postgres \
    .meltano/loaders/target-mysql/venv/bin/target-mysql \
    .meltano/extractors/tap-ceilometer/venv/bin/tap-ceilometer; do
    [[ -x "$exe" ]] || die "$exe missing after meltano install"
done
# Meltano installs the plugins without compiling their modules, and with PYTHONDONTWRITEBYTECODE
# set (as on this machine) every target start compiled SQLAlchemy and the SDK anew: about 2 s of
# CPU per run, per partition. Compiled once here (fast when done already).
for venv in .meltano/*/*/venv; do
    "$venv/bin/python" -m compileall -q -j 0 "$venv/lib" >/dev/null 2>&1 || true
done
say "plugin venvs compiled"
say "target-postgres: $(.meltano/loaders/target-postgres/venv/bin/target-postgres --version 2>&1 | tail -1)"
say "target-mysql:    $(.meltano/loaders/target-mysql/venv/bin/target-mysql --version 2>&1 | tail -1)"

# 5. The MariaDB database target-mysql loads into (target-postgres creates its schema itself) ----
say "CREATE DATABASE IF NOT EXISTS $MYSQL_DATABASE on $MYSQL_HOST:$MYSQL_PORT"
mysql --protocol=tcp -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" \
    -e "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"

say "done"
