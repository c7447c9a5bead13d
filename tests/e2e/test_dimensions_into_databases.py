"""The dimension streams in the real PostgreSQL and MariaDB: every row as the tap sent it, and
updated in place when Keystone or Ceilometer changes (renamed project, resized instance), with
entities gone upstream kept for the old samples' sake."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tap_ceilometer.timestamps import parse_api_time
from tests.support.pipeline import run_pipeline
from tests.support.tap import DIMENSION_STREAMS, sample, tap_config
from tests.support.targets import TARGETS, fresh_namespace, read_table

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from ceilometer_simulator import Simulator
    from tests.support.targets import Target

pytestmark = pytest.mark.e2e

T0 = datetime(2024, 5, 1, tzinfo=UTC)
KEYS = {"resources": "resource_id", "meters": "name"}
JSON_COLUMNS = {"metadata", "meters", "project_ids"}
BOOLEAN_COLUMNS = {"enabled", "is_domain"}
TIME_COLUMNS = {"first_sample_timestamp", "last_sample_timestamp"}


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Target:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def namespace(target: Target) -> Iterator[str]:
    with fresh_namespace(target, prefix="dim") as name:
        yield name


def _as_sent(stream: str, record: dict[str, Any]) -> dict[str, Any]:
    row = dict(record)
    for column in TIME_COLUMNS & set(row):
        if row[column] is not None:
            row[column] = parse_api_time(row[column])
    return row


def _as_stored(row: dict[str, Any], columns: set[str]) -> dict[str, Any]:
    out = {}
    for column in columns:
        value = row[column]
        if column in JSON_COLUMNS and isinstance(value, str | bytes):
            value = json.loads(value)
        elif column in BOOLEAN_COLUMNS and value is not None:
            value = bool(value)  # MySQL's TINYINT(1)
        elif isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        out[column] = value
    return out


def _tables(target: Target, namespace: str) -> dict[str, dict[str, dict[str, Any]]]:
    tables = {}
    for stream in DIMENSION_STREAMS:
        key = KEYS.get(stream, "id")
        tables[stream] = {row[key]: row for row in read_table(target, namespace, stream, key)}
    return tables


def _assert_loaded_as_sent(
    target: Target, namespace: str, sent: dict[str, list[dict[str, Any]]]
) -> dict[str, dict[str, dict[str, Any]]]:
    tables = _tables(target, namespace)
    for stream in DIMENSION_STREAMS:
        key = KEYS.get(stream, "id")
        records = {r[key]: _as_sent(stream, r) for r in sent[stream]}
        columns = set(next(iter(records.values())))
        stored = {k: _as_stored(row, columns) for k, row in tables[stream].items()}
        assert {k: stored[k] for k in records} == records, stream
    return tables


def _cloud(sim: Simulator, hours: int, flavor: str) -> None:
    sim.store.add_samples(
        sample(
            "cpu",
            T0 + timedelta(hours=hours, minutes=i),
            100 * hours + i,
            counter_type="cumulative",
            project_id=project,
            resource_id=f"vm-{i % 4}",
            resource_metadata={"display_name": f"web-{i % 4}", "flavor": {"name": flavor}},
        )
        for i, project in enumerate(sorted(sim.keystone.identities.projects)[:8])
    )


def test_dimension_tables_hold_what_was_sent_and_follow_changes(
    sim: Simulator, target: Target, namespace: str, tmp_path: Path
) -> None:
    _cloud(sim, 0, "m1.small")
    config = tap_config(sim)
    exact = target == "target-mysql"
    for run in ("1", "2"):
        (tmp_path / run).mkdir()
    first = run_pipeline(config, {target: namespace}, tmp_path / "1", mysql_exact=exact)
    assert first.tap_returncode == 0, first.tap_log[-3000:]
    assert set(first.dimensions) == DIMENSION_STREAMS
    _assert_loaded_as_sent(target, namespace, first.dimensions)

    # Keystone renames a project and deletes another; an instance is resized.
    identities = sim.keystone.identities
    renamed, deleted = sorted(identities.projects)[1:3]
    old_name = identities.projects[deleted].name
    identities.projects[renamed].name = "renamed-project"
    del identities.projects[deleted]
    _cloud(sim, 5, "m1.large")
    second = run_pipeline(
        config, {target: namespace}, tmp_path / "2", state=first.confirmed_state, mysql_exact=exact
    )
    assert second.tap_returncode == 0, second.tap_log[-3000:]
    tables = _assert_loaded_as_sent(target, namespace, second.dimensions)
    projects = tables["projects"]
    assert projects[renamed]["name"] == "renamed-project"  # updated in place, once
    assert projects[deleted]["name"] == old_name  # kept: its samples still need the name
    assert len(projects) == len(identities.projects) + 1
    assert {r["flavor_name"] for r in tables["resources"].values()} == {"m1.large"}
    first_seen = tables["resources"]["vm-0"]["first_sample_timestamp"]
    assert _as_stored({"t": first_seen}, {"t"})["t"] == T0
