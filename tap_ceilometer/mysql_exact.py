"""tap-ceilometer-mysql-exact: a Singer mapper that makes thk-target-mysql's tables exact.

thk-target-mysql 0.1.3 creates every JSON-schema `number` as FLOAT (single precision: 1e-300
becomes 0) and every `date-time` as DATETIME (whole seconds), but it keeps the types of a table
that already exists. This mapper sits between the tap and the target and passes every message
through unchanged; when a SCHEMA message arrives, before the target sees it, it creates the
stream's table the way the target would, except with DOUBLE and DATETIME(6), or widens those
columns of a table that exists. A meter that appears in a later run gets its exact table the
same way, so a load is exact from an empty database on, in one command:

    tap-ceilometer --config tap.json | tap-ceilometer-mysql-exact --config mysql.json \\
        | target-mysql --config mysql.json

It reads the target's own config (`sqlalchemy_url`, or `host`, `port`, `user`, `password` and
`database`). No well-kept tool does this: the target has no setting for column types.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import pymysql

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

LOGGER = logging.getLogger("tap-ceilometer-mysql-exact")
EXACT_NUMBER = "DOUBLE"
EXACT_DATETIME = "DATETIME(6)"
# thk-target-mysql: strings are VARCHAR(maxLength or 1000), TEXT up to 65,535.
DEFAULT_STRING_LENGTH = 1000
LONGEST_VARCHAR = 1000


class MapperError(Exception):
    """A problem the operator fixes from its sentence: bad config, an unreachable server."""


@dataclass(frozen=True)
class Connection:
    """Where the target loads: the parts of its `sqlalchemy_url` or of its separate settings."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def from_target_config(cls, config: Mapping[str, Any]) -> Connection:
        url = str(config.get("sqlalchemy_url") or "")
        if url:
            parts = urlsplit(url)
            if not parts.scheme.startswith("mysql") or not parts.path.strip("/"):
                example = "mysql+mysqlconnector://user:password@host:3306/database"
                msg = f"sqlalchemy_url must look like {example}, not {parts.scheme}:..."
                raise MapperError(msg)
            return cls(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 3306,
                user=unquote(parts.username or "root"),
                password=unquote(parts.password or ""),
                database=unquote(parts.path.strip("/")),
            )
        database = str(config.get("database") or "")
        if not database:
            msg = "Set sqlalchemy_url, or host, port, user, password and database."
            raise MapperError(msg)
        return cls(
            host=str(config.get("host") or "127.0.0.1"),
            port=int(config.get("port") or 3306),
            user=str(config.get("user") or "root"),
            password=str(config.get("password") or ""),
            database=database,
        )

    def connect(self) -> pymysql.connections.Connection[Any]:
        try:
            return pymysql.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                database=self.database,
                charset="utf8mb4",
                autocommit=True,
            )
        except pymysql.err.OperationalError as exc:
            where = f"{self.database!r} at {self.host}:{self.port}"
            msg = f"Cannot open MySQL database {where}: {exc.args[-1]}"
            raise MapperError(msg) from None


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type", [])
    types = {kind} if isinstance(kind, str) else set(kind)
    for option in schema.get("anyOf", []):
        types |= _types(option)
    return types


def column_type(schema: Mapping[str, Any]) -> str:
    """The column thk-target-mysql 0.1.3 makes for a property (to_sql_type), made exact."""
    types = _types(schema) - {"null"}
    if "string" in types:
        if schema.get("format") == "date-time":
            return EXACT_DATETIME
        length = int(schema.get("maxLength", DEFAULT_STRING_LENGTH))
        return f"VARCHAR({length})" if length <= LONGEST_VARCHAR else f"TEXT({length})"
    if "number" in types:
        return "DECIMAL" if "multipleOf" in schema else EXACT_NUMBER
    simple = {"integer": "BIGINT", "boolean": "BOOL", "object": "JSON"}
    return next((simple[kind] for kind in simple if kind in types), "TEXT(4000)")


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def table_name(stream: str) -> str:
    """thk-target-mysql's table for a stream: the part after the last dash (schema-table)."""
    return stream.rsplit("-", 1)[-1]


