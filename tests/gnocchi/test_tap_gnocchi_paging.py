"""Paging on a Gnocchi whose operator set a small `max_limit` (T4): the tap asks for 1000 a page,
Gnocchi clamps silently, and every listing must still come out whole, each row once."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from typing import TYPE_CHECKING

from tests.gnocchi.stack import GnocchiStack
from tests.support.tap import run_tap

if TYPE_CHECKING:
    from pathlib import Path

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def test_clamped_pages_give_every_revision_metric_and_measure_once(tmp_path: Path):
    with GnocchiStack(max_limit=7, workdir=tmp_path / "gnocchi") as stack:
        stack.create_ceilometer_archive_policies()
        stack.create_ceilometer_resource_types()
        metrics, revisions = set(), 0
        for i in range(20):
            rid = str(uuid.uuid4())
            stack.create_resource(
                "instance",
                rid,
                project_id="p",
                user_id="u",
                display_name=f"vm-{i}",
                flavor_id="m1",
                flavor_name="m1",
            )
            revisions += 1
            if i % 4 == 0:  # a resize: one more revision
                stack.patch_resource("instance", rid, flavor_id="m2", flavor_name="m2")
                revisions += 1
            metric = stack.create_metric(rid, "vcpus", "ceilometer-low")
            metrics.add(metric)
            stack.post_measures(metric, [(T0, 1.0), (T0 + dt.timedelta(minutes=5), 2.0)])
        stack.wait_until_processed()
        out = run_tap({"gnocchi_basic_user": "admin", "endpoint_override": stack.url})
    resources = Counter((r["id"], r["revision_start"]) for r in out.dimensions["resources"])
    assert len(resources) == revisions
    assert max(resources.values()) == 1
    assert Counter(r["id"] for r in out.records["metrics"]) == dict.fromkeys(metrics, 1)
    measured = Counter((r["metric_id"], r["timestamp"]) for r in out.records["vcpus"])
    assert len(measured) == 2 * len(metrics)
    assert max(measured.values()) == 1
