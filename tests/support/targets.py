"""Run the real Singer targets and read their real tables back, for tests.

The targets are the ones meltano.yml installs (`.ci/setup-targets.sh`), run with the config that
meltano.yml gives them in the `dev` environment, except for the schema (PostgreSQL) or database
(MariaDB), which each test makes fresh. A test that loads data therefore pins the target variant
and its config together: a config change that loses precision fails the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pymysql
import yaml
from psycopg import sql

from tap_ceilometer.naming import stream_names
from tap_ceilometer.v2.schema import SAMPLE_SCHEMA

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

Target = Literal["target-postgres", "target-mysql"]
TARGETS: tuple[Target, ...] = get_args(Target)

REPO_ROOT = Path(__file__).resolve().parents[2]
MELTANO_YML = REPO_ROOT / "meltano.yml"
EXACT_TYPES_SQL = REPO_ROOT / "config" / "target-mysql-exact-types.sql"
BACKFILL_SQL = REPO_ROOT / "config" / "target-postgres-backfill.sql"
MELTANO = REPO_ROOT / ".tools" / "meltano-venv" / "bin" / "meltano"
MYSQL_EXACT_MAPPER = Path(sys.executable).parent / "tap-ceilometer-mysql-exact"

PG_CONNINFO = "host=127.0.0.1 port=5432 user=postgres dbname=test"
MYSQL_HOST, MYSQL_PORT, MYSQL_USER = "127.0.0.1", 3306, "root"

# thk-target-mysql loads through a table named `<table>_temp`: 64 - len("_temp").
MYSQL_MAX_STREAM_NAME = 59

_DATETIME_COLUMNS = ("timestamp", "recorded_at")


@dataclass(frozen=True)
class TargetRun:
    """What a target printed and returned."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def states(self) -> list[dict[str, Any]]:
        """The STATE values the target emitted on stdout, in order."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


# -- where the targets are and how they are configured ----------------------------------------


@cache
def _meltano_plugin(target: Target) -> dict[str, Any]:
    project = yaml.safe_load(MELTANO_YML.read_text(encoding="utf-8"))
    plugin = next(p for p in project["plugins"]["loaders"] if p["name"] == target)
    env = next(e for e in project["environments"] if e["name"] == project["default_environment"])
    loaders = env.get("config", {}).get("plugins", {}).get("loaders", [])
    env_config: dict[str, Any] = next(
        (p.get("config", {}) for p in loaders if p["name"] == target), {}
    )
    return {**plugin, "config": {**plugin.get("config", {}), **env_config}}


def backfill_environment() -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """meltano.yml's `backfill` environment: the tap's batch_config, what it sets in
    target-postgres's config, and the env it sets."""
    project = yaml.safe_load(MELTANO_YML.read_text(encoding="utf-8"))
    env = next(e for e in project["environments"] if e["name"] == "backfill")
    plugins = env["config"]["plugins"]
    tap = next(p for p in plugins["extractors"] if p["name"] == "tap-ceilometer")
    target = next(p for p in plugins["loaders"] if p["name"] == "target-postgres")
    return (
        dict(tap["config"]["batch_config"]),
        dict(target["config"]),
        {k: str(v) for k, v in env["env"].items()},
    )


def meltano_env(auth_url: str, **settings: str) -> dict[str, str]:
    """The environment of a `meltano` command, as a deployment's `prod` gets its settings:
    offline, the tap as the cloud's admin from the first sample on, and `settings` (e.g.
    TARGET_MYSQL_SQLALCHEMY_URL)."""
    return {
        **os.environ,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "TAP_CEILOMETER_AUTH_URL": auth_url,
        "TAP_CEILOMETER_USERNAME": "admin",
        "TAP_CEILOMETER_PASSWORD": "admin-secret",
        "TAP_CEILOMETER_PROJECT_NAME": "admin",
        "TAP_CEILOMETER_START_DATE": "2000-01-01T00:00:00Z",
        **settings,
    }


def psql_file_command(namespace: str, path: Path) -> list[str]:
    """psql running one of sql/'s files in schema `namespace`, as their headers say."""
    return [
        "psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1",
        "-c", f"SET search_path TO {namespace}", "-f", str(path),
    ]  # fmt: skip


def stored_samples(
    target: Target, namespace: str, meters: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Every sample row of the meters' tables (those that exist), by message_id: each once."""
    rows: dict[str, dict[str, Any]] = {}
    names = stream_names(meters)
    existing = set(table_names(target, namespace))
    for table in names.values():
        if table not in existing:
            continue
        for row in read_table(target, namespace, table):
            assert row["message_id"] not in rows
            rows[row["message_id"]] = {
                column: row[column] for column in SAMPLE_SCHEMA["properties"]
            }
    return rows


def ready_for_backfill(namespace: str) -> set[str]:
    """README "Large backfills": config/target-postgres-backfill.sql run in the schema as its header
    says; returns the tables that then have its trigger."""
    subprocess.run(psql_file_command(namespace, BACKFILL_SQL), check=True, capture_output=True)
    with pg_connect() as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND t.tgname = 'ceilometer_skip_unchanged'",
            (namespace,),
        ).fetchall()
    return {name for (name,) in rows}


