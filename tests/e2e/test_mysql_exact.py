"""MySQL/MariaDB exact in one command: the mapper that prepares target-mysql's tables, in a pipe
and in the Meltano job `ceilometer-to-mysql`, from an empty database, value for value."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tap_ceilometer.mysql_exact import column_type, create_statement, widen_statement
from tap_ceilometer.naming import stream_names
from tap_ceilometer.v2.schema import SAMPLE_SCHEMA
from tests.support.tap import (
    DIMENSION_STREAMS,
    comparable,
    expected_records,
    prepared_tap_command,
    sample,
    tap_config,
)
from tests.support.targets import (
    MELTANO,
    MYSQL_EXACT_MAPPER,
    REPO_ROOT,
    column_types,
    fresh_namespace,
    meltano_env,
    primary_key,
    read_table,
    run_target,
    schema_message,
    table_names,
    target_config,
    target_env,
    target_executable,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from ceilometer_simulator import Simulator

pytestmark = pytest.mark.e2e

T0 = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
EXTREMES = [1e-300, 12345678901.25, -2.5e300, 0.1, 5e-324, 1.25e308]


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_namespace("target-mysql", prefix="exact") as name:
        yield name


def _add(sim: Simulator, meter: str, count: int, offset: int = 0) -> None:
    sim.store.add_samples(
        sample(
            meter,
            T0 + timedelta(seconds=(offset + i) // 2, microseconds=7 * i),
            offset + i,
            counter_volume=EXTREMES[i % len(EXTREMES)] * (1 + i / 1024),
        )
        for i in range(count)
    )


def _assert_exact(sim: Simulator, database: str, meters: list[str]) -> None:
    names = stream_names(meters)
    # The dimension tables go through the mapper too (their rows change: see mysql_exact.py).
    assert table_names("target-mysql", database) == sorted([*names.values(), *DIMENSION_STREAMS])
    for meter in meters:
        table = names[meter]
        types = column_types("target-mysql", database, table)
        assert types["counter_volume"] == "double"
        assert types["timestamp"] == types["recorded_at"] == "datetime(6)"
        assert primary_key("target-mysql", database, table) == ["message_id"]
        by_id = {
            row["message_id"]: comparable(row)
            for row in read_table("target-mysql", database, table)
        }
        assert by_id == expected_records(sim, meter)


def test_the_sql_the_mapper_writes_matches_the_target_s_own_columns() -> None:
    """thk-target-mysql's to_sql_type, with DOUBLE and DATETIME(6) instead of FLOAT and DATETIME."""
    props = SAMPLE_SCHEMA["properties"]
    assert column_type(props["counter_volume"]) == "DOUBLE"
    assert column_type(props["timestamp"]) == column_type(props["recorded_at"]) == "DATETIME(6)"
    assert column_type(props["message_id"]) == "VARCHAR(128)"
    assert column_type(props["project_id"]) == "VARCHAR(1000)"
    assert column_type(props["resource_metadata"]) == "JSON"
    statement = create_statement("cpu_util", SAMPLE_SCHEMA, ["message_id"])
    assert "CONSTRAINT `cpu_util_PK` PRIMARY KEY (`message_id`)" in statement
    existing = {"counter_volume": "float", "timestamp": "datetime", "recorded_at": "datetime(6)"}
    assert widen_statement("cpu_util", SAMPLE_SCHEMA, existing) == (
        "ALTER TABLE `cpu_util` MODIFY `counter_volume` DOUBLE NULL,"
        " MODIFY `timestamp` DATETIME(6) NULL"
    )


