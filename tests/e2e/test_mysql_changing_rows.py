"""Rows that change (Gnocchi aggregates, composite key) end exact in MariaDB through
tap-ceilometer-mysql-exact and the real target-mysql; and in target-postgres.

Hand-made Singer messages: rows first sent, re-sent with new values in a later run, twice in one
run (inside one batch and across the target's 10,000-row batch boundary), new keys, and a run
killed with SIGKILL after its first batch was committed, then rerun from the last confirmed
state. Each table is compared with the latest values the test sent, key for key.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql

from tap_ceilometer.mysql_exact import SEQUENCE, ExactTables, MapperError, create_statement
from tests.support.targets import (
    MYSQL_EXACT_MAPPER,
    REPO_ROOT,
    column_types,
    fresh_namespace,
    mysql_connect,
    pg_connect,
    primary_key,
    run_target,
    target_env,
    target_executable,
    write_target_config,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

STREAM = "measures"
KEYS = ["metric_id", "aggregation", "granularity", "timestamp"]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "metric_id": {"type": "string", "maxLength": 36},
        "metric_name": {"type": ["string", "null"]},
        "aggregation": {"type": "string", "maxLength": 32},
        "granularity": {"type": "number"},
        "timestamp": {"type": "string", "format": "date-time"},
        "value": {"type": ["number", "null"]},
        "final": {"type": ["boolean", "null"]},
    },
    "required": KEYS,
}
SCHEMA_MESSAGE = {"type": "SCHEMA", "stream": STREAM, "schema": SCHEMA, "key_properties": KEYS}
BATCH = 10_000  # singer-sdk 0.30's fixed batch size in target-mysql
T0 = datetime(2024, 2, 29, 23, 55, 0, 123456, tzinfo=UTC)
# Metric ids that start with digits (a string read as a number would be 6, 1, 0...).
METRICS = [f"{n}f1a2b3c-0000-4000-8000-00000000000{n}" for n in range(6)]
AGGREGATIONS = ["mean", "rate:mean", "max"]
GRANULARITIES = [300.0, 0.5]
VALUES = [1e-300, 12345678901.25, -2.5e300, 0.1, 5e-324, -1.7976931348623157e308, None, 1 / 3]

Key = tuple[str, str, float, datetime]


def _key_of(i: int) -> dict[str, Any]:
    """The i-th key: every metric, aggregation and granularity, then consecutive periods."""
    metric = METRICS[i % len(METRICS)]
    aggregation = AGGREGATIONS[i // len(METRICS) % len(AGGREGATIONS)]
    granularity = GRANULARITIES[i // 18 % 2]
    period = T0 + timedelta(minutes=5 * (i // 36), microseconds=i % 36)
    return {
        "metric_id": metric,
        "aggregation": aggregation,
        "granularity": granularity,
        "timestamp": period.isoformat(),
    }


def _record(i: int, version: int) -> dict[str, Any]:
    value = VALUES[(i + version) % len(VALUES)]
    if value is not None:  # a new value per version, every one a finite double
        value = value * (1 + version / 1024) if abs(value) < 1e307 else value / (1 + version)
    return {
        "type": "RECORD",
        "stream": STREAM,
        "record": {
            **_key_of(i),
            "metric_name": f"cpu v{version}",
            "value": value,
            "final": version >= 3,
        },
    }


def _state(n: int) -> dict[str, Any]:
    return {"type": "STATE", "value": {"bookmarks": {STREAM: {"run": n}}}}


def _key(row: dict[str, Any]) -> Key:
    stamp = row["timestamp"]
    if isinstance(stamp, str):
        stamp = datetime.fromisoformat(stamp)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return (row["metric_id"], row["aggregation"], float(row["granularity"]), stamp)


def _expected(runs: Iterable[Iterable[dict[str, Any]]]) -> dict[Key, tuple[Any, ...]]:
    """Key to (metric_name, value, final): the last record sent for each key, over all runs."""
    latest: dict[Key, tuple[Any, ...]] = {}
    for messages in runs:
        for message in messages:
            if message["type"] == "RECORD":
                row = message["record"]
                latest[_key(row)] = (row["metric_name"], row["value"], row["final"])
    return latest


def _stored(rows: Iterable[dict[str, Any]]) -> dict[Key, tuple[Any, ...]]:
    stored: dict[Key, tuple[Any, ...]] = {}
    for row in rows:
        key = _key(row)
        assert key not in stored, f"key {key} stored twice"
        value = row["value"]
        stored[key] = (
            row["metric_name"],
            float(value) if isinstance(value, Decimal) else value,
            None if row["final"] is None else bool(row["final"]),
        )
    return stored


def _mysql_rows(database: str) -> dict[Key, tuple[Any, ...]]:
    with mysql_connect(database) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM `{STREAM}`")  # noqa: S608
        names = [d[0] for d in cur.description]
        return _stored(dict(zip(names, row, strict=True)) for row in cur.fetchall())


def _pg_rows(schema: str) -> dict[Key, tuple[Any, ...]]:
    with pg_connect() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, STREAM)))
        return _stored(cur.fetchall())


def _jsonl(messages: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(m) + "\n" for m in messages).encode()


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_namespace("target-mysql", prefix="chg") as name:
        yield name


class Pipe:
    """`tap-ceilometer-mysql-exact --config c | target-mysql --config c`, fed by the test."""

    def __init__(self, database: str, workdir: Path) -> None:
        self.config = write_target_config("target-mysql", database, workdir)
        self.out = workdir / "target.out"
        self.mapper_log = workdir / "mapper.log"
        self.target_log = workdir / "target.log"

    def start(self) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
        with self.mapper_log.open("wb") as mlog, self.out.open("wb") as out:
            mapper = subprocess.Popen(
                [str(MYSQL_EXACT_MAPPER), "--config", str(self.config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=mlog,
            )
            with self.target_log.open("wb") as tlog:
                target = subprocess.Popen(
                    [str(target_executable("target-mysql")), "--config", str(self.config)],
                    stdin=mapper.stdout,
                    stdout=out,
                    stderr=tlog,
                    env=target_env("target-mysql"),
                    cwd=REPO_ROOT,
                )
        assert mapper.stdout is not None
        mapper.stdout.close()
        return mapper, target

    def run(self, messages: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """One complete run; returns the last state the target confirmed."""
        mapper, target = self.start()
        assert mapper.stdin is not None
        mapper.stdin.write(_jsonl(messages))
        mapper.stdin.close()
        assert mapper.wait(timeout=300) == 0, self.mapper_log.read_text()[-4000:]
        assert target.wait(timeout=300) == 0, self.target_log.read_text()[-4000:]
        return self.states()[-1]

    def states(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]


def _runs() -> list[list[dict[str, Any]]]:
    """Three runs: first sends; re-sends with new values, duplicates and new keys; and a run
    whose key is sent again on both sides of the target's batch boundary."""
    first = [SCHEMA_MESSAGE, *(_record(i, 0) for i in range(40)), _state(1)]
    second = [
        SCHEMA_MESSAGE,
        *(_record(i, 1) for i in range(0, 40, 2)),  # half the keys change
        _record(7, 2),
        _record(7, 3),  # the same key twice in one batch: the last one wins
        _record(3, 2),
        *(_record(i, 0) for i in range(40, 60)),  # new keys
        _record(3, 3),
        _state(2),
    ]
    third = [
        SCHEMA_MESSAGE,
        _record(5, 4),  # in the first batch...
        _record(41, 4),
        *(_record(i, 5) for i in range(100, 100 + BATCH - 2)),  # ...which ends here
        _record(5, 6),  # ...and again in the second batch
        _record(41, 7),
        _record(41, 8),
        _state(3),
    ]
    return [first, second, third]


