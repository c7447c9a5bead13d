"""tap-ceilometer | real target | real database, compared sample for sample with the cloud."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from ceilometer_simulator import CloudSpec
from tap_ceilometer.naming import stream_names
from tap_ceilometer.v2.schema import SAMPLE_SCHEMA
from tests.support import targets
from tests.support.pipeline import run_pipeline
from tests.support.tap import (
    DIMENSION_STREAMS,
    TAP_EXECUTABLE,
    cloud_samples,
    sample,
    samples_only_catalog,
    tap_config,
)
from tests.support.targets import (
    TARGETS,
    backfill_environment,
    fresh_namespace,
    prepare_tables,
    read_table,
    ready_for_backfill,
    stored_samples,
    table_names,
    target_env,
    target_executable,
    write_target_config,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from ceilometer_simulator import Simulator

pytestmark = pytest.mark.e2e

COLUMNS = tuple(SAMPLE_SCHEMA["properties"])
T0 = datetime(2024, 5, 1, tzinfo=UTC)
METERS = ["cpu_util", "disk.read.bytes", "network.incoming.bytes", "image.size", "instance:m1.tiny"]


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def namespace(target: str) -> Iterator[str]:
    with fresh_namespace(target, prefix="e2e") as name:  # type: ignore[arg-type]
        yield name


def _load(
    target: str,
    namespace: str,
    config: dict[str, Any],
    workdir: Path,
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`tap-ceilometer --config c | target --config t`; returns the state the target confirmed."""
    run = run_pipeline(config, {target: namespace}, workdir, state=state)
    assert run.tap_returncode == 0, run.tap_log
    assert run.confirmed_state is not None
    return run.confirmed_state


def _prepare(target: str, namespace: str, meters: list[str]) -> None:
    prepare_tables(target, namespace, stream_names(meters).values())  # type: ignore[arg-type]


def test_full_export_is_exact(sim: Simulator, target: str, namespace: str, tmp_path: Path):
    sim.store.load(
        CloudSpec(
            seed=7,
            samples=3_000,
            meters=METERS,
            start=T0,
            end=T0 + timedelta(days=2),
            tie_fraction=0.3,
            tie_size=400,
            whole_second_fraction=0.3,
            extreme_volumes=True,
        )
    )
    _prepare(target, namespace, METERS)
    _load(target, namespace, tap_config(sim, page_size=250), tmp_path)
    assert stored_samples(target, namespace, METERS) == cloud_samples(sim, METERS)


def test_runs_add_only_what_is_new_and_catch_late_samples(
    sim: Simulator, target: str, namespace: str, tmp_path: Path
):
    meters = ["volume.size", "cpu_util"]
    sim.store.add_samples(
        sample(meter, T0 + timedelta(seconds=i), i) for meter in meters for i in range(300)
    )
    _prepare(target, namespace, meters)
    config = tap_config(sim, page_size=120, lookback_window=3600)
    state = _load(target, namespace, config, tmp_path)
    # New samples, a 2,500-sample tie, and one recorded late with an older timestamp.
    sim.store.add_samples(
        sample("cpu_util", T0 + timedelta(hours=1), 1_000 + i) for i in range(2_500)
    )
    sim.store.add_samples(
        [
            sample(
                "volume.size", T0 + timedelta(minutes=2), 9_999, recorded_at=T0 + timedelta(days=1)
            ),
            sample("volume.size", T0 + timedelta(hours=2, microseconds=1), 10_000),
        ]
    )
    _load(target, namespace, config, tmp_path, state)
    assert stored_samples(target, namespace, meters) == cloud_samples(sim, meters)


