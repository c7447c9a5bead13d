"""SQLite storage shaped like Ceilometer's SQL driver: samples point at meter and resource rows.

Timestamps are integer microseconds since the epoch (UTC), so ordering and equality are exact.
Each sample's user, project, source and metadata come from its resource row, which is keyed by
resource id + user + project + source + metadata, as in Ceilometer (spec 1.3).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sqlite3
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import msgspec

from ceilometer_simulator.generator import CloudSpec, RawSample, iter_raw_samples
from ceilometer_simulator.metadata import dict_to_keyval, flatten_metadata
from ceilometer_simulator.timeutil import from_us, iso_from_us, parse_storage_timestamp

BATCH_SIZE = 5_000


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Typed metadata "side tables" of the SQL driver, folded into one table with a type column.
VTYPE_TEXT, VTYPE_INT, VTYPE_FLOAT, VTYPE_BOOL = 0, 1, 2, 3
_VTYPES: dict[type, int] = {
    str: VTYPE_TEXT,
    type(None): VTYPE_TEXT,
    int: VTYPE_INT,
    float: VTYPE_FLOAT,
    bool: VTYPE_BOOL,
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meter (
    pk INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, unit TEXT NOT NULL,
    UNIQUE (name, type, unit));
CREATE TABLE IF NOT EXISTS resource (
    pk INTEGER PRIMARY KEY, resource_id TEXT NOT NULL, user_id TEXT, project_id TEXT,
    source TEXT, metadata BLOB NOT NULL, flat TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_resource_rid ON resource (resource_id);
CREATE INDEX IF NOT EXISTS ix_resource_project ON resource (project_id);
CREATE TABLE IF NOT EXISTS meta (
    res_pk INTEGER NOT NULL, key TEXT NOT NULL, vtype INTEGER NOT NULL, value);
CREATE INDEX IF NOT EXISTS ix_meta ON meta (key, vtype, value, res_pk);
CREATE INDEX IF NOT EXISTS ix_meta_res ON meta (res_pk, key, vtype);
CREATE TABLE IF NOT EXISTS sample (
    pk INTEGER PRIMARY KEY, meter_pk INTEGER NOT NULL, res_pk INTEGER NOT NULL,
    ts INTEGER NOT NULL, recorded INTEGER, volume REAL, message_id TEXT NOT NULL,
    signature TEXT);
CREATE INDEX IF NOT EXISTS ix_sample_meter_ts ON sample (meter_pk, ts, message_id);
CREATE INDEX IF NOT EXISTS ix_sample_ts ON sample (ts, message_id);
CREATE INDEX IF NOT EXISTS ix_sample_message_id ON sample (message_id);
CREATE INDEX IF NOT EXISTS ix_sample_res ON sample (res_pk, ts);
CREATE TABLE IF NOT EXISTS latest (
    meter_pk INTEGER NOT NULL, resource_id TEXT NOT NULL, sample_pk INTEGER NOT NULL,
    PRIMARY KEY (meter_pk, resource_id));
"""

# Columns every sample query selects, in the order SampleRow holds them.
SAMPLE_COLUMNS = (
    "s.ts, s.recorded, s.volume, s.message_id, m.name, m.type, m.unit, "
    "r.resource_id, r.user_id, r.project_id, r.source, r.flat"
)
SAMPLE_FROM = "sample s JOIN meter m ON m.pk = s.meter_pk JOIN resource r ON r.pk = s.res_pk"


class SampleRow(NamedTuple):
    """One joined sample row as SQL returns it."""

    ts: int
    recorded: int | None
    volume: float | None
    message_id: str
    name: str
    type: str
    unit: str
    resource_id: str
    user_id: str | None
    project_id: str | None
    source: str | None
    flat: str


class OldSample(msgspec.Struct):
    """The OldSample type of GET /v2/meters/<name> (spec 1.2)."""

    counter_name: str
    counter_type: str
    counter_unit: str
    counter_volume: float | None
    resource_id: str
    project_id: str | None
    user_id: str | None
    source: str | None
    timestamp: str
    recorded_at: str | None
    resource_metadata: msgspec.Raw
    message_id: str


class Sample(msgspec.Struct):
    """The Sample type of /v2/samples and POST /v2/query/samples (spec 1.3)."""

    id: str
    meter: str
    type: str
    unit: str
    volume: float | None
    user_id: str | None
    project_id: str | None
    resource_id: str
    source: str | None
    timestamp: str
    recorded_at: str | None
    metadata: msgspec.Raw