def _unpatched_table(database: str, keys: list[str]) -> None:
    """What the mapper did before it knew of changing rows: the exact table, messages unchanged
    (without it the target's own FLOAT columns refuse -2.5e300 before any merge)."""
    with mysql_connect(database) as conn, conn.cursor() as cur:
        cur.execute(create_statement(STREAM, SCHEMA, keys))


def test_target_mysql_alone_cannot_load_a_composite_key(database: str) -> None:
    """The trap, in the real MariaDB: the target's merge names every key column in one
    `k1 = VALUES(k1) and k2 = ...`, which the server rejects (the bare `aggregation` could be
    either table's) on the first batch: nothing is loaded, no state is confirmed."""
    _unpatched_table(database, KEYS)
    run = run_target("target-mysql", database, _runs()[0], check=False)
    assert run.returncode != 0
    assert "1052" in run.stderr
    assert "Column 'aggregation' in UPDATE is ambiguous" in run.stderr
    assert run.states == []
    assert _mysql_rows(database) == {}


def test_target_mysql_alone_never_updates_a_re_sent_row(database: str) -> None:
    """With one key column the merge is valid but a no-op: the first version stays."""
    _unpatched_table(database, ["metric_id"])
    single = {**SCHEMA_MESSAGE, "key_properties": ["metric_id"]}
    first = [single, _record(0, 0), _state(1)]
    run_target("target-mysql", database, first)
    run_target("target-mysql", database, [single, _record(0, 1), _state(2)])
    assert _mysql_rows(database) == _expected([first])
    assert _mysql_rows(database) != _expected([first, [_record(0, 1)]])


