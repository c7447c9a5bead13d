"""`bash .ci/demo gnocchi`: a real Gnocchi 4.7.1 shaped as Ceilometer shapes it, exported twice.

Starts a Gnocchi (tests/gnocchi/stack.py) with Ceilometer's archive policies and resource types,
DEMO_INSTANCES instances with `cpu`, `vcpus` and `memory.usage` over the last two hours, and
runs `meltano run tap-ceilometer target-postgres` into schema DEMO_SCHEMA (default `gnocchi`).
Then the cloud moves on five minutes (the open period changes, a new period begins, a flavor
changes) and the same command runs again from the state Meltano kept: the summary says how many
rows each run added and how many it updated.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from tests.gnocchi.stack import GnocchiStack  # noqa: E402

STEP = dt.timedelta(minutes=5)
METERS = (
    ("cpu", "ceilometer-low-rate", "ns"),
    ("vcpus", "ceilometer-low", "vcpu"),
    ("memory.usage", "ceilometer-low", "MB"),
)


def seed(stack: GnocchiStack, instances: int, now: dt.datetime) -> dict[str, dict[str, str]]:
    made = {}
    for i in range(instances):
        rid = str(uuid.uuid4())
        flavor = ("m1.small", "m1.large")[i % 2]
        stack.create_resource(
            "instance",
            rid,
            project_id=f"project-{i % 3}",
            user_id="demo",
            display_name=f"web-{i:02d}",
            flavor_id=flavor,
            flavor_name=flavor,
            host="compute-1",
        )
        made[rid] = {}
        points: dict[str, list[tuple[dt.datetime, float]]] = {}
        for name, policy, unit in METERS:
            metric = stack.create_metric(rid, name, policy, unit)
            made[rid][name] = metric
            points[metric] = [(now - (24 - k) * STEP, _value(name, i, k)) for k in range(24)]
        stack.batch_post(points)
    return made


def _value(name: str, instance: int, k: int) -> float:
    if name == "cpu":
        return float(k * 3 * 10**10 * (instance + 1))
    if name == "vcpus":
        return float(1 + instance % 4)
    return float(512 + 10 * k + instance)


def rows(schema: str) -> dict[str, int]:
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test") as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = %s ORDER BY 1",
                (schema,),
            )
        ]
        return {
            t: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, t))
            ).fetchone()[0]
            for t in tables
        }


def meltano_run(stack: GnocchiStack, schema: str) -> None:
    env = {
        **os.environ,
        "TAP_CEILOMETER_API": "gnocchi",
        "TAP_CEILOMETER_GNOCCHI_BASIC_USER": "admin",
        "TAP_CEILOMETER_ENDPOINT_OVERRIDE": stack.url,
        # the dev environment's Keystone settings are the simulator's: not for this cloud
        "TAP_CEILOMETER_USERNAME": "",
        "TAP_CEILOMETER_PASSWORD": "",
        "TAP_CEILOMETER_AUTH_URL": "",
        "TAP_CEILOMETER_PROJECT_NAME": "",
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }
    subprocess.run(  # noqa: S603 - our own meltano, our own arguments
        [
            str(REPO / ".tools/meltano-venv/bin/meltano"),
            "run",
            "--state-id-suffix",
            schema,
            "tap-ceilometer",
            "target-postgres",
        ],
        cwd=REPO,
        env=env,
        check=True,
    )


def main() -> None:
    schema = os.environ.get("DEMO_SCHEMA", "gnocchi")
    instances = int(os.environ.get("DEMO_INSTANCES", "6"))
    now = dt.datetime.now(tz=dt.UTC).replace(second=0, microsecond=0)
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as c:
        c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    with GnocchiStack(metric_processing_delay=1) as stack:
        print(f"[demo] Gnocchi 4.7.1 at {stack.url} (basic auth, user admin)", flush=True)
        stack.create_ceilometer_archive_policies()
        stack.create_ceilometer_resource_types()
        made = seed(stack, instances, now)
        stack.wait_until_processed()
        meltano_run(stack, schema)
        first = rows(schema)
        # Five minutes later: a new measure in every metric, and one instance is resized.
        stack.batch_post(
            {
                metric: [(now + dt.timedelta(seconds=30), _value(name, 0, 25))]
                for metrics in made.values()
                for name, metric in metrics.items()
            }
        )
        resized = next(iter(made))
        stack.patch_resource("instance", resized, flavor_id="m1.xlarge", flavor_name="m1.xlarge")
        stack.wait_until_processed()
        meltano_run(stack, schema)
        second = rows(schema)
    print(f"[demo] rows per table in PostgreSQL (database test, schema {schema}):")
    for table, count in second.items():
        print(f"  {table:28s} {count:8d}  (first run {first.get(table, 0)})")
    print(
        f"[demo] {len(second)} tables, {sum(second.values())} rows after the second run,"
        f" {sum(second.values()) - sum(first.values())} new in it"
    )


if __name__ == "__main__":
    main()
