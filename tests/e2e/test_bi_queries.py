"""The BI SQL of sql/ and docs/bi.md, run against the real databases.

For each target and layout, a hand-made cloud (tests/support/bi.py) goes through the real tap
and target; the views are made with the command docs/bi.md gives, every report file runs as is,
and each row is compared with the answer computed in Python from the samples alone, with the
project names Keystone (the simulator's) has, which the tap exports as table `projects`.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any

import pytest

from ceilometer_simulator import Identities, Simulator
from ceilometer_simulator import project_id as generated_project_id
from tap_ceilometer.naming import stream_names
from tests.support.bi import (
    BI_DOC,
    DIALECTS,
    REPORTS,
    SQL_DIR,
    VIEWS,
    Warehouse,
    assert_rows_equal,
    bi_project_ids,
    bi_samples,
    expected_report,
    increases,
    late_meter_samples,
    project_label,
    query,
    run_documented,
    run_report,
    sql_files,
)
from tests.support.pipeline import run_pipeline
from tests.support.tap import tap_config
from tests.support.targets import TARGETS, fresh_namespace, table_names

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.targets import Target

pytestmark = pytest.mark.e2e

LAYOUTS = ("per_meter", "single")
COLUMNS = {
    "gauge_daily": ["day", "project_id", "project", "average", "maximum", "samples"],
    "delta_daily": ["day", "project_id", "project", "total", "samples"],
    "cumulative_daily": [
        *("day", "project_id", "project", "meter", "unit", "increase", "intervals"),
    ],
    "cpu_hours_daily": ["day", "project_id", "project", "cpu_hours"],
    "flavor_hours_daily": ["day", "project_id", "project", "flavor", "resource_hours"],
    "volume_gb_months": ["month", "project_id", "project", "gb_hours", "gb_months"],
}
DIMENSIONS = ("projects",)


def _load(
    sim: Simulator,
    target: Target,
    namespace: str,
    workdir: Path,
    *,
    layout: str = "per_meter",
    state: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    run = run_pipeline(
        tap_config(sim, layout=layout),
        {target: namespace},
        workdir,
        state=state,
        mysql_exact=target == "target-mysql",
    )
    assert run.tap_returncode == 0, run.tap_log[-4000:]
    return run.state(target)


@pytest.fixture(
    scope="module",
    params=[(t, layout) for t in TARGETS for layout in LAYOUTS],
    ids=[f"{t}-{layout}" for t in TARGETS for layout in LAYOUTS],
)
def warehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    """The hand-made cloud loaded by the real pipeline, views made as docs/bi.md says."""
    target, layout = request.param
    with Simulator() as sim, fresh_namespace(target, prefix="bi") as namespace:
        names = {pid: project.name for pid, project in sim.keystone.identities.projects.items()}
        projects = bi_project_ids(names)
        samples = bi_samples(projects)
        sim.store.add_samples(samples)
        _load(sim, target, namespace, tmp_path_factory.mktemp("bi"), layout=layout)
        run_documented(f"views:{DIALECTS[target]}", namespace)
        yield Warehouse(target, layout, namespace, projects, samples, names)


def test_the_cloud_has_named_and_unnamed_projects() -> None:
    """The oracle's names come from the simulator's Keystone: at least two of the cloud's
    projects have one there, the last none (the views must show its id)."""
    with Simulator() as sim:
        known = sim.keystone.identities.projects
        *named, unknown = bi_project_ids(known)
    assert sum(1 for p in named if p in known and known[p].name) >= 2
    assert unknown not in known


def test_the_tables_are_the_layouts_and_projects(warehouse: Warehouse) -> None:
    tables = set(table_names(warehouse.target, warehouse.namespace))
    meters = {s["counter_name"] for s in warehouse.samples}
    samples = set(stream_names(meters).values()) if warehouse.layout == "per_meter" else {"samples"}
    assert samples <= tables
    assert set(DIMENSIONS) <= tables, "the tap's projects stream"
    assert set(VIEWS) <= tables  # information_schema.tables lists views too
    _, rows = warehouse.query("SELECT id, name FROM projects")
    exported: dict[str, str] = dict(rows)
    for project in warehouse.projects:
        assert exported.get(project) == warehouse.names.get(project)
    assert sum(1 for project in warehouse.projects if exported.get(project)) >= 2


def test_samples_named_holds_every_sample_once_with_its_project(warehouse: Warehouse) -> None:
    columns, rows = warehouse.query(
        "SELECT message_id, counter_name, counter_volume, project_id, project_name, project,"
        " sample_table FROM samples_named"
    )
    assert columns[0] == "message_id"
    got = {row[0]: row[1:] for row in rows}
    assert len(got) == len(rows) == len(warehouse.samples)
    tables = stream_names({s["counter_name"] for s in warehouse.samples})
    for s in warehouse.samples:
        name, volume, project_id, project_name, project, table = got[s["message_id"]]
        assert (name, volume, project_id) == (
            s["counter_name"],
            s["counter_volume"],
            s["project_id"],
        )
        assert project_name == warehouse.names.get(s["project_id"])
        assert project == project_label(warehouse.names, s["project_id"])
        assert table == (tables[name] if warehouse.layout == "per_meter" else "samples")


def test_cumulative_increase_view(warehouse: Warehouse) -> None:
    _, rows = warehouse.query(
        "SELECT message_id, increase, is_reset, previous_volume FROM cumulative_increase"
    )
    expected = increases(warehouse.samples)
    assert {row[0] for row in rows} == set(expected)
    volumes = {s["message_id"]: s["counter_volume"] for s in warehouse.samples}
    resets = 0
    for message_id, increase, is_reset, previous in rows:
        want = expected[message_id]
        if want is None:
            assert (increase, previous) == (None, None)
            continue
        assert increase == pytest.approx(want, rel=1e-9)
        assert bool(is_reset) == (volumes[message_id] < previous)
        resets += bool(is_reset)
    assert resets == 4  # vm-a, vm-b (at an equal timestamp), vm-c and the interface


@pytest.mark.parametrize("report", REPORTS)
def test_report(warehouse: Warehouse, report: str) -> None:
    columns, rows = run_report(warehouse.target, warehouse.namespace, report)
    assert columns == COLUMNS[report]
    expected = expected_report(report, warehouse.samples, warehouse.names)
    assert expected, "the cloud must give the report rows"
    assert_rows_equal(rows, expected)


def test_the_quickstart_prints_the_first_report(warehouse: Warehouse) -> None:
    """docs/bi.md's "first report" commands, as written, print every row of the report."""
    views, report = run_documented(f"quickstart:{DIALECTS[warehouse.target]}", warehouse.namespace)
    rows = expected_report("cpu_hours_daily", warehouse.samples, warehouse.names)
    lines = [line for line in report.stdout.splitlines() if line.strip()]
    if warehouse.target == "target-postgres":
        assert "refresh_ceilometer_views" in views.stdout
        assert lines[0].split("|")[0].strip() == "day"
        assert lines[-1] == f"({len(rows)} rows)"
    else:
        assert lines[0].split("\t") == COLUMNS["cpu_hours_daily"]
        assert len(lines) == 1 + len(rows)
    for row in rows:
        assert str(row[0]) in report.stdout
        assert str(row[2]) in report.stdout