def test_changing_rows_end_exact_in_mariadb(database: str, tmp_path: Path) -> None:
    pipe = Pipe(database, tmp_path)
    runs = _runs()
    for n, messages in enumerate(runs, 1):
        assert pipe.run(messages) == _state(n)["value"]
        assert _mysql_rows(database) == _expected(runs[:n]), f"after run {n}"
        if n == 1:
            assert "(re)created" in pipe.mapper_log.read_text()
        else:
            assert "(re)created" not in pipe.mapper_log.read_text(), "the triggers are kept"
    assert primary_key("target-mysql", database, STREAM) == KEYS
    types = column_types("target-mysql", database, STREAM)
    assert types["value"] == types["granularity"] == "double"
    assert types["timestamp"] == "datetime(6)"
    assert types[SEQUENCE] == "bigint(20)"
    assert len(_mysql_rows(database)) == 60 + BATCH - 2


def test_a_run_killed_after_a_committed_batch_is_overwritten_by_its_rerun(
    database: str, tmp_path: Path
) -> None:
    """SIGKILL to mapper and target after the target committed its first batch (10,000 rows,
    new values) but before it confirmed any state; the rerun re-sends from the last confirmed
    state with values read later, and those must replace what the killed run left."""
    pipe = Pipe(database, tmp_path)
    first = [SCHEMA_MESSAGE, *(_record(i, 0) for i in range(BATCH + 50)), _state(1)]
    assert pipe.run(first) == _state(1)["value"]

    mapper, target = pipe.start()
    assert mapper.stdin is not None
    killed = [SCHEMA_MESSAGE, *(_record(i, 1) for i in range(BATCH + 30))]
    mapper.stdin.write(_jsonl(killed))
    mapper.stdin.flush()
    deadline = time.monotonic() + 240
    while not any(name == "cpu v1" for name, _, _ in _mysql_rows(database).values()):
        assert time.monotonic() < deadline, "the killed run's first batch was never merged"
        time.sleep(0.5)
    target.send_signal(signal.SIGKILL)
    mapper.send_signal(signal.SIGKILL)
    target.wait()
    mapper.wait()
    assert pipe.states() == [], "the killed run confirmed nothing"
    partial = _mysql_rows(database)
    assert partial != _expected([first]), "the killed run's first batch is in the table"

    rerun = [SCHEMA_MESSAGE, *(_record(i, 2) for i in range(0, BATCH + 30, 3)), _state(2)]
    assert pipe.run(rerun) == _state(2)["value"]
    # Keys the rerun did not re-send keep what the killed run committed (or the first run's).
    expected = {**partial, **_expected([rerun])}
    assert _mysql_rows(database) == expected
    assert len(expected) == BATCH + 50