def row_to_old_sample(row: Sequence[Any]) -> OldSample:
    """Serialise one joined row as an OldSample."""
    ts, rec, vol, mid, name, mtype, unit, rid, uid, pid, src, flat = row
    return OldSample(
        name,
        mtype,
        unit,
        vol,
        rid,
        pid,
        uid,
        src,
        iso_from_us(ts),
        None if rec is None else iso_from_us(rec),
        msgspec.Raw(flat),
        mid,
    )


def row_to_sample(row: Sequence[Any]) -> Sample:
    """Serialise one joined row as a (new-style) Sample."""
    ts, rec, vol, mid, name, mtype, unit, rid, uid, pid, src, flat = row
    return Sample(
        mid,
        name,
        mtype,
        unit,
        vol,
        uid,
        pid,
        rid,
        src,
        iso_from_us(ts),
        None if rec is None else iso_from_us(rec),
        msgspec.Raw(flat),
    )


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(pattern: str | None, value: Any) -> bool | None:
    # MySQL REGEXP / PostgreSQL ~ semantics: a search anywhere in the value, NULL stays NULL.
    if pattern is None or value is None:
        return None
    return _compile(pattern).search(str(value)) is not None


_ENCODER = msgspec.json.Encoder(order="sorted")


def _encode_metadata(metadata: Mapping[str, Any] | None) -> bytes:
    try:
        return _ENCODER.encode(metadata or {})
    except TypeError:
        # Sets and other non-JSON values: keep a stable, lossy text form for the key.
        return _ENCODER.encode(_jsonable(metadata or {}))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


class _ResourceKey(NamedTuple):
    resource_id: str
    user_id: str | None
    project_id: str | None
    source: str | None
    metadata: bytes