def target_executable(target: Target) -> Path:
    """The target's executable: `$TARGET_POSTGRES_EXECUTABLE` (etc.) or Meltano's venv."""
    override = os.environ.get(f"{target.upper().replace('-', '_')}_EXECUTABLE")
    default = REPO_ROOT / ".meltano" / "loaders" / target / "venv" / "bin" / target
    path = Path(override) if override else default
    if not path.is_file():
        msg = f"{path} not found: run .ci/setup-targets.sh"
        raise FileNotFoundError(msg)
    return path


def target_config(target: Target, namespace: str) -> dict[str, Any]:
    """meltano.yml's config for the target, loading into schema/database `namespace`."""
    config = dict(_meltano_plugin(target)["config"])
    if target == "target-postgres":
        config["default_target_schema"] = namespace
        return config
    config["database"] = namespace
    if url := config.get("sqlalchemy_url"):
        parts = urlsplit(url)
        config["sqlalchemy_url"] = urlunsplit(parts._replace(path=f"/{namespace}"))
    return config


def target_env(target: Target) -> dict[str, str]:
    """The process environment plus the plugin's `env:` from meltano.yml (paths made absolute)."""
    env = dict(os.environ)
    for key, value in (_meltano_plugin(target).get("env") or {}).items():
        path = REPO_ROOT / str(value)
        env[key] = str(path) if path.exists() else str(value)
    return env


def write_target_config(target: Target, namespace: str, directory: Path) -> Path:
    """Write `target_config` to a JSON file in `directory` and return its path."""
    path = directory / f"{target}-{namespace}.json"
    path.write_text(json.dumps(target_config(target, namespace)), encoding="utf-8")
    return path


def run_target(
    target: Target,
    namespace: str,
    messages: Iterable[Mapping[str, Any]] | str | IO[bytes],
    *,
    check: bool = True,
    timeout: float = 600,
) -> TargetRun:
    """Feed Singer messages (dicts, JSONL text, or a readable pipe) to the real target."""
    data: bytes | None = None
    pipe: IO[bytes] | None = None
    if isinstance(messages, str):
        data = messages.encode()
    elif hasattr(messages, "fileno"):
        pipe = messages  # type: ignore[assignment]
    else:
        lines = (json.dumps(m, ensure_ascii=False) + "\n" for m in messages)
        data = "".join(lines).encode()
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as err:
        config = write_target_config(target, namespace, Path(tmp))
        proc = subprocess.run(
            [str(target_executable(target)), "--config", str(config)],
            input=data,
            stdin=pipe,
            stdout=subprocess.PIPE,
            stderr=err,  # a file, not a pipe: a chatty target cannot block on it
            env=target_env(target),
            cwd=REPO_ROOT,
            timeout=timeout,
            check=False,
        )
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    run = TargetRun(proc.returncode, proc.stdout.decode(), stderr)
    if check and run.returncode != 0:
        msg = f"{target} exited {run.returncode}:\n{stderr[-4000:]}"
        raise AssertionError(msg)
    return run


# -- fresh schemas and databases ----------------------------------------------------------------


def pg_connect() -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection to the test PostgreSQL database."""
    return psycopg.connect(PG_CONNINFO, autocommit=True)


def mysql_connect(database: str | None = None) -> pymysql.connections.Connection[Any]:
    """An autocommit connection to MariaDB (utf8mb4), optionally in `database`."""
    return pymysql.connect(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user=MYSQL_USER,
        password="",
        database=database,
        charset="utf8mb4",
        autocommit=True,
    )


@contextmanager
def fresh_namespace(target: Target, prefix: str = "t") -> Iterator[str]:
    """Create an empty PostgreSQL schema or MariaDB database, yield its name, then drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    if target == "target-postgres":
        with pg_connect() as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        try:
            yield name
        finally:
            with pg_connect() as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )
        return
    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {_quote_mysql(name)} CHARACTER SET utf8mb4")
    try:
        yield name
    finally:
        with mysql_connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {_quote_mysql(name)}")


# -- making MariaDB tables exact ---------------------------------------------------------------


def schema_message(stream: str) -> dict[str, Any]:
    """The SCHEMA message tap-ceilometer sends for a meter stream."""
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": SAMPLE_SCHEMA,
        "key_properties": ["message_id"],
        "bookmark_properties": ["timestamp"],
    }


