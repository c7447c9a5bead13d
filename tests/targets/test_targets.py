"""The chosen Singer targets, with meltano.yml's config, keep tap-ceilometer's samples exact.

Hand-written Singer messages go into the REAL target executables that `.ci/setup-targets.sh`
installs, and the REAL PostgreSQL and MariaDB tables are read back. A different target variant,
a config change (driver, COPY, validation) or a missing exact-types step fails these tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.targets import (
    MYSQL_MAX_STREAM_NAME,
    TARGETS,
    Target,
    TargetRun,
    apply_mysql_exact_types,
    column_types,
    fresh_namespace,
    prepare_tables,
    primary_key,
    read_table,
    run_target,
    schema_message,
    table_names,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

STREAM = "disk_read_bytes"

# Doubles that a lossy path (single-precision FLOAT, DECIMAL literals clipped at 65 digits or 38
# decimals, a decimal scale) would change.
VOLUMES: dict[str, float | int] = {
    "big": 9.2e18,
    "tiny": 1e-9,
    "cents": 12345678901.25,
    "tenth": 0.1,
    "third": 1 / 3,
    "above-2**53": 9007199254740994.0,
    "most-negative": -1.7976931348623157e308,
    "subnormal": 5e-324,
    "deep-decimals": 1.2345678901234567e-25,
    "zero": 0.0,
    "json-integer": 42,
}
# The tap's two timestamp forms: with microseconds, and without when they are zero.
TIMESTAMPS = [
    "2015-09-22T14:52:54.850718+00:00",
    "2015-09-22T14:52:54+00:00",
    "2024-02-29T23:59:59.999999+00:00",
    "1970-01-01T00:00:00.000001+00:00",
    "2038-01-19T03:14:08+00:00",
]
METADATA = {
    "display_name": "vm-ünïcødé-日本-😀",
    "flavor.name": "m1.tiny",
    "properties.os.distro": 'Ubuntu "jammy"',
    "path": "C:\\temp\\x",
    "looks_like_json": '{"a": [1, 2.50]}',
    "empty": "",
}
STATE = {
    "bookmarks": {
        STREAM: {"replication_key": "timestamp", "replication_key_value": TIMESTAMPS[-1]},
    },
}


def _records() -> list[dict[str, Any]]:
    records = []
    for i, (name, volume) in enumerate(VOLUMES.items()):
        records.append(
            {
                "counter_name": "disk.read.bytes",
                "counter_type": "cumulative",
                "counter_unit": "" if i % 2 else "B",
                "counter_volume": volume,
                "message_id": f"{i:02d}-{name}",
                "project_id": "d3b1f0e2c4a54b5f9a0e6c7d8e9f0a1b",
                "resource_id": f"инстанс-{i}-😀",
                "source": "openstack",
                "timestamp": TIMESTAMPS[i % len(TIMESTAMPS)],
                "user_id": "u-1",
                "recorded_at": None if i % 3 == 0 else TIMESTAMPS[(i + 1) % len(TIMESTAMPS)],
                "resource_metadata": METADATA if i == 0 else {"i": str(i)},
            },
        )
    return records


RECORDS = _records()


def _messages() -> list[dict[str, Any]]:
    records = [{"type": "RECORD", "stream": STREAM, "record": r} for r in RECORDS]
    # The same sample twice in one batch, as a retried page would deliver it.
    return [schema_message(STREAM), *records, records[0], {"type": "STATE", "value": STATE}]


@pytest.fixture(scope="module", params=TARGETS)
def loaded(request: pytest.FixtureRequest) -> Iterator[tuple[Target, str, list[TargetRun]]]:
    """Each target, loaded twice with the same messages into a fresh schema/database."""
    target: Target = request.param
    with fresh_namespace(target) as namespace:
        prepare_tables(target, namespace, [STREAM])
        runs = [run_target(target, namespace, _messages()) for _ in range(2)]
        yield target, namespace, runs


def test_column_types(loaded: tuple[Target, str, list[TargetRun]]) -> None:
    target, namespace, _ = loaded
    types = column_types(target, namespace, STREAM)
    sample_columns = {k: types[k] for k in RECORDS[0]}
    if target == "target-postgres":
        assert sample_columns == {
            "counter_name": "text",
            "counter_type": "text",
            "counter_unit": "text",
            "counter_volume": "numeric",  # exact decimal of the double sent
            "message_id": "text",
            "project_id": "text",
            "resource_id": "text",
            "source": "text",
            "timestamp": "timestamp without time zone",  # no typmod: microseconds
            "user_id": "text",
            "recorded_at": "timestamp without time zone",
            "resource_metadata": "jsonb",
        }
    else:
        assert sample_columns == {
            "counter_name": "varchar(1000)",
            "counter_type": "varchar(1000)",
            "counter_unit": "varchar(1000)",
            "counter_volume": "double",
            "message_id": "varchar(128)",
            "project_id": "varchar(1000)",
            "resource_id": "varchar(1000)",
            "source": "varchar(1000)",
            "timestamp": "datetime(6)",
            "user_id": "varchar(1000)",
            "recorded_at": "datetime(6)",
            "resource_metadata": "longtext",  # MariaDB's JSON: longtext CHECK (json_valid(..))
        }
    assert primary_key(target, namespace, STREAM) == ["message_id"]


def test_every_value_is_exact(loaded: tuple[Target, str, list[TargetRun]]) -> None:
    target, namespace, _ = loaded
    rows = {row["message_id"]: row for row in read_table(target, namespace, STREAM)}
    assert sorted(rows) == sorted(r["message_id"] for r in RECORDS)
    for sent in RECORDS:
        row = rows[sent["message_id"]]
        got = {key: row[key] for key in sent}
        expected = {
            **sent,
            "counter_volume": float(sent["counter_volume"]),
            "timestamp": datetime.fromisoformat(sent["timestamp"]),
            "recorded_at": sent["recorded_at"] and datetime.fromisoformat(sent["recorded_at"]),
        }
        assert got == expected, target
        assert type(got["counter_volume"]) is float
        # Bit for bit, the double the tap sent (== would also accept -0.0 for 0.0).
        assert got["counter_volume"].hex() == float(sent["counter_volume"]).hex()


def test_resent_records_are_upserted(loaded: tuple[Target, str, list[TargetRun]]) -> None:
    target, namespace, _ = loaded
    # Two runs, each with one duplicate: still one row per message_id.
    assert len(read_table(target, namespace, STREAM)) == len(RECORDS)


def test_state_is_echoed(loaded: tuple[Target, str, list[TargetRun]]) -> None:
    _, _, runs = loaded
    for run in runs:
        assert run.states, run.stderr[-2000:]
        assert run.states[-1] == STATE


@pytest.mark.parametrize("target", TARGETS)
def test_stream_names_become_table_names(target: Target) -> None:
    streams = ["cpu_util", "instance_m1_tiny", "network_incoming_bytes_rate"]
    streams.append("m" * MYSQL_MAX_STREAM_NAME)  # the longest name target-mysql can load
    messages: list[dict[str, Any]] = []
    for i, stream in enumerate(streams):
        record = {**RECORDS[1], "message_id": f"id-{i}"}
        messages += [schema_message(stream), {"type": "RECORD", "stream": stream, "record": record}]
    with fresh_namespace(target) as namespace:
        prepare_tables(target, namespace, streams)
        run_target(target, namespace, messages)
        assert table_names(target, namespace) == sorted(streams)
        for i, stream in enumerate(streams):
            assert [row["message_id"] for row in read_table(target, namespace, stream)] == [
                f"id-{i}",
            ]


def test_mysql_exact_types_step_is_needed_and_idempotent() -> None:
    """Stock thk-target-mysql makes FLOAT and DATETIME; the exact-types SQL widens them once.

    If a future target version creates exact types itself, this fails: drop the step then.
    """
    target: Target = "target-mysql"
    with fresh_namespace(target) as namespace:
        run_target(target, namespace, [schema_message(STREAM), schema_message("cpu_util")])
        stock = column_types(target, namespace, STREAM)
        assert (stock["counter_volume"], stock["timestamp"], stock["recorded_at"]) == (
            "float",
            "datetime",
            "datetime",
        )
        assert apply_mysql_exact_types(namespace) == [
            f"ALTER TABLE `{table}` MODIFY `counter_volume` DOUBLE NULL, "
            "MODIFY `timestamp` DATETIME(6) NULL, MODIFY `recorded_at` DATETIME(6) NULL;"
            for table in ("cpu_util", STREAM)
        ]
        assert apply_mysql_exact_types(namespace) == []
        # A later run with the same schema keeps the widened columns.
        run_target(target, namespace, _messages())
        assert column_types(target, namespace, STREAM)["counter_volume"] == "double"