class Store:
    """Samples in SQLite; thread-safe (a pool of connections, one writer at a time).

    ``db_path=None`` uses a private temporary file (deleted by ``close``) so concurrent readers
    never block each other; ``":memory:"`` keeps everything in RAM behind one connection.
    """

    def __init__(self, db_path: str | os.PathLike[str] | None = None) -> None:
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if db_path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="ceilometer-sim-")
            path = os.path.join(self._tmpdir.name, "samples.sqlite")
        else:
            path = os.fspath(db_path)
        self.path = path
        self._memory = path == ":memory:"
        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        # One connection in memory mode: every use is serialised through this lock.
        self._memory_lock = threading.RLock()
        self._write_lock = threading.RLock()
        self._all: list[sqlite3.Connection] = []
        self._meter_pks: dict[tuple[str, str, str], int] = {}
        self._resource_pks: dict[_ResourceKey, int] = {}
        self._closed = False
        self._recent: deque[tuple[str, tuple[Any, ...]]] = deque(maxlen=4)
        with self.connection() as con:
            con.executescript(_SCHEMA)
            for pk, name, mtype, unit in con.execute("SELECT pk, name, type, unit FROM meter"):
                self._meter_pks[(name, mtype, unit)] = pk
            rows = con.execute(
                "SELECT pk, resource_id, user_id, project_id, source, metadata FROM resource"
            )
            for pk, rid, uid, pid, src, meta in rows:
                self._resource_pks[_ResourceKey(rid, uid, pid, src, bytes(meta))] = pk

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        con.create_function("regexp", 2, _regexp, deterministic=True)
        if not self._memory:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-65536")
        con.execute("PRAGMA temp_store=MEMORY")
        self._all.append(con)
        return con

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection (autocommit mode) for the duration of the block."""
        if self._closed:
            raise RuntimeError("store is closed")
        if self._memory:
            with self._memory_lock:
                if not self._pool:
                    self._pool.append(self._connect())
                yield self._pool[0]
            return
        with self._pool_lock:
            con = self._pool.pop() if self._pool else None
        if con is None:
            with self._pool_lock:
                con = self._connect()
        try:
            yield con
        finally:
            if con.in_transaction:
                con.rollback()
            with self._pool_lock:
                self._pool.append(con)

    def close(self) -> None:
        """Close every connection and delete a private temporary database."""
        with self._pool_lock:
            self._closed = True
            for con in self._all:
                with contextlib.suppress(sqlite3.Error):
                    con.close()
            self._all.clear()
            self._pool.clear()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    # -- writing -------------------------------------------------------------------------------

    def _meter_pk(self, con: sqlite3.Connection, name: str, mtype: str, unit: str) -> int:
        key = (name, mtype, unit)
        pk = self._meter_pks.get(key)
        if pk is None:
            cur = con.execute("INSERT INTO meter (name, type, unit) VALUES (?, ?, ?)", key)
            pk = int(cur.lastrowid or 0)
            # Copy on write: readers iterate the dict without the write lock.
            self._meter_pks = {**self._meter_pks, key: pk}
        return pk

    def _resource_pk(
        self,
        con: sqlite3.Connection,
        key: _ResourceKey,
        metadata: Mapping[str, Any] | None,
    ) -> int:
        pk = self._resource_pks.get(key)
        if pk is not None:
            return pk
        flat = msgspec.json.encode(flatten_metadata(metadata)).decode()
        cur = con.execute(
            "INSERT INTO resource (resource_id, user_id, project_id, source, metadata, flat)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (*key[:4], key.metadata, flat),
        )
        pk = int(cur.lastrowid or 0)
        meta_rows = []
        for mkey, value in dict_to_keyval(metadata or {}):
            vtype = _VTYPES.get(type(value))
            if vtype is not None:
                meta_rows.append((pk, mkey, vtype, value))
        con.executemany(
            "INSERT INTO meta (res_pk, key, vtype, value) VALUES (?, ?, ?, ?)", meta_rows
        )
        self._resource_pks[key] = pk
        return pk

    def _insert_batch(self, rows: list[tuple[Any, ...]]) -> None:
        with self._write_lock, self.connection() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                batch = [
                    (
                        self._meter_pk(con, name, mtype, unit),
                        self._resource_pk(con, rkey, meta),
                        ts,
                        rec,
                        vol,
                        mid,
                        sig,
                    )
                    for name, mtype, unit, rkey, meta, ts, rec, vol, mid, sig in rows
                ]
                # One writer and no deletes: new rows get consecutive primary keys.
                base = con.execute("SELECT coalesce(max(pk), 0) FROM sample").fetchone()[0]
                con.executemany(
                    "INSERT INTO sample (pk, meter_pk, res_pk, ts, recorded, volume, message_id,"
                    " signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(base + i + 1, *row) for i, row in enumerate(batch)],
                )
                # The newest sample of each (meter, resource) pair, for GET /v2/meters.
                latest: dict[tuple[int, str], int] = {}
                for i, (row, raw) in enumerate(zip(batch, rows, strict=True)):
                    latest[(row[0], raw[3].resource_id)] = base + i + 1
                con.executemany(
                    "INSERT OR REPLACE INTO latest (meter_pk, resource_id, sample_pk)"
                    " VALUES (?, ?, ?)",
                    [(m, r, pk) for (m, r), pk in latest.items()],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                # Caches may name rows that the rollback just removed.
                self._reload_caches(con)
                raise

    def _reload_caches(self, con: sqlite3.Connection) -> None:
        self._meter_pks = {
            (n, t, u): pk for pk, n, t, u in con.execute("SELECT pk, name, type, unit FROM meter")
        }
        self._resource_pks = {
            _ResourceKey(rid, uid, pid, src, bytes(meta)): pk
            for pk, rid, uid, pid, src, meta in con.execute(
                "SELECT pk, resource_id, user_id, project_id, source, metadata FROM resource"
            )
        }

    def add_samples(self, samples: Iterable[Mapping[str, Any]]) -> int:
        """Insert storage-form sample dicts in batches; returns how many were inserted.

        Keys: counter_name, counter_type, counter_unit, counter_volume, message_id, project_id,
        user_id, resource_id, source, timestamp (datetime or ISO string; naive means UTC),
        recorded_at (same, or None), resource_metadata (nested dict), message_signature (opt.).

        A sample without a ``recorded_at`` key gets the insert time, as Ceilometer's storage
        driver gives it (the column defaults to utcnow). An explicit ``recorded_at: None`` stays
        null: a row from before SQL migration 029, or a MongoDB one without the field (spec 1.2).
        """
        total = 0
        batch: list[tuple[Any, ...]] = []
        for s in samples:
            batch.append(self._storage_tuple(s))
            if len(batch) >= BATCH_SIZE:
                self._insert_batch(batch)
                total += len(batch)
                batch = []
        if batch:
            self._insert_batch(batch)
            total += len(batch)
        return total

    @staticmethod
    def _storage_tuple(s: Mapping[str, Any]) -> tuple[Any, ...]:
        meta = s.get("resource_metadata") or {}
        recorded = s["recorded_at"] if "recorded_at" in s else _utcnow()
        volume = s.get("counter_volume")
        return (
            str(s["counter_name"]),
            str(s["counter_type"]),
            str(s.get("counter_unit") or ""),
            _ResourceKey(
                str(s["resource_id"]),
                s.get("user_id"),
                s.get("project_id"),
                s.get("source"),
                _encode_metadata(meta),
            ),
            meta,
            parse_storage_timestamp(s["timestamp"]),
            None if recorded is None else parse_storage_timestamp(recorded),
            None if volume is None else float(volume),
            str(s["message_id"]),
            s.get("message_signature"),
        )

    def load(self, spec: CloudSpec | None = None) -> int:
        """Generate ``spec``'s cloud and stream it into the database; returns the count."""
        encoded: dict[int, bytes] = {}

        def rows(raws: Iterable[RawSample]) -> Iterator[tuple[Any, ...]]:
            for raw in raws:
                res = raw.resource
                # Metadata dicts are shared per resource: encode each once.
                meta_bytes = encoded.get(id(res.metadata))
                if meta_bytes is None:
                    meta_bytes = encoded[id(res.metadata)] = _encode_metadata(res.metadata)
                key = _ResourceKey(
                    res.resource_id, res.user_id, res.project_id, raw.source, meta_bytes
                )
                yield (
                    raw.counter_name,
                    raw.counter_type,
                    raw.counter_unit,
                    key,
                    res.metadata,
                    raw.timestamp_us,
                    raw.recorded_at_us,
                    raw.counter_volume,
                    raw.message_id,
                    None,
                )

        total = 0
        batch: list[tuple[Any, ...]] = []
        for row in rows(iter_raw_samples(spec or CloudSpec())):
            batch.append(row)
            if len(batch) >= BATCH_SIZE:
                self._insert_batch(batch)
                total += len(batch)
                batch = []
        if batch:
            self._insert_batch(batch)
            total += len(batch)
        return total

    # -- reading -------------------------------------------------------------------------------

    def meter_cache(self) -> dict[tuple[str, str, str], int]:
        """(name, type, unit) -> meter primary key, for every meter ever stored."""
        return dict(self._meter_pks)

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run one read query and return all rows."""
        self._recent.append((sql, tuple(params)))
        with self.connection() as con:
            return con.execute(sql, params).fetchall()

    def last_plans(self) -> list[str]:
        """EXPLAIN QUERY PLAN details of the last few read queries (to check index use)."""
        out = []
        with self.connection() as con:
            for sql, params in list(self._recent):
                rows = con.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
                out.append("; ".join(str(r[-1]) for r in rows))
        return out

    def newest_timestamp(self) -> dt.datetime | None:
        """The timestamp of the newest sample (UTC), or None when the store is empty."""
        rows = self.fetch("SELECT max(ts) FROM sample", ())
        newest = rows[0][0] if rows else None
        return None if newest is None else from_us(int(newest))

    def count(self, meter: str | None = None) -> int:
        """Number of samples, of one meter or of all."""
        if meter is None:
            rows = self.fetch("SELECT count(*) FROM sample", ())
        else:
            rows = self.fetch(
                "SELECT count(*) FROM sample"
                " WHERE meter_pk IN (SELECT pk FROM meter WHERE name = ?)",
                (meter,),
            )
        return int(rows[0][0])

    def meters(self) -> list[str]:
        """Names of the meters that have at least one sample, sorted."""
        rows = self.fetch(
            "SELECT DISTINCT m.name FROM meter m WHERE EXISTS"
            " (SELECT 1 FROM sample s WHERE s.meter_pk = m.pk) ORDER BY m.name",
            (),
        )
        return [r[0] for r in rows]

    def iter_rows(self, meter: str | None = None) -> Iterator[SampleRow]:
        """Joined rows ordered by (timestamp, message_id), fetched in keyset-paged batches."""
        where = "" if meter is None else " AND m.name = ?"
        base = [] if meter is None else [meter]
        last: tuple[int, str] | None = None
        params: list[Any]
        while True:
            if last is None:
                cond, params = "1 = 1", list(base)
            else:
                cond = "(s.ts > ? OR (s.ts = ? AND s.message_id > ?))"
                params = [last[0], last[0], last[1], *base]
            rows = self.fetch(
                f"SELECT {SAMPLE_COLUMNS} FROM {SAMPLE_FROM} WHERE {cond}{where}"  # noqa: S608
                f" ORDER BY s.ts, s.message_id LIMIT {BATCH_SIZE}",
                params,
            )
            for row in rows:
                yield SampleRow(*row)
            if len(rows) < BATCH_SIZE:
                return
            last = (rows[-1][0], rows[-1][3])

    def iter_samples(self, meter: str | None = None) -> Iterator[dict[str, Any]]:
        """API-form OldSample dicts (as GET /v2/meters/<name> prints them), oldest first.

        Ordered by (timestamp, message_id) so tests can compare exports sample for sample.
        """
        for row in self.iter_rows(meter):
            yield msgspec.json.decode(msgspec.json.encode(row_to_old_sample(row)))