@pytest.mark.parametrize("target", TARGETS)
def test_views_follow_new_tables_at_each_documented_refresh(
    target: Target, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """layout per_meter: the views made on an empty schema/database, then a first load (its
    tables and `projects`), then a meter that appears later: each joins the views at the next
    documented refresh, not before."""
    count = "SELECT counter_name, COUNT(*) FROM all_samples GROUP BY counter_name"
    named = "SELECT DISTINCT project_id, project_name, project FROM samples_named"
    with Simulator() as sim, fresh_namespace(target, prefix="bi") as namespace:
        names = {pid: project.name for pid, project in sim.keystone.identities.projects.items()}
        projects = bi_project_ids(names)
        first = [s for s in bi_samples(projects) if s["counter_name"] == "memory.usage"]
        late = late_meter_samples(projects[1])
        run_documented(f"views:{DIALECTS[target]}", namespace)
        assert query(target, namespace, count)[1] == []

        sim.store.add_samples(first)
        state = _load(sim, target, namespace, tmp_path_factory.mktemp("bi"))
        assert query(target, namespace, count)[1] == []
        run_documented(f"refresh:{DIALECTS[target]}", namespace)
        assert dict(query(target, namespace, count)[1]) == {"memory.usage": len(first)}
        assert sorted(query(target, namespace, named)[1]) == sorted(
            (p, names.get(p), project_label(names, p)) for p in {s["project_id"] for s in first}
        )

        sim.store.add_samples(late)
        _load(sim, target, namespace, tmp_path_factory.mktemp("bi"), state=state)
        assert "disk_read_bytes" in table_names(target, namespace)
        assert dict(query(target, namespace, count)[1]) == {"memory.usage": len(first)}

        run_documented(f"refresh:{DIALECTS[target]}", namespace)
        assert dict(query(target, namespace, count)[1]) == {
            "memory.usage": len(first),
            "disk.read.bytes": len(late),
        }
        _, rows = query(target, namespace, "SELECT COUNT(*) FROM cumulative_increase")
        assert rows == [(len(late),)]


def test_docs_hold_every_sql_file_verbatim_and_nothing_else() -> None:
    """docs/bi.md shows each file of sql/ exactly, under its path, and no other SQL block."""
    text = BI_DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^### `(sql/[^`]+)`[^\n]*\n\n```sql\n(.*?)^```$", text, re.M | re.S)
    shown = dict(blocks)
    assert len(shown) == len(blocks), "a file is shown twice"
    files = {str(p.relative_to(SQL_DIR.parent)): p.read_text(encoding="utf-8") for p in sql_files()}
    assert sorted(shown) == sorted(files)
    for path, body in files.items():
        assert shown[path] == body, f"docs/bi.md shows another {path}: copy the file into it"
    assert text.count("```sql") == len(files)
    for dialect in DIALECTS.values():
        for report in REPORTS:
            assert f"sql/{dialect}/reports/{report}.sql" in files


def test_the_oracle_gives_the_hand_counted_answers() -> None:
    """A few answers counted by hand from bi_samples, so that the Python oracle and the SQL
    cannot share a mistake unseen."""
    known = Identities.default().projects
    p0, p1, _, p3 = projects = bi_project_ids(known)
    samples = bi_samples(projects)
    names = {pid: project.name for pid, project in known.items()}
    assert p0 == generated_project_id(0), "the generator's project 0, Keystone's demo"
    demo = names[p0]
    day = date(2024, 3, 31)

    def rows(report: str, **where: Any) -> list[tuple[Any, ...]]:
        cols = COLUMNS[report]
        return [
            row
            for row in expected_report(report, samples, names)
            if all(row[cols.index(k)] == v for k, v in where.items())
        ]

    # Deltas on both sides of midnight (23:59:59 and 00:00:00 twice).
    assert rows("delta_daily", project_id=p0) == [
        (date(2024, 3, 30), p0, demo, 3_500_000.5, 2),
        (day, p0, demo, 3_000_007.0, 2),
    ]
    # 100, 250, 250, 900.5 | midnight | 40 (reset), 1040, 5000, every 45 minutes from 22:00.
    net = rows("cumulative_daily", meter="network.incoming.bytes")
    assert net == [
        (date(2024, 3, 30), p1, names.get(p1, p1), "network.incoming.bytes", "B", 150.0, 2),
        (day, p1, names.get(p1, p1), "network.incoming.bytes", "B", 650.5 + 40 + 1000 + 3960, 4),
    ]
    # vm-a resized in the 10:00 hour (both flavors), vm-c without samples 03:00-05:59.
    assert sorted((r[3], r[4]) for r in rows("flavor_hours_daily", day=day, project_id=p0)) == [
        ("m1.large", 24),
        ("m1.medium", 14),
        ("m1.small", 11),
    ]
    assert rows("flavor_hours_daily", day=day, project_id=p1) == [
        (day, p1, names.get(p1, p1), "m1.small", 21)
    ]
    assert rows("flavor_hours_daily", day=day, project_id=p3) == [
        (day, p3, names.get(p3, p3), None, 24)
    ]
    # vol-1 in March: 20:00 10 GB, 21:00 10 GB, 23:00 10 then 20 GB (max 20); April: 00:00
    # twice 20 GB, 02:00 20 GB.
    assert rows("volume_gb_months", project_id=p0) == [
        (date(2024, 3, 1), p0, demo, 40.0, 40 / 730),
        (date(2024, 4, 1), p0, demo, 40.0, 40 / 730),
    ]
    # Equal timestamps on vm-b: 9.9e13 ("tie-1-b...") then 1.5e12 ("tie-1a-..."): a reset.
    rises = increases(samples)
    ties = sorted(
        (s["message_id"], rises[s["message_id"]]) for s in samples if "tie-" in s["message_id"]
    )
    assert ties[0][0].startswith("tie-1-b")
    assert ties[1] == (ties[1][0], 1.5e12)
