"""orchestrate/: Dagster runs the partitions of one export in parallel (its multiprocess
executor), each from its own state, retried on failure; the real PostgreSQL then holds the
cloud sample for sample. The Celery and Kubernetes configs are validated by Dagster, not run."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from ceilometer_simulator import FaultRule
from tap_ceilometer.naming import stream_names
from tap_ceilometer.v2.schema import SAMPLE_SCHEMA
from tests.support.orchestrate import dagster_venv, execute_job, validate_config
from tests.support.tap import (
    DIMENSION_STREAMS,
    TAP_EXECUTABLE,
    expected_records,
    sample,
    tap_config,
)
from tests.support.targets import (
    BACKFILL_SQL,
    REPO_ROOT,
    backfill_environment,
    fresh_namespace,
    psql_file_command,
    read_table,
    table_names,
    target_env,
    target_executable,
    write_target_config,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ceilometer_simulator import Simulator

pytestmark = pytest.mark.e2e

T0 = datetime(2024, 9, 1, tzinfo=UTC)
METERS = [f"meter.{i}" for i in range(9)] + ["cpu_util", "disk.read.bytes"]
PARTITIONS = 3
COLUMNS = tuple(SAMPLE_SCHEMA["properties"])


@pytest.fixture
def namespace() -> Iterator[str]:
    with fresh_namespace("target-postgres", prefix="orch") as name:
        yield name


def _add(sim: Simulator, count: int, first: int = 0) -> None:
    sim.store.add_samples(
        sample(meter, T0 + timedelta(seconds=(first + i) // 3), first + i)
        for meter in METERS
        for i in range(count)
    )


def _run_config(sim: Simulator, namespace: str, workdir: Path, **tap: Any) -> dict[str, Any]:
    tap_file = workdir / "tap.json"
    tap_file.write_text(json.dumps(tap_config(sim, page_size=100, **tap)), encoding="utf-8")
    target_file = write_target_config("target-postgres", namespace, workdir)
    return {
        "resources": {
            "export": {
                "config": {
                    "tap_config": str(tap_file),
                    "target_config": str(target_file),
                    "state_dir": str(workdir / "state"),
                    "partitions": PARTITIONS,
                    "tap_command": [str(TAP_EXECUTABLE)],
                    "target_command": [str(target_executable("target-postgres"))],
                    "target_env": target_env("target-postgres"),
                }
            }
        },
        "execution": {"config": {"max_concurrent": PARTITIONS}},
    }


def _assert_database_is_the_cloud(sim: Simulator, namespace: str) -> None:
    names = stream_names(METERS)
    assert set(table_names("target-postgres", namespace)) == {*names.values(), *DIMENSION_STREAMS}
    for meter in METERS:
        rows = read_table("target-postgres", namespace, names[meter])
        assert len(rows) == len({r["message_id"] for r in rows})
        stored = {r["message_id"]: {c: r[c] for c in COLUMNS} for r in rows}
        assert stored == expected_records(sim, meter)


def _attempts(workdir: Path) -> list[dict[str, Any]]:
    lines = []
    for path in sorted((workdir / "state").glob("partition-*.attempts.jsonl")):
        lines += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return lines


def _bookmarks(workdir: Path) -> list[set[str]]:
    return [
        set(
            json.loads((workdir / "state" / f"partition-{i}-of-{PARTITIONS}.json").read_text())[
                "bookmarks"
            ]
        )
        - DIMENSION_STREAMS
        for i in range(PARTITIONS)
    ]


def test_three_partitions_run_in_parallel_and_resume_from_their_own_states(
    sim: Simulator, namespace: str, tmp_path: Path
) -> None:
    _add(sim, 300)
    config = _run_config(sim, namespace, tmp_path)
    first = execute_job(config, tmp_path)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    _assert_database_is_the_cloud(sim, namespace)
    runs = _attempts(tmp_path)
    assert sorted(r["index"] for r in runs) == list(range(PARTITIONS))
    assert max(r["started"] for r in runs) < min(r["finished"] for r in runs), "in parallel"
    owned = _bookmarks(tmp_path)
    assert set.union(*owned) == set(stream_names(METERS).values())
    assert sum(len(o) for o in owned) == len(METERS)  # each meter in one partition

    _add(sim, 60, first=300)  # the cloud moves on; the next run sends only what is new
    second = execute_job(config, tmp_path)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    _assert_database_is_the_cloud(sim, namespace)
    assert (
        second.stderr.count(f"-of-{PARTITIONS}.json.")
        + second.stdout.count(f"-of-{PARTITIONS}.json.")
        >= PARTITIONS
    ), "each partition resumed from its state file"


def test_a_failed_partition_is_retried_and_loses_nothing(
    sim: Simulator, namespace: str, tmp_path: Path
) -> None:
    """Ceilometer refuses one meter's page once (a 403 stops the tap at once): that partition's
    op fails after its earlier meters are confirmed, and Dagster's retry goes on from its
    state file. Run as a large backfill would be (meltano.yml's backfill environment: BATCH
    files of 50 rows here, its target settings and PGOPTIONS; the ready command runs
    config/target-postgres-backfill.sql)."""
    _add(sim, 300)
    sim.faults.add(FaultRule(method="GET", path=r"^/v2/meters/meter\.5$", status=403, times=1))
    batch_config, settings, env = backfill_environment()
    batch_config |= {
        "storage": {"root": (tmp_path / "batches").as_uri(), "prefix": "batch-"},
        "batch_size": 50,
    }
    config = _run_config(sim, namespace, tmp_path, query_method="simple", batch_config=batch_config)
    export = config["resources"]["export"]["config"]
    target_file = Path(export["target_config"])
    target_config = json.loads(target_file.read_text(encoding="utf-8"))
    target_file.write_text(json.dumps({**target_config, **settings}), encoding="utf-8")
    export["target_env"] |= env
    export["ready_command"] = psql_file_command(namespace, BACKFILL_SQL)
    done = execute_job(config, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    runs = _attempts(tmp_path)
    failed = [r for r in runs if r["tap"] != 0]
    assert len(failed) == 1
    retried = [r for r in runs if r["index"] == failed[0]["index"]]
    assert [(r["attempt"], r["resumed"]) for r in retried] == [(1, False), (2, True)]
    _assert_database_is_the_cloud(sim, namespace)
    assert any((tmp_path / "batches").iterdir()), "the samples went as BATCH files"


@pytest.mark.parametrize("executor", ["celery", "k8s"])
def test_the_shipped_distributed_configs_are_valid_for_their_executors(executor: str) -> None:
    example = yaml.safe_load((REPO_ROOT / "orchestrate" / "run-config.example.yaml").read_text())
    shipped = yaml.safe_load((REPO_ROOT / "orchestrate" / f"{executor}.yaml").read_text())
    config = {"resources": example["resources"], "execution": shipped["execution"]}
    assert validate_config(config, executor) == []
    wrong = copy.deepcopy(config)
    wrong["execution"]["config"]["no_such_setting"] = 1
    assert validate_config(wrong, executor), "a wrong key is refused"


def test_the_definitions_pass_mypy_strict_against_dagster() -> None:
    """.ci/test type-checks the tap's packages; orchestrate/ is checked here, against the
    Dagster of its own venv."""
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "mypy"),
            "--strict",
            "--python-executable",
            str(dagster_venv() / "bin" / "python"),
            str(REPO_ROOT / "orchestrate" / "definitions.py"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