def test_a_pipe_through_the_mapper_is_exact_from_an_empty_database(
    sim: Simulator, database: str, tmp_path: Path
) -> None:
    """The README's pipe, as pasted: tap | mapper | target-mysql, then a new meter next run."""
    _add(sim, "disk.read.bytes", 300)
    # config/target-mysql.example.json with its credentials and database filled in.
    example = json.loads((REPO_ROOT / "config" / "target-mysql.example.json").read_text())
    url = f"mysql+mysqlconnector://root@127.0.0.1:3306/{database}?charset=utf8mb4"
    assert example["sqlalchemy_url"].startswith("mysql+mysqlconnector://")
    config_path = tmp_path / "target-mysql.json"
    config_path.write_text(json.dumps({**example, "sqlalchemy_url": url, "database": database}))
    tap_cfg = tap_config(sim, page_size=70)

    def load(state: dict[str, Any] | None) -> dict[str, Any]:
        tap = subprocess.Popen(
            prepared_tap_command(tmp_path, tap_cfg, state), stdout=subprocess.PIPE
        )
        mapper = subprocess.Popen(
            [str(MYSQL_EXACT_MAPPER), "--config", str(config_path)],
            stdin=tap.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert tap.stdout is not None
        assert mapper.stdout is not None
        tap.stdout.close()
        target = subprocess.run(
            [str(target_executable("target-mysql")), "--config", str(config_path)],
            stdin=mapper.stdout,
            capture_output=True,
            env=target_env("target-mysql"),
            cwd=REPO_ROOT,
            check=False,
        )
        assert target.returncode == 0, target.stderr[-4000:]
        assert mapper.wait(timeout=60) == 0
        assert tap.wait(timeout=60) == 0
        assert len(target.stderr) < 200_000, "the target's log is bounded"
        states = [json.loads(line) for line in target.stdout.splitlines() if line.strip()]
        return states[-1]

    state = load(None)
    _assert_exact(sim, database, ["disk.read.bytes"])
    _add(sim, "disk.read.bytes", 20, offset=300)
    _add(sim, "volume.size", 50)  # a meter that appears for the first time
    load(state)
    _assert_exact(sim, database, ["disk.read.bytes", "volume.size"])


def test_a_table_the_target_already_made_is_widened(database: str, tmp_path: Path) -> None:
    """A table target-mysql created (FLOAT, DATETIME) before the mapper was used."""
    run_target("target-mysql", database, [schema_message("cpu_util")])
    assert column_types("target-mysql", database, "cpu_util")["counter_volume"] == "float"
    config_path = tmp_path / "target-mysql.json"
    config_path.write_text(json.dumps(target_config("target-mysql", database)), encoding="utf-8")
    done = subprocess.run(
        [str(MYSQL_EXACT_MAPPER), "--config", str(config_path)],
        input=json.dumps(schema_message("cpu_util")) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == schema_message("cpu_util"), "messages pass unchanged"
    types = column_types("target-mysql", database, "cpu_util")
    assert types["counter_volume"] == "double"
    assert types["timestamp"] == "datetime(6)"


def test_a_mapper_that_cannot_reach_mysql_says_so_in_one_line(tmp_path: Path) -> None:
    config_path = tmp_path / "bad.json"
    config_path.write_text(
        json.dumps({"sqlalchemy_url": "mysql+mysqlconnector://root@127.0.0.1:9/nowhere"}),
        encoding="utf-8",
    )
    done = subprocess.run(
        [str(MYSQL_EXACT_MAPPER), "--config", str(config_path)],
        input="",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Cannot open MySQL database 'nowhere' at 127.0.0.1:9" in lines[0]


def test_meltano_job_ceilometer_to_mysql_is_exact_in_one_command(
    sim: Simulator, database: str
) -> None:
    """`meltano --environment prod run ceilometer-to-mysql` into an empty database, settings from
    TAP_CEILOMETER_* and TARGET_MYSQL_* variables; then again after a new meter appears."""
    _add(sim, "cpu_util", 400)
    suffix = uuid.uuid4().hex[:8]
    env = meltano_env(
        sim.auth_url,
        TARGET_MYSQL_SQLALCHEMY_URL=(
            f"mysql+mysqlconnector://root@127.0.0.1:3306/{database}?charset=utf8mb4"
        ),
    )
    command = [
        str(MELTANO),
        "--environment",
        "prod",
        "run",
        "--state-id-suffix",
        suffix,
        "ceilometer-to-mysql",
    ]

    def run() -> None:
        done = subprocess.run(
            command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr[-4000:]
        assert len(done.stderr) < 500_000, "the target's log is capped"

    run()
    _assert_exact(sim, database, ["cpu_util"])
    _add(sim, "cpu_util", 30, offset=400)
    _add(sim, "memory.usage", 60)  # a meter that appears for the first time
    run()
    _assert_exact(sim, database, ["cpu_util", "memory.usage"])
