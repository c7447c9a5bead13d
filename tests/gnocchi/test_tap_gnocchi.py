"""The tap end to end on a real Gnocchi 4.7.1 into the real PostgreSQL and MariaDB, value for
value (MariaDB through tap-ceilometer-mysql-exact, as the product's MySQL pipe runs it).

One Gnocchi for the module, shaped as Ceilometer shapes it (its archive policies and resource
types). Runs follow one another with the state the target confirmed, as a scheduler would run
them, while the cloud changes between them: the open period moves, late measures arrive inside
and outside the window Gnocchi accepts, metricd falls behind, instances appear and vanish, a
flavor changes; one run is killed with SIGKILL. After each run every table is compared with
what Gnocchi itself answers (`refresh=true`, once nothing is pending).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql

from tests.support.pipeline import run_pipeline
from tests.support.targets import fresh_namespace, mysql_connect, pg_connect

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.gnocchi.stack import GnocchiStack
    from tests.support.pipeline import PipelineRun
    from tests.support.targets import Target

pytestmark = pytest.mark.e2e

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
STEP = dt.timedelta(seconds=300)
# What the tap exports by default: 300 s, mean, and rate:mean where the policy has it.
SERIES = {"ceilometer-low": ("mean",), "ceilometer-low-rate": ("mean", "rate:mean")}


@pytest.fixture(scope="module")
def stack(own_gnocchi: GnocchiStack) -> GnocchiStack:
    return own_gnocchi


@pytest.fixture
def schema() -> Iterator[str]:
    with fresh_namespace("target-postgres", "gn") as name:
        yield name


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_namespace("target-mysql", "gn") as name:
        yield name


class Cloud:
    """What the test created, to ask Gnocchi about it afterwards."""

    def __init__(self, stack: GnocchiStack) -> None:
        self.stack = stack
        self.metrics: dict[str, tuple[str, str]] = {}  # id -> (name, policy)
        self.deleted: set[str] = set()

    def instance(self, project: str, flavor: str, hours: int, *, start: dt.datetime = T0) -> str:
        rid = str(uuid.uuid4())
        self.stack.create_resource(
            "instance",
            rid,
            project_id=project,
            user_id="u-" + project,
            display_name=f"vm-{rid[:6]}",
            flavor_id=flavor,
            flavor_name=flavor,
            host="compute-1",
        )
        for name, policy, unit in (
            ("cpu", "ceilometer-low-rate", "ns"),
            ("vcpus", "ceilometer-low", "vcpu"),
        ):
            metric = self.stack.create_metric(rid, name, policy, unit)
            self.metrics[metric] = (name, policy)
            points = [
                (
                    start + i * STEP + dt.timedelta(seconds=7),
                    float(i * 10**9) if name == "cpu" else 2.0,
                )
                for i in range(hours * 12)
            ]
            self.stack.post_measures(metric, points)
        return rid

    def metric_of(self, rid: str, name: str) -> str:
        resource = self.stack.request("GET", f"/v1/resource/instance/{rid}").json()
        return str(resource["metrics"][name])

    def expected(self) -> dict[tuple[str, str, float, dt.datetime], float | None]:
        """Every (metric, aggregation, granularity, period) Gnocchi holds, with its value."""
        self.stack.wait_until_processed()
        rows = {}
        for metric, (_name, policy) in self.metrics.items():
            if metric in self.deleted:
                continue
            for method in SERIES[policy]:
                for ts, grain, value in self.stack.measures(metric, 300, method):
                    rows[(metric, method, float(grain), dt.datetime.fromisoformat(ts))] = value
        return rows


def measure_rows(
    schema: str, target: Target = "target-postgres"
) -> dict[tuple[str, str, float, dt.datetime], float | None]:
    rows = {}
    for table in ("cpu", "vcpus"):
        for metric, method, grain, ts, value in _select(target, schema, table):
            key = (metric, method, float(grain), ts.replace(tzinfo=dt.UTC))
            assert key not in rows, f"{key} stored twice"
            rows[key] = float(value) if isinstance(value, Decimal) else value
    return rows


def _select(target: Target, namespace: str, table: str) -> list[tuple[Any, ...]]:
    columns = "metric_id, aggregation, granularity, timestamp, value"
    if target == "target-postgres":
        with pg_connect() as conn:
            query = sql.SQL(f"SELECT {columns} FROM {{}}").format(  # noqa: S608
                sql.Identifier(namespace, table)
            )
            return list(conn.execute(query))
    with mysql_connect(namespace) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {columns} FROM `{table}`")  # noqa: S608
        return list(cur.fetchall())


def resource_rows(schema: str) -> list[dict[str, Any]]:
    with pg_connect() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT * FROM {} ORDER BY id, revision_start").format(
                sql.Identifier(schema, "resources")
            )
        )
        return list(cur.fetchall())


def export(
    stack: GnocchiStack,
    namespaces: dict[Target, str],
    workdir: Path,
    state: Any,
    **kwargs: Any,
) -> PipelineRun:
    config = {"gnocchi_basic_user": "admin", "endpoint_override": stack.url}
    config.update(kwargs.pop("config", {}))
    return run_pipeline(config, namespaces, workdir, state=state, mysql_exact=True, **kwargs)


def test_an_export_kept_current_across_runs_equals_gnocchi(
    stack: GnocchiStack, schema: str, database: str, tmp_path: Path
) -> None:
    both: dict[Target, str] = {"target-postgres": schema, "target-mysql": database}

    def check(expected: dict[Any, Any], *, leave_out: str = "") -> None:
        for target, namespace in both.items():
            rows = measure_rows(namespace, target)
            assert {k: v for k, v in rows.items() if k[0] != leave_out} == expected, target

    cloud = Cloud(stack)
    first = cloud.instance("p1", "m1.small", hours=3)
    second = cloud.instance("p2", "m1.large", hours=2)
    stack.wait_until_processed()

    run = export(stack, both, tmp_path, None)
    assert run.tap_returncode == 0, run.tap_log[-3000:]
    check(cloud.expected())
    state = run.state("target-postgres")
    assert state == run.state("target-mysql")

    # The open period changes; a late measure inside the block Gnocchi still accepts changes
    # a period already sent; one older than the first block is dropped by Gnocchi (T2).
    cpu, vcpus = cloud.metric_of(first, "cpu"), cloud.metric_of(first, "vcpus")
    last = T0 + 35 * STEP
    stack.post_measures(vcpus, [(last + dt.timedelta(seconds=100), 6.0)])
    stack.post_measures(cpu, [(last - STEP + dt.timedelta(seconds=200), 1.0)])
    stack.post_measures(vcpus, [(T0 + 2 * STEP, 99.0)])
    # A new instance with two hours of history, one that goes away, a flavor that changes.
    third = cloud.instance("p1", "m1.tiny", hours=2, start=T0 + 12 * STEP)
    gone = cloud.metric_of(second, "vcpus")
    stack.delete_metric(gone)
    cloud.deleted.add(gone)
    stack.patch_resource("instance", first, flavor_id="m1.xlarge", flavor_name="m1.xlarge")
    stack.wait_until_processed()
    kept_rows = {k: v for k, v in measure_rows(schema).items() if k[0] == gone}

    run = export(stack, both, tmp_path, state)
    assert run.tap_returncode == 0, run.tap_log[-3000:]
    rows = measure_rows(schema)
    assert {k: v for k, v in rows.items() if k[0] == gone} == kept_rows  # its rows stay
    assert any(k[0] == cloud.metric_of(third, "cpu") for k in rows)
    check(cloud.expected(), leave_out=gone)
    state = run.state("target-postgres")

    # metricd falls behind: a run sees none of the backlog, the next one sees all of it.
    stack.stop_metricd()
    for metric in (cpu, vcpus):
        stack.post_measures(
            metric, [(last + i * STEP + dt.timedelta(seconds=30), 3.0 + i) for i in range(1, 4)]
        )
    try:
        run = export(stack, both, tmp_path, state)
    finally:
        stack.start_metricd()
    assert run.tap_returncode == 0, run.tap_log[-3000:]
    behind = measure_rows(schema)
    state = run.state("target-postgres")
    stack.wait_until_processed()
    run = export(stack, both, tmp_path, state)
    assert run.tap_returncode == 0, run.tap_log[-3000:]
    check(cloud.expected(), leave_out=gone)
    assert len(measure_rows(schema)) > len(behind)

    # The flavor change is a second revision of the resource; the first one is closed.
    revisions = [r for r in resource_rows(schema) if r["id"] == first]
    assert [r["flavor_name"] for r in revisions] == ["m1.small", "m1.xlarge"]
    assert revisions[0]["revision_end"] == revisions[1]["revision_start"]
    assert revisions[1]["revision_end"] is None


@pytest.mark.parametrize("target", ["target-postgres", "target-mysql"])
def test_a_run_killed_mid_export_then_rerun_loses_and_doubles_nothing(
    stack: GnocchiStack, target: Target, tmp_path: Path
) -> None:
    cloud = Cloud(stack)
    for project in ("k1", "k2", "k3"):
        cloud.instance(project, "m1.small", hours=2)
    stack.wait_until_processed()
    config = {"metrics_per_request": 2}
    with fresh_namespace(target, "gk") as namespace:
        killed = export(stack, {target: namespace}, tmp_path, None, kill_after=150, config=config)
        assert killed.tap_returncode != 0
        rerun = export(stack, {target: namespace}, tmp_path, killed.confirmed_state, config=config)
        assert rerun.tap_returncode == 0, rerun.tap_log[-3000:]
        expected = {k: v for k, v in cloud.expected().items() if k[0] in cloud.metrics}
        rows = measure_rows(namespace, target)
        assert {k: v for k, v in rows.items() if k[0] in cloud.metrics} == expected
