"""Baselines (b) raw COPY and (c) bare JSON encode, fed the records the tap emitted.

The tap's recorded Singer output is read one stream at a time (the tap writes streams one
after another), so at most one meter's records are held in memory. Reading and shaping the
rows is not timed; only the COPY (client and server, commit included) and the encoding are.
The same pass checks the output: every RECORD counted, no message_id twice in a stream.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PG_CONNINFO = "host=127.0.0.1 port=5432 user=postgres dbname=test"

# The columns and types target-postgres creates for a meter stream (less the _sdc_ ones).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("counter_name", "text"),
    ("counter_type", "text"),
    ("counter_unit", "text"),
    ("counter_volume", "numeric"),
    ("message_id", "text PRIMARY KEY"),
    ("project_id", "text"),
    ("resource_id", "text"),
    ("source", "text"),
    ("timestamp", "timestamp"),
    ("user_id", "text"),
    ("recorded_at", "timestamp"),
    ("resource_metadata", "jsonb"),
)
NAMES = tuple(name for name, _ in COLUMNS)


@dataclass
class OutputCheck:
    """What the recorded output held."""

    records: int = 0
    duplicates: int = 0
    per_stream: dict[str, int] = field(default_factory=dict)
    bytes: int = 0


@dataclass
class BaselineTimes:
    copy_s: float = 0.0
    json_dumps_s: float = 0.0
    msgspec_encode_s: float = 0.0
    rows: int = 0


def streams_in(path: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(stream, records) for each run of consecutive RECORD messages of one stream."""
    decoder = msgspec.json.Decoder()
    current: str | None = None
    records: list[dict[str, Any]] = []
    with path.open("rb") as f:
        for line in f:
            if b'"RECORD"' not in line[:40]:
                continue
            message = decoder.decode(line)
            stream = message["stream"]
            if stream != current:
                if records and current is not None:
                    yield current, records
                current, records = stream, []
            records.append(message["record"])
    if records and current is not None:
        yield current, records


def copy_rows(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The records as COPY rows; metadata as JSON text, as a loader would send it."""
    dumps = json.dumps
    return [
        tuple(dumps(r[n]) if n == "resource_metadata" else r[n] for n in NAMES) for r in records
    ]


def run_baselines(path: Path, schema: str) -> tuple[OutputCheck, BaselineTimes]:
    """COPY every stream into its own indexed table in `schema`, time json.dumps of each record."""
    check = OutputCheck(bytes=path.stat().st_size)
    times = BaselineTimes()
    seen: dict[str, set[str]] = {}
    encode = msgspec.json.encode
    with psycopg.connect(PG_CONNINFO) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.commit()
        try:
            for stream, records in streams_in(path):
                ids = seen.setdefault(stream, set())
                before = len(ids)
                ids.update(r["message_id"] for r in records)
                check.duplicates += len(records) - (len(ids) - before)
                check.records += len(records)
                check.per_stream[stream] = check.per_stream.get(stream, 0) + len(records)

                started = time.perf_counter()
                for r in records:
                    json.dumps(r)
                times.json_dumps_s += time.perf_counter() - started
                started = time.perf_counter()
                for r in records:
                    encode(r)
                times.msgspec_encode_s += time.perf_counter() - started

                rows = copy_rows(records)
                del records
                table = sql.Identifier(schema, stream)
                ddl = sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                    table,
                    sql.SQL(", ").join(
                        sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in COLUMNS
                    ),
                )
                conn.execute(ddl)
                conn.commit()
                copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    table, sql.SQL(", ").join(map(sql.Identifier, NAMES))
                )
                started = time.perf_counter()
                with conn.cursor() as cur, cur.copy(copy) as cp:
                    for row in rows:
                        cp.write_row(row)
                conn.commit()
                times.copy_s += time.perf_counter() - started
                times.rows += len(rows)
        finally:
            conn.rollback()
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            conn.commit()
    return check, times


def count_rows(schema: str) -> int:
    """Rows in every table of `schema` (what a target loaded)."""
    with psycopg.connect(PG_CONNINFO) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        return sum(
            int(
                conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, t))
                ).fetchone()[0]  # type: ignore[index]
            )
            for (t,) in tables
        )


def drop_schema(schema: str) -> None:
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def checkpoint() -> None:
    """Write out every dirty page now, so that a timed run does not pay for the load before it
    (a 1M-row load leaves about 1.5 GB of WAL and a checkpoint to come behind it)."""
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def server_version() -> str:
    with psycopg.connect(PG_CONNINFO) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