def create_statement(table: str, schema: Mapping[str, Any], keys: Iterable[str]) -> str:
    columns = [
        f"{_quoted(name)} {column_type(prop)} NULL"
        for name, prop in schema.get("properties", {}).items()
    ]
    keys = list(keys)
    if keys:
        key_names = ", ".join(_quoted(k) for k in keys)
        columns.append(f"CONSTRAINT {_quoted(table + '_PK')} PRIMARY KEY ({key_names})")
    return f"CREATE TABLE IF NOT EXISTS {_quoted(table)} ({', '.join(columns)})"


def widen_statement(table: str, schema: Mapping[str, Any], existing: Mapping[str, str]) -> str:
    """ALTER TABLE for the inexact number and date-time columns of an existing table, or ''."""
    changes = []
    for name, prop in schema.get("properties", {}).items():
        wanted = column_type(prop)
        current = existing.get(name.lower(), "")
        if wanted == EXACT_NUMBER and current in ("float", "decimal"):
            changes.append(f"MODIFY {_quoted(name)} {EXACT_NUMBER} NULL")
        elif wanted == EXACT_DATETIME and current == "datetime":
            changes.append(f"MODIFY {_quoted(name)} {EXACT_DATETIME} NULL")
    return f"ALTER TABLE {_quoted(table)} {', '.join(changes)}" if changes else ""


class ExactTables:
    """Creates or widens the table of each stream whose SCHEMA passes through."""

    def __init__(self, connection: pymysql.connections.Connection[Any]) -> None:
        self.connection = connection

    def _existing(self, table: str) -> dict[str, str] | None:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT LOWER(column_name), CONCAT(data_type, IF(data_type = 'datetime',"
                " IF(datetime_precision = 0, '', '(6)'), ''))"
                " FROM information_schema.columns"
                " WHERE table_schema = DATABASE() AND table_name = %s",
                (table,),
            )
            rows = cursor.fetchall()
        return {str(name): str(kind) for name, kind in rows} if rows else None

    def prepare(self, message: Mapping[str, Any]) -> None:
        table = table_name(str(message["stream"]))
        schema = message.get("schema") or {}
        existing = self._existing(table)
        if existing is None:
            statement = create_statement(table, schema, message.get("key_properties") or [])
            action = "created with exact types"
        else:
            statement = widen_statement(table, schema, existing)
            action = "widened to exact types"
        if statement:
            with self.connection.cursor() as cursor:
                cursor.execute(statement)
            LOGGER.info("Table %s %s.", table, action)


def relay(source: IO[bytes], sink: IO[bytes], tables: ExactTables) -> None:
    """Copy every line; prepare the table of a SCHEMA before the target can read it."""
    for line in source:
        if b'"SCHEMA"' in line:
            message = json.loads(line)
            if message.get("type") == "SCHEMA":
                sink.flush()
                tables.prepare(message)
        sink.write(line)
    sink.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point: `tap-ceilometer-mysql-exact --config target-mysql.json` in a pipe."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s | %(levelname)-8s | %(name)s | %(message)s",
    )
    parser = argparse.ArgumentParser(
        prog="tap-ceilometer-mysql-exact",
        description="Pass Singer messages through; give target-mysql exact column types.",
    )
    parser.add_argument("--config", required=True, help="the target-mysql config (JSON)")
    args = parser.parse_args(argv)
    try:
        config = json.loads(Path(args.config).read_text(encoding="utf-8"))
        connection = Connection.from_target_config(config).connect()
    except (OSError, ValueError, MapperError) as exc:
        LOGGER.error("%s", exc)
        return 1
    try:
        relay(sys.stdin.buffer, sys.stdout.buffer, ExactTables(connection))
    except pymysql.err.MySQLError as exc:
        LOGGER.error("MySQL refused to prepare a table: %s", exc.args[-1])
        return 1
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
