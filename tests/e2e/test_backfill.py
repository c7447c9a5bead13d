"""README "Large backfills": meltano.yml's backfill environment and
config/target-postgres-backfill.sql, run as the README says, into the real PostgreSQL: exact,
and a changed row still changes.

(bench/backfill.py measures its speed; test_pipeline.py's BATCH test kills it midway.)
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tap_ceilometer.naming import stream_names
from tap_ceilometer.v2.schema import SAMPLE_SCHEMA
from tests.support.tap import cloud_samples, sample
from tests.support.targets import (
    MELTANO,
    REPO_ROOT,
    fresh_namespace,
    meltano_env,
    read_table,
    ready_for_backfill,
    run_target,
    schema_message,
    stored_samples,
    table_names,
)

if TYPE_CHECKING:
    from ceilometer_simulator import Simulator

pytestmark = pytest.mark.e2e

BATCHES = REPO_ROOT / ".meltano" / "run" / "batches"  # meltano.yml's backfill storage root
T0 = datetime(2024, 3, 1, tzinfo=UTC)
METERS = ["cpu_util", "memory.usage", "disk.read.bytes", "network.incoming.bytes"]
COLUMNS = tuple(SAMPLE_SCHEMA["properties"])


def _meltano_env(sim: Simulator, namespace: str) -> dict[str, str]:
    """The connection, from the environment, as a real deployment's backfill gets it."""
    return meltano_env(
        sim.auth_url,
        TARGET_POSTGRES_HOST="127.0.0.1",
        TARGET_POSTGRES_PORT="5432",
        TARGET_POSTGRES_USER="postgres",
        TARGET_POSTGRES_PASSWORD="",  # trust auth here; the target wants the key
        TARGET_POSTGRES_DATABASE="test",
        TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=namespace,
    )


def _shell(command: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, f"{command}\n{done.stderr[-4000:]}"


def test_the_backfill_recipe_with_meltano_loads_every_sample_once(sim: Simulator) -> None:
    """The tables made and readied, then 2 partitions at once with `meltano --environment
    backfill run`, each with its own state id: every sample in one row; the files were BATCH
    files; a second run after the cloud moved on adds only the new samples."""

    def add(count: int, first: int = 0) -> None:
        sim.store.add_samples(
            sample(meter, T0 + timedelta(seconds=(first + i) // 2), first + i)
            for meter in METERS
            for i in range(count)
        )

    add(700)
    before = set(BATCHES.iterdir()) if BATCHES.exists() else set()
    suffix = os.urandom(4).hex()
    with fresh_namespace("target-postgres", prefix="backfill") as namespace:
        env = _meltano_env(sim, namespace)
        melt = f"{MELTANO} --environment backfill"
        _shell(f"{melt} invoke tap-ceilometer --test=schema | {melt} invoke target-postgres", env)
        names = set(stream_names(METERS).values())
        assert names <= set(table_names("target-postgres", namespace))
        assert names <= ready_for_backfill(namespace)
        # README "Large backfills": a plugin per partition (meltano.yml), each its own state.
        parallel = " ".join(
            f"({melt} run --state-id-suffix {suffix} tap-ceilometer-part-{i} target-postgres) &"
            for i in range(2)
        )
        try:
            for count, first in ((700, 0), (50, 700)):
                if first:
                    add(count, first)
                _shell(f"{parallel} wait -n && wait -n", env)
                stored = stored_samples("target-postgres", namespace, METERS)
                expected = cloud_samples(sim, METERS)
                assert len(stored) == len(METERS) * (first + count)
                assert stored == expected
            written = set(BATCHES.iterdir()) - before
            assert written, "the samples went as BATCH files"
        finally:
            for path in set(BATCHES.iterdir()) - before if BATCHES.exists() else ():
                path.unlink()


def test_backfill_sql_still_lets_a_changed_row_change() -> None:
    """config/target-postgres-backfill.sql skips only the UPDATEs that change nothing: a row
    re-sent with another value (a Gnocchi period that moved on) is stored with that value,
    one row."""
    stream = "cpu_util"

    def record(volume: float) -> dict[str, Any]:
        row = dict.fromkeys(SAMPLE_SCHEMA["properties"])
        row |= {
            "counter_name": stream,
            "message_id": "m-1",
            "counter_volume": volume,
            "timestamp": "2024-05-01T10:00:00.000000+00:00",
            "resource_metadata": {"a": "b"},
        }
        return {"type": "RECORD", "stream": stream, "record": row}

    with fresh_namespace("target-postgres", prefix="skip") as namespace:
        run_target("target-postgres", namespace, [schema_message(stream)])
        assert stream in ready_for_backfill(namespace)
        for volume in (1.5, 1.5, 2.25):
            run_target("target-postgres", namespace, [schema_message(stream), record(volume)])
            rows = read_table("target-postgres", namespace, stream, order_by="message_id")
            assert [(r["message_id"], r["counter_volume"]) for r in rows] == [("m-1", volume)]