@pytest.mark.parametrize(
    "kill_after",
    [150, 2_000, 2_001, 2_750],
    ids=["first-page", "end-of-first-meter", "start-of-second-meter", "inside-a-tie"],
)
def test_a_run_killed_midway_resumes_without_loss(
    sim: Simulator, target: str, namespace: str, tmp_path: Path, kill_after: int
):
    meters = ["disk.read.bytes", "disk.write.bytes"]
    sim.store.add_samples(
        sample(meter, T0 + timedelta(seconds=i // 500), i) for meter in meters for i in range(2_000)
    )
    _prepare(target, namespace, meters)
    config = tap_config(sim, page_size=100)
    killed = run_pipeline(config, {target: namespace}, tmp_path, kill_after=kill_after)
    assert len(killed.records) == kill_after  # SIGKILL: no chance to write anything more
    confirmed = killed.confirmed[target]
    partial = stored_samples(target, namespace, meters)
    assert 0 < len(partial) <= kill_after
    _load(target, namespace, config, tmp_path, confirmed[-1] if confirmed else None)
    assert stored_samples(target, namespace, meters) == cloud_samples(sim, meters)


def test_selections_export_only_what_they_select(
    sim: Simulator, target: str, namespace: str, tmp_path: Path
):
    meters = ["memory.usage", "vcpus"]
    sim.store.add_samples(
        sample(meter, T0 + timedelta(seconds=i), i, project_id=f"project-{i % 4}")
        for meter in meters
        for i in range(400)
    )
    selections = [
        {"name": "tenant-1", "query": [{"field": "project_id", "op": "eq", "value": "project-1"}]},
        {
            "name": "res-2",
            "query": [{"field": "resource_id", "value": "resource-2"}],
            "meters": ["vcpus"],
        },
    ]
    _prepare(target, namespace, meters)
    _load(target, namespace, tap_config(sim, selections=selections, page_size=50), tmp_path)
    cloud = cloud_samples(sim, meters)
    wanted = {
        key: row
        for key, row in cloud.items()
        if row["project_id"] == "project-1"
        or (row["counter_name"] == "vcpus" and row["resource_id"] == "resource-2")
    }
    assert stored_samples(target, namespace, meters) == wanted


def test_a_backfill_beside_the_incremental_export_adds_the_past_once(
    sim: Simulator, target: str, namespace: str, tmp_path: Path
):
    """README "Operating it": a backfill is a run of its own (no state, start and end date)."""
    meter = ["image.size"]
    sim.store.add_samples(sample("image.size", T0 + timedelta(minutes=i), i) for i in range(600))
    _prepare(target, namespace, meter)
    since = T0 + timedelta(minutes=400)
    state = _load(target, namespace, tap_config(sim, start_date=since.isoformat()), tmp_path)
    assert len(stored_samples(target, namespace, meter)) == 200
    # Backfill the past, overlapping the exported range by a minute: the overlap is stored once.
    backfill = tap_config(
        sim,
        start_date=T0.isoformat(),
        end_date=(since + timedelta(minutes=1, seconds=30)).isoformat(),
    )
    _load(target, namespace, backfill, tmp_path)
    assert len(stored_samples(target, namespace, meter)) == 600
    # The incremental bookmark did not move back: the next run adds only what is new.
    sim.store.add_samples(
        sample("image.size", T0 + timedelta(minutes=600 + i), 600 + i) for i in range(50)
    )
    _load(target, namespace, tap_config(sim, start_date=since.isoformat()), tmp_path, state)
    assert stored_samples(target, namespace, meter) == cloud_samples(sim, meter)


def test_the_single_layout_loads_one_table_killed_and_resumed(
    sim: Simulator, target: str, namespace: str, tmp_path: Path
):
    """`layout: single`: every meter in table `samples`; a run killed inside a tie of the
    second meter resumes from the confirmed state, and the table is the cloud, sample for
    sample."""
    meters = ["disk.read.bytes", "network.outgoing.bytes", "vcpus"]
    sim.store.add_samples(
        sample(meter, T0 + timedelta(seconds=i // 300), i, project_id=f"p{i % 3}")
        for meter in meters
        for i in range(900)
    )
    _prepare(target, namespace, ["samples"])
    config = tap_config(sim, page_size=100, layout="single")
    killed = run_pipeline(config, {target: namespace}, tmp_path, kill_after=1_250)
    assert len(killed.records) == 1_250  # the targets saw no line after the kill
    partial = read_table(target, namespace, "samples")  # type: ignore[arg-type]
    assert 0 < len(partial) <= 1_250
    state = _load(target, namespace, config, tmp_path, killed.state(target))  # type: ignore[arg-type]
    rows = {
        row["message_id"]: {c: row[c] for c in COLUMNS}
        for row in read_table(target, namespace, "samples")
    }  # type: ignore[arg-type]
    assert rows == cloud_samples(sim, meters)
    assert table_names(target, namespace) == sorted(["samples", *DIMENSION_STREAMS])  # type: ignore[arg-type]
    contexts = [p["context"] for p in state["bookmarks"]["samples"]["partitions"]]
    assert sorted(c["meter"] for c in contexts) == sorted(meters)


def test_three_partitions_in_parallel_load_the_whole_cloud_once(sim: Simulator, tmp_path: Path):
    """`partition` 0, 1 and 2 of 3, three tap | target-postgres pipelines at once into one
    schema: every sample in exactly one table row, each partition with its own state."""
    meters = [f"meter.{i}" for i in range(9)] + ["cpu_util", "disk.read.bytes"]
    sim.store.add_samples(
        sample(meter, T0 + timedelta(seconds=i // 5), i) for meter in meters for i in range(300)
    )
    with fresh_namespace("target-postgres", prefix="part") as namespace:

        def load(index: int) -> dict[str, Any] | None:
            workdir = tmp_path / f"part-{index}"
            workdir.mkdir()
            config = tap_config(sim, page_size=100, partition={"index": index, "count": 3})
            run = run_pipeline(config, {"target-postgres": namespace}, workdir)
            assert run.tap_returncode == 0, run.tap_log[-3000:]
            return run.confirmed_state

        with ThreadPoolExecutor(max_workers=3) as pool:
            states = list(pool.map(load, range(3)))
        assert stored_samples("target-postgres", namespace, meters) == cloud_samples(sim, meters)
        owned = [set((state or {})["bookmarks"]) - DIMENSION_STREAMS for state in states]
        assert all(owned)
        # The dimensions come from partition 0 alone: one row per Keystone project.
        projects = read_table("target-postgres", namespace, "projects", order_by="id")
        assert sorted(p["id"] for p in projects) == sorted(sim.keystone.identities.projects)
        assert set.union(*owned) == set(stream_names(meters).values())
        assert sum(len(o) for o in owned) == len(meters)  # no meter in two partitions


def _make_tables(config: dict[str, Any], namespace: str, tmp_path: Path) -> None:
    """README "Scaling out": `tap-ceilometer --test=schema | target-postgres` makes the tables."""
    schema_only = tmp_path / "schema-only"
    schema_only.mkdir()
    target_file = write_target_config("target-postgres", namespace, schema_only)
    config_file = schema_only / "tap.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    command = (
        f"{TAP_EXECUTABLE} --config {config_file} --test=schema"
        f" | {target_executable('target-postgres')} --config {target_file}"
    )
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        env={**os.environ, **target_env("target-postgres")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_time_slices_of_one_meter_in_parallel_load_it_once(sim: Simulator, tmp_path: Path):
    """A backfill of one big meter in three start_date/end_date slices, three tap |
    target-postgres pipelines at once into one schema (README "Scaling out"): every sample
    in exactly one row, samples on the slice boundaries included."""
    sim.store.add_samples(
        sample("cpu_util", T0 + timedelta(minutes=i), i, resource_id=f"r{i % 7}")
        for i in range(3 * 600)
    )
    bounds = [None, "2024-05-01T10:00:00Z", "2024-05-01T20:00:00Z", None]
    with fresh_namespace("target-postgres", prefix="slice") as namespace:
        # As README "Scaling out" says: the tables first (`--test=schema` | target), so that
        # the parallel targets do not race to create them.
        _make_tables(tap_config(sim, meters=["cpu_util"]), namespace, tmp_path)
        assert "cpu_util" in table_names("target-postgres", namespace)

        def load(index: int) -> dict[str, Any] | None:
            workdir = tmp_path / f"slice-{index}"
            workdir.mkdir()
            config = tap_config(sim, page_size=100, meters=["cpu_util"])
            if bounds[index]:
                config["start_date"] = bounds[index]
            if bounds[index + 1]:
                config["end_date"] = bounds[index + 1]
            # One slice exports the dimension streams: parallel upserts of the same rows
            # collide in the target.
            catalog = samples_only_catalog(config) if index else None
            run = run_pipeline(config, {"target-postgres": namespace}, workdir, catalog=catalog)
            assert run.tap_returncode == 0, run.tap_log[-3000:]
            return run.confirmed_state

        with ThreadPoolExecutor(max_workers=3) as pool:
            states = list(pool.map(load, range(3)))
        assert all(states)
        assert stored_samples("target-postgres", namespace, ["cpu_util"]) == cloud_samples(
            sim, ["cpu_util"]
        )


@pytest.mark.parametrize("recipe", ["sdk-batch", "backfill"])
def test_batch_messages_load_exactly_and_survive_a_kill(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recipe: str
):
    """BATCH messages (jsonl files the target reads) instead of RECORD lines; `backfill` adds
    the rest of meltano.yml's backfill environment (its batch_config, target settings and
    PGOPTIONS, the tables made first and readied by config/target-postgres-backfill.sql). The
    tap gets SIGKILL after a few batches; the rerun from the state target-postgres confirmed
    leaves every sample in exactly one row, and a third run that re-sends every sample changes
    none."""
    meters = ["cpu_util", "disk.read.bytes", "image.size"]
    sim.store.add_samples(
        sample(meter, T0 + timedelta(seconds=i // 4), i, resource_id=f"r{i % 5}")
        for meter in meters
        for i in range(900)
    )
    batch_config: dict[str, Any] = {"encoding": {"format": "jsonl", "compression": "gzip"}}
    if recipe == "backfill":
        batch_config, settings, env = backfill_environment()
        assert env["PGOPTIONS"]
        for name, value in env.items():
            monkeypatch.setenv(name, value)  # the targets inherit it (target_env)
        # The pipeline's targets get the dev environment's config (targets.target_config);
        # here with the backfill environment's settings on top, as Meltano merges them.
        dev_config = targets.target_config
        monkeypatch.setattr(
            targets, "target_config", lambda target, ns: {**dev_config(target, ns), **settings}
        )
    batch_config = {
        **batch_config,
        "storage": {"root": (tmp_path / "batches").as_uri(), "prefix": "batch-"},
        "batch_size": 200,
    }
    config = tap_config(sim, page_size=100, meters=meters, batch_config=batch_config)
    with fresh_namespace("target-postgres", prefix="batch") as namespace:
        if recipe == "backfill":
            _make_tables(tap_config(sim, meters=meters), namespace, tmp_path)
            assert set(stream_names(meters).values()) <= ready_for_backfill(namespace)
        killed_dir, rerun_dir = tmp_path / "killed", tmp_path / "rerun"
        killed_dir.mkdir()
        rerun_dir.mkdir()
        killed = run_pipeline(
            config, {"target-postgres": namespace}, killed_dir, kill_after_batches=7
        )
        assert killed.tap_returncode != 0
        assert killed.records == []  # every record went in a file
        partial = stored_samples("target-postgres", namespace, meters)
        assert 0 < len(partial) < 3 * 900
        state = killed.state("target-postgres")
        assert state is not None
        rerun = run_pipeline(config, {"target-postgres": namespace}, rerun_dir, state=state)
        assert rerun.tap_returncode == 0, rerun.tap_log[-3000:]
        assert rerun.batches > 0
        assert stored_samples("target-postgres", namespace, meters) == cloud_samples(sim, meters)
        again_dir = tmp_path / "again"
        again_dir.mkdir()
        again = run_pipeline(config, {"target-postgres": namespace}, again_dir)
        assert again.tap_returncode == 0, again.tap_log[-3000:]
        assert stored_samples("target-postgres", namespace, meters) == cloud_samples(sim, meters)