def apply_mysql_exact_types(database: str) -> list[str]:
    """Run config/target-mysql-exact-types.sql in `database`; return the ALTERs it made."""
    query = EXACT_TYPES_SQL.read_text(encoding="utf-8")
    with mysql_connect(database) as conn, conn.cursor() as cur:
        cur.execute(query)
        statements = [row[0] for row in cur.fetchall()]
        for statement in statements:
            cur.execute(statement)
    return statements


def prepare_tables(target: Target, namespace: str, streams: Iterable[str]) -> None:
    """Do what the product does before target-mysql loads rows.

    target-postgres needs nothing. For target-mysql, the product's mapper
    (tap-ceilometer-mysql-exact, which the job ceilometer-to-mysql and the README's pipe run)
    creates each table with exact types as its SCHEMA passes; here it gets the SCHEMA messages
    alone, with the target's own config.
    """
    if target == "target-postgres":
        return
    schemas = "".join(json.dumps(schema_message(stream)) + "\n" for stream in streams)
    with tempfile.TemporaryDirectory() as tmp:
        config = write_target_config(target, namespace, Path(tmp))
        subprocess.run(
            [str(MYSQL_EXACT_MAPPER), "--config", str(config)],
            input=schemas,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )


# -- reading tables back -----------------------------------------------------------------------


def table_names(target: Target, namespace: str) -> list[str]:
    """The tables in the schema/database, sorted."""
    query = "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
    if target == "target-postgres":
        with pg_connect() as conn:
            return sorted(r[0] for r in conn.execute(query, (namespace,)).fetchall())
    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute(query, (namespace,))
        return sorted(r[0] for r in cur.fetchall())


def column_types(target: Target, namespace: str, table: str) -> dict[str, str]:
    """Column name to SQL type as the server reports it.

    PostgreSQL: `format_type`, e.g. `numeric`, `timestamp without time zone` (no typmod: the
    maximum precision, microseconds), `jsonb`.
    MariaDB: `COLUMN_TYPE`, e.g. `double`, `datetime(6)`, `longtext` (JSON is an alias).
    """
    if target == "target-postgres":
        query = """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum"""
        with pg_connect() as conn:
            rows = conn.execute(query, (namespace, table)).fetchall()
        return dict(rows)
    query = """SELECT column_name, column_type FROM information_schema.columns
             WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position"""
    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute(query, (namespace, table))
        return dict(cur.fetchall())


def primary_key(target: Target, namespace: str, table: str) -> list[str]:
    """The table's primary key columns, in key order."""
    if target == "target-postgres":
        query = """
            SELECT kcu.column_name FROM information_schema.table_constraints tc
            JOIN information_schema.key_column_usage kcu
              ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema
             AND kcu.table_name = tc.table_name
            WHERE tc.table_schema = %s AND tc.table_name = %s AND tc.constraint_type = 'PRIMARY KEY'
            ORDER BY kcu.ordinal_position"""
        with pg_connect() as conn:
            return [r[0] for r in conn.execute(query, (namespace, table)).fetchall()]
    query = """SELECT column_name FROM information_schema.key_column_usage
             WHERE table_schema = %s AND table_name = %s AND constraint_name = 'PRIMARY'
             ORDER BY ordinal_position"""
    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute(query, (namespace, table))
        return [r[0] for r in cur.fetchall()]


def read_table(
    target: Target, namespace: str, table: str, order_by: str = "message_id"
) -> list[dict[str, Any]]:
    """Every row, ordered by `order_by`, with exact Python values for the sample columns.

    counter_volume becomes a float (a PostgreSQL numeric is converted with correct rounding, so
    the stored decimal of the double the tap sent gives back that double), date-times become
    aware UTC datetimes (both targets store UTC wall-clock time), resource_metadata a dict.
    """
    if target == "target-postgres":
        with pg_connect() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            query = sql.SQL("SELECT * FROM {} ORDER BY {}")
            cur.execute(query.format(sql.Identifier(namespace, table), sql.Identifier(order_by)))
            rows = cur.fetchall()
    else:
        with mysql_connect(namespace) as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(
                f"SELECT * FROM {_quote_mysql(table)} ORDER BY {_quote_mysql(order_by)}"  # noqa: S608
            )
            rows = list(cur.fetchall())
    return [_normalize(row) for row in rows]


def _quote_mysql(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _normalize(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    volume = out.get("counter_volume")
    if isinstance(volume, Decimal):
        out["counter_volume"] = float(volume)
    for column in _DATETIME_COLUMNS:
        value = out.get(column)
        if isinstance(value, datetime) and value.tzinfo is None:
            out[column] = value.replace(tzinfo=UTC)
    metadata = out.get("resource_metadata")
    if isinstance(metadata, str | bytes):
        out["resource_metadata"] = json.loads(metadata)
    return out
