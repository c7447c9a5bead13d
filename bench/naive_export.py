"""Baseline (a): a Ceilometer-to-PostgreSQL exporter written the way such scripts usually are.

Per meter: one ``GET /v2/meters/{name}?limit=<huge>`` that returns every sample in one answer,
decoded whole with ``response.json()``; then one SQLAlchemy Core ``INSERT`` per row, committed
once per meter (``engine.begin()`` around each meter's loop). Committing per row would be even
slower (one fsync-bound round trip more per row); per meter is the kinder, common variant.

No bookmarks, no ordering, no paging: memory grows with the largest meter.

    naive_export.py --auth-url URL --schema NAME --meters a,b,c
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime

import requests
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

HUGE_LIMIT = 100_000_000
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def keystone_token(auth_url: str) -> tuple[str, str]:
    """A project-scoped token and the public metering endpoint from the catalog."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "admin",
                        "domain": {"name": "Default"},
                        "password": "admin-secret",
                    }
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }
    r = requests.post(f"{auth_url}/auth/tokens", json=body, timeout=60)
    r.raise_for_status()
    catalog = r.json()["token"]["catalog"]
    metering = next(s for s in catalog if s["type"] == "metering")
    url = next(e["url"] for e in metering["endpoints"] if e["interface"] == "public")
    return r.headers["X-Subject-Token"], url.rstrip("/")


def table_for(metadata: sa.MetaData, schema: str, meter: str) -> sa.Table:
    return sa.Table(
        re.sub(r"[^a-z0-9_]", "_", meter.lower()),
        metadata,
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("counter_name", sa.Text),
        sa.Column("counter_type", sa.Text),
        sa.Column("counter_unit", sa.Text),
        sa.Column("counter_volume", sa.Float),
        sa.Column("project_id", sa.Text),
        sa.Column("user_id", sa.Text),
        sa.Column("resource_id", sa.Text),
        sa.Column("source", sa.Text),
        sa.Column("timestamp", sa.DateTime),
        sa.Column("recorded_at", sa.DateTime),
        sa.Column("resource_metadata", JSONB),
        schema=schema,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--auth-url", required=True)
    p.add_argument("--schema", required=True)
    p.add_argument("--meters", required=True, help="comma-separated meter names")
    args = p.parse_args(argv)

    token, endpoint = keystone_token(args.auth_url)
    headers = {"X-Auth-Token": token, "Accept": "application/json"}
    engine = sa.create_engine(PG_URL)
    metadata = sa.MetaData()
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{args.schema}"'))
    total = 0
    for meter in args.meters.split(","):
        r = requests.get(
            f"{endpoint}/v2/meters/{meter}",
            params={"limit": HUGE_LIMIT},
            headers=headers,
            timeout=3600,
        )
        r.raise_for_status()
        samples = r.json()
        table = table_for(metadata, args.schema, meter)
        table.create(engine, checkfirst=True)
        with engine.begin() as conn:
            for s in samples:
                conn.execute(
                    table.insert(),
                    {
                        "message_id": s["message_id"],
                        "counter_name": s["counter_name"],
                        "counter_type": s["counter_type"],
                        "counter_unit": s["counter_unit"],
                        "counter_volume": s["counter_volume"],
                        "project_id": s["project_id"],
                        "user_id": s["user_id"],
                        "resource_id": s["resource_id"],
                        "source": s["source"],
                        "timestamp": datetime.fromisoformat(s["timestamp"]),
                        "recorded_at": s["recorded_at"]
                        and datetime.fromisoformat(s["recorded_at"]),
                        "resource_metadata": s["resource_metadata"],
                    },
                )
        total += len(samples)
        del samples, r
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