def test_the_last_sent_wins_whatever_order_the_server_reads_a_batch_in(database: str) -> None:
    """The triggers order by `sent_seq`, not by the scan: a merge that reads the batch in the
    reverse order (as a server may, SQL promises no order) still stores the last row sent."""
    with mysql_connect(database) as conn:
        ExactTables(conn).prepare(SCHEMA_MESSAGE)
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {STREAM}_temp AS (SELECT * FROM {STREAM} WHERE 1=0)")  # noqa: S608
            rows = [(METRICS[0], "mean", 300.0, "2024-01-01 00:00:00", v, seq) for seq, v in
                    [(1, 1.5), (2, 2.5), (3, None)]]  # fmt: skip
            cur.executemany(
                f"INSERT INTO {STREAM}_temp (metric_id, aggregation, granularity, timestamp,"  # noqa: S608
                f" value, {SEQUENCE}) VALUES (%s, %s, %s, %s, %s, %s)",
                rows,
            )
            for order in ("DESC", "ASC"):
                cur.execute(
                    f"INSERT INTO {STREAM} (metric_id, aggregation, granularity, timestamp, value,"  # noqa: S608
                    f" {SEQUENCE}) SELECT metric_id, aggregation, granularity, timestamp, value,"
                    f" {SEQUENCE} FROM {STREAM}_temp temp ORDER BY {SEQUENCE} {order}"
                    " ON DUPLICATE KEY UPDATE metric_id = VALUES(metric_id)"
                )
                cur.execute(f"SELECT metric_id, value, {SEQUENCE} FROM {STREAM}")  # noqa: S608
                assert cur.fetchall() == ((METRICS[0], None, 3),), order


def test_the_mapper_rewrites_only_the_streams_whose_rows_change(
    database: str, tmp_path: Path
) -> None:
    samples = {
        "type": "SCHEMA",
        "stream": "cpu_util",
        "schema": {
            "type": "object",
            "properties": {"message_id": {"type": "string", "maxLength": 128}},
        },
        "key_properties": ["message_id"],
    }
    sample = {"type": "RECORD", "stream": "cpu_util", "record": {"message_id": "a"}}
    lines = [samples, sample, SCHEMA_MESSAGE, _record(0, 0), _record(1, 0)]
    config = write_target_config("target-mysql", database, tmp_path)
    done = subprocess.run(
        [str(MYSQL_EXACT_MAPPER), "--config", str(config)],
        input=_jsonl(lines),
        capture_output=True,
        check=True,
    )
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert out[:2] == [samples, sample], "sample streams pass unchanged"
    assert out[2]["key_properties"] == ["metric_id"]
    assert out[2]["schema"]["properties"][SEQUENCE] == {"type": ["integer", "null"]}
    assert [m["record"] for m in out[3:]] == [
        {SEQUENCE: n, **_record(i, 0)["record"]} for n, i in ((1, 0), (2, 1))
    ]
    assert SEQUENCE not in column_types("target-mysql", database, "cpu_util")
    with mysql_connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT event_object_table FROM information_schema.triggers"
                    " WHERE trigger_schema = %s", (database,))  # fmt: skip
        assert {row[0] for row in cur.fetchall()} == {STREAM}


def test_the_mapper_keeps_every_digit_and_refuses_what_it_cannot_make_exact(
    database: str,
) -> None:
    with mysql_connect(database) as conn:
        tables = ExactTables(conn)
        tables.prepare(SCHEMA_MESSAGE)
        line = (
            b'{"type": "RECORD", "stream": "measures", "record": { "value": 1.00000000000000000001}'
            b"}\n"
        )
        assert tables.stamp(line) == (
            b'{"type": "RECORD", "stream": "measures", "record": { "sent_seq":1,'
            b'"value": 1.00000000000000000001}}\n'
        )
        assert tables.stamp(b'{"type":"RECORD","stream":"measures","record":{}}\n') == (
            b'{"type":"RECORD","stream":"measures","record":{"sent_seq":2}}\n'
        )
        own = {**SCHEMA, "properties": {**SCHEMA["properties"], SEQUENCE: {"type": "integer"}}}
        with pytest.raises(MapperError, match="has a property sent_seq"):
            tables.prepare({**SCHEMA_MESSAGE, "schema": own})
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE other (metric_id VARCHAR(36) PRIMARY KEY, value DOUBLE)")
        with pytest.raises(MapperError, match=r"primary key \(metric_id\).*could not be updated"):
            tables.prepare({**SCHEMA_MESSAGE, "stream": "other"})


def test_target_postgres_upserts_the_same_messages_exactly() -> None:
    """target-postgres (MeltanoLabs) needs no mapper: it merges by the whole key and keeps the
    last of the duplicates inside one batch."""
    runs = _runs()
    with fresh_namespace("target-postgres", prefix="chg") as schema:
        for n, messages in enumerate(runs, 1):
            run = run_target("target-postgres", schema, messages)
            assert run.states[-1] == _state(n)["value"]
            assert _pg_rows(schema) == _expected(runs[:n]), f"after run {n}"
        assert primary_key("target-postgres", schema, STREAM) == KEYS
