"""A continuously running tap into target-postgres, as the stock target actually behaves.

Read from singer-sdk's Target (0.54 in target-postgres, 0.30 in target-mysql) and pinned here: a
sink that reaches batch_size_rows is written at once, but the target confirms STATE only when it
drains every sink, which happens at the end of its input, or when a record arrives more than five
minutes after the last full drain. So a tap that keeps running gets its rows stored batch by batch
while its bookmark is confirmed at exit (or every five minutes while records flow); README.md,
"Operating it", draws the consequences.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tap_ceilometer.timestamps import utc_iso
from tap_ceilometer.v2.schema import SAMPLE_SCHEMA
from tests.support.tap import expected_records, sample, tap_command, tap_config
from tests.support.targets import (
    fresh_namespace,
    read_table,
    target_config,
    target_env,
    target_executable,
)

if TYPE_CHECKING:
    from pathlib import Path

    from ceilometer_simulator import Simulator

pytestmark = pytest.mark.e2e
T0 = datetime(2024, 8, 1, tzinfo=UTC)
TARGET = "target-postgres"


def _rows(namespace: str) -> dict[str, dict[str, Any]]:
    try:
        rows = read_table(TARGET, namespace, "cpu_util")
    except Exception:
        return {}
    return {r["message_id"]: {c: r[c] for c in SAMPLE_SCHEMA["properties"]} for r in rows}


def test_rows_land_per_batch_while_the_tap_keeps_running_and_state_at_exit(
    sim: Simulator, tmp_path: Path
):
    sim.store.add_samples(sample("cpu_util", T0 + timedelta(seconds=i), i) for i in range(450))
    with fresh_namespace(TARGET, prefix="poll") as namespace:
        tap_path = tmp_path / "tap.json"
        tap_path.write_text(json.dumps(tap_config(sim, poll_interval=1, page_size=50)))
        # A small batch: the SDK target flushes (and confirms state) every batch_size_rows rows,
        # or when a record arrives more than five minutes after its last flush.
        config = {**target_config(TARGET, namespace), "batch_size_rows": 100}
        target_path = tmp_path / "target.json"
        target_path.write_text(json.dumps(config))
        tap = subprocess.Popen(
            tap_command(tap_path), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        loader = subprocess.Popen(
            [str(target_executable(TARGET)), "--config", str(target_path)],
            stdin=tap.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=target_env(TARGET),
        )
        assert loader.stdout is not None
        states: list[dict[str, Any]] = []
        reader = threading.Thread(
            target=lambda: states.extend(json.loads(line) for line in loader.stdout),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        deadline = time.monotonic() + 60
        while len(_rows(namespace)) < 400:
            assert time.monotonic() < deadline, "no batch was written while the tap ran"
            assert tap.poll() is None
            time.sleep(0.2)
        # Four full batches are stored, the rest waits in the target, and nothing is confirmed yet.
        time.sleep(2)
        assert len(_rows(namespace)) == 400
        assert states == []
        # A second sweep brings new samples while the first ones are already stored.
        sim.store.add_samples(
            sample("cpu_util", T0 + timedelta(hours=1, seconds=i), 1_000 + i) for i in range(120)
        )
        tap.send_signal(signal.SIGTERM)
        assert tap.wait(timeout=60) == 0
        assert loader.wait(timeout=120) == 0
        reader.join(timeout=10)
        assert len(states) == 1, "the target confirms once, when its input ends"
        stored = _rows(namespace)
        cloud = expected_records(sim, "cpu_util")
        # Everything the tap sent is stored; anything it did not send yet is after its bookmark.
        assert len(stored) >= 450
        assert set(stored) <= set(cloud)
        bookmark = states[-1]["bookmarks"]["cpu_util"]["replication_key_value"]
        assert {k for k, v in cloud.items() if utc_iso(v["timestamp"]) <= bookmark} <= set(stored)
        assert all(stored[k] == cloud[k] for k in stored)
