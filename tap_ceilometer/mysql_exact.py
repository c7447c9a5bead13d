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

Rows that change (every keyed stream except the immutable Ceilometer samples, keyed by
`message_id`): the target merges with `INSERT .. SELECT .. ON DUPLICATE KEY UPDATE k1 =
VALUES(k1) and k2 = VALUES(k2)`, which MariaDB and MySQL reject for a composite key (error 1052,
`Column 'k2' in UPDATE is ambiguous`, on every batch) and which never updates a re-sent row. For
such a stream the mapper

* creates the table with the stream's whole key as PRIMARY KEY, and tells the target only the
  first key column, so the target's clause is the valid no-op `k1 = VALUES(k1)`;
* adds a column `sent_seq` (BIGINT, indexed) to the schema and stamps every RECORD with a number
  that grows with each record it passes on, above every number already in the table;
* creates three triggers on the table: BEFORE INSERT keeps the incoming row in session variables,
  AFTER INSERT forgets it, and BEFORE UPDATE (the duplicate-key path of the target's merge) copies
  it over the stored row unless the stored row has a larger `sent_seq`. The last row sent for a
  key is thus stored whole, whatever the order the server reads a batch in, and a rerun after a
  crash (which re-sends from the last confirmed state) overwrites what the killed run wrote.

The merge and its triggers are one statement, so a killed load leaves the table as it was.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
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
# The column that orders the rows of a stream whose rows change (see the module docstring).
SEQUENCE = "sent_seq"
SEQUENCE_SCHEMA: dict[str, Any] = {"type": ["integer", "null"]}
# The immutable streams: Ceilometer samples (v2 meters and the single layout) never change.
IMMUTABLE_KEYS = (["message_id"],)
_RECORD_OPENING = re.compile(rb'"record"\s*:\s*\{\s*(\}?)')


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


def changes_rows(keys: Iterable[str]) -> bool:
    """Whether a stream's rows may be re-sent with new values: every keyed stream but samples."""
    keys = list(keys)
    return bool(keys) and keys not in IMMUTABLE_KEYS


def add_columns_statement(
    table: str, schema: Mapping[str, Any], existing: Mapping[str, str]
) -> str:
    """ALTER TABLE adding the schema's columns that the table lacks (exact types), or ''."""
    missing = [
        f"ADD COLUMN {_quoted(name)} {column_type(prop)} NULL"
        for name, prop in schema.get("properties", {}).items()
        if name.lower() not in existing
    ]
    return f"ALTER TABLE {_quoted(table)} {', '.join(missing)}" if missing else ""


def _digest(table: str) -> str:
    return hashlib.sha1(table.encode(), usedforsecurity=False).hexdigest()[:8]


def trigger_bodies(table: str, schema: Mapping[str, Any], keys: Iterable[str]) -> dict[str, str]:
    """The three triggers that make the target's merge a full, ordered overwrite.

    Trigger name to `(timing event, body)`, the body as information_schema stores it. The
    session variables carry the table's digest, so two tables never share them.
    """
    keys = {k.lower() for k in keys}
    columns = [n for n in schema.get("properties", {}) if n.lower() not in keys and n != SEQUENCE]
    columns.append(SEQUENCE)
    digest = _digest(table)
    var = {name: f"@tcx_{digest}_{i}" for i, name in enumerate(columns)}
    seq = var[SEQUENCE]
    stash = ", ".join(f"{var[c]} = NEW.{_quoted(c)}" for c in columns)
    copy = ", ".join(f"NEW.{_quoted(c)} = {var[c]}" for c in columns)
    old_seq = f"OLD.{_quoted(SEQUENCE)}"
    upsert = (
        f"BEGIN IF {seq} IS NOT NULL AND ({old_seq} IS NULL OR {seq} >= {old_seq})"
        f" THEN SET {copy}; END IF; SET {seq} = NULL; END"
    )
    prefix = f"{table[:40]}_{digest}"
    return {
        f"{prefix}_keep": f"BEFORE INSERT|SET {stash}",
        f"{prefix}_forget": f"AFTER INSERT|SET {seq} = NULL",
        f"{prefix}_upsert": f"BEFORE UPDATE|{upsert}",
    }


class ExactTables:
    """Creates or widens the table of each stream whose SCHEMA passes through; for a stream whose
    rows change, also its key, order column and triggers, and rewrites its messages."""

    def __init__(self, connection: pymysql.connections.Connection[Any]) -> None:
        self.connection = connection
        self.changing: dict[str, str] = {}  # stream to table, for the streams whose rows change
        self.sequence = 0  # the last `sent_seq` stamped, for every table (one counter)
        self._mariadb: bool | None = None

    def _query(self, statement: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(statement, args)
            return list(cursor.fetchall())

    def _existing(self, table: str) -> dict[str, str] | None:
        rows = self._query(
            "SELECT LOWER(column_name), CONCAT(data_type, IF(data_type = 'datetime',"
            " IF(datetime_precision = 0, '', '(6)'), ''))"
            " FROM information_schema.columns"
            " WHERE table_schema = DATABASE() AND table_name = %s",
            (table,),
        )
        return {str(name): str(kind) for name, kind in rows} if rows else None

    def _execute(self, statement: str) -> None:
        if statement:
            self._query(statement)

    def prepare(self, message: Mapping[str, Any]) -> dict[str, Any] | None:
        """Make the stream's table exact; return the SCHEMA to pass on if it must change."""
        stream = str(message["stream"])
        table = table_name(stream)
        schema = message.get("schema") or {}
        keys = list(message.get("key_properties") or [])
        changing = changes_rows(keys)
        if changing:
            if SEQUENCE in schema.get("properties", {}):
                msg = f"Stream {stream} has a property {SEQUENCE}, which the mapper adds itself."
                raise MapperError(msg)
            schema = {**schema, "properties": {**schema["properties"], SEQUENCE: SEQUENCE_SCHEMA}}
        existing = self._existing(table)
        if existing is None:
            statements = [create_statement(table, schema, keys)]
            action = "created with exact types"
        else:
            statements = [widen_statement(table, schema, existing)]
            if changing:  # its triggers name every column: the target must not add them later
                statements.append(add_columns_statement(table, schema, existing))
            action = "widened to exact types"
        for statement in filter(None, statements):
            self._execute(statement)
            LOGGER.info("Table %s %s.", table, action)
        if not changing:
            return None
        self._prepare_upserts(stream, table, schema, keys)
        return {**message, "schema": schema, "key_properties": keys[:1]}

    def _prepare_upserts(
        self, stream: str, table: str, schema: Mapping[str, Any], keys: list[str]
    ) -> None:
        stored_key = [
            str(row[0]).lower()
            for row in self._query(
                "SELECT column_name FROM information_schema.key_column_usage"
                " WHERE table_schema = DATABASE() AND table_name = %s"
                " AND constraint_name = 'PRIMARY' ORDER BY ordinal_position",
                (table,),
            )
        ]
        if sorted(stored_key) != sorted(k.lower() for k in keys):
            msg = (
                f"Table {table} has the primary key ({', '.join(stored_key) or 'none'}), but"
                f" stream {stream} is keyed by ({', '.join(keys)}): its rows could not be"
                " updated. Give the table that primary key, or drop it to let the mapper create it."
            )
            raise MapperError(msg)
        indexed = self._query(
            "SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE()"
            " AND table_name = %s AND column_name = %s AND seq_in_index = 1",
            (table, SEQUENCE),
        )
        if not indexed:
            self._execute(f"ALTER TABLE {_quoted(table)} ADD KEY ({_quoted(SEQUENCE)})")
        self._replace_triggers(table, trigger_bodies(table, schema, keys))
        ((highest,),) = self._query(f"SELECT MAX({_quoted(SEQUENCE)}) FROM {_quoted(table)}")  # noqa: S608
        self.sequence = max(self.sequence, int(highest or 0))
        self.changing[stream] = table

    def _replace_triggers(self, table: str, wanted: Mapping[str, str]) -> None:
        stored = {
            str(name): f"{timing} {event}|{body}"
            for name, timing, event, body in self._query(
                "SELECT trigger_name, action_timing, event_manipulation, action_statement"
                " FROM information_schema.triggers"
                " WHERE trigger_schema = DATABASE() AND event_object_table = %s",
                (table,),
            )
        }
        if self._mariadb is None:
            ((version,),) = self._query("SELECT VERSION()")
            self._mariadb = "mariadb" in str(version).lower()
        for name, definition in wanted.items():
            if stored.get(name) == definition:
                continue
            when, body = definition.split("|", 1)
            create = f"TRIGGER {_quoted(name)} {when} ON {_quoted(table)} FOR EACH ROW {body}"
            if self._mariadb:  # replaced atomically: no merge can run between drop and create
                self._execute(f"CREATE OR REPLACE {create}")
            else:
                self._execute(f"DROP TRIGGER IF EXISTS {_quoted(name)}")
                self._execute(f"CREATE {create}")
            LOGGER.info("Table %s: trigger %s (re)created.", table, name)

    def stamp(self, line: bytes) -> bytes:
        """The RECORD line with the next `sent_seq` as its record's first property."""
        self.sequence += 1
        match = _RECORD_OPENING.search(line)
        if match is None:  # not the form a Singer tap writes: rewrite the whole message
            message = json.loads(line)
            message["record"] = {SEQUENCE: self.sequence, **message["record"]}
            return json.dumps(message, ensure_ascii=False).encode() + b"\n"
        comma = b"" if match.group(1) else b","
        at = match.start(1)
        stamped = b'%s"%s":%d%s%s' % (line[:at], SEQUENCE.encode(), self.sequence, comma, line[at:])
        # The record's own text is kept (every digit of its numbers); check where it went.
        if json.loads(stamped)["record"].get(SEQUENCE) != self.sequence:
            msg = f"Cannot add {SEQUENCE} to a RECORD line: {line[:200]!r}"
            raise MapperError(msg)
        return stamped


def _record_stream(line: bytes, changing: Mapping[str, str]) -> str | None:
    """The stream of a RECORD line of a stream whose rows change, or None (cheap for others)."""
    if b'"RECORD"' not in line or not any(
        json.dumps(stream).encode() in line for stream in changing
    ):
        return None
    message = json.loads(line)
    stream = message.get("stream")
    return stream if message.get("type") == "RECORD" and stream in changing else None


def relay(source: IO[bytes], sink: IO[bytes], tables: ExactTables) -> None:
    """Copy every line; prepare the table of a SCHEMA before the target can read it; stamp the
    records of the streams whose rows change."""
    for line in source:
        if b'"SCHEMA"' in line:
            message = json.loads(line)
            if message.get("type") == "SCHEMA":
                sink.flush()
                rewritten = tables.prepare(message)
                if rewritten is not None:
                    line = json.dumps(rewritten, ensure_ascii=False).encode() + b"\n"  # noqa: PLW2901
        elif tables.changing and _record_stream(line, tables.changing) is not None:
            line = tables.stamp(line)  # noqa: PLW2901
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
    except MapperError as exc:
        LOGGER.error("%s", exc)
        return 1
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
