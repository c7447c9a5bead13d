"""The dimension streams against the real Keystone 30 and Ceilometer 9.0.7: what Keystone
holds, by name, for the admin and for a project member; every resource Ceilometer holds."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tests.conformance.test_tap_end_to_end import real_tap_config
from tests.support.tap import run_tap

if TYPE_CHECKING:
    import pytest

    from tests.conformance.stack import RealStack

T0 = datetime(2024, 7, 1, tzinfo=UTC)
RESOURCES = 120  # more than the API's default limit of 100


def _keystone(stack: RealStack, path: str, key: str) -> list[dict[str, Any]]:
    """Keystone's own list, read as the admin with keystoneauth1 directly."""
    session = stack.session(stack.admin)
    answer = session.get(f"{stack.auth_url}{path}")
    answer.raise_for_status()
    return list(answer.json()[key])


def _sample(meter: str, moment: datetime, resource: str, **metadata: Any) -> dict[str, Any]:
    return {
        "counter_name": meter,
        "counter_type": "gauge",
        "counter_unit": "GB",
        "counter_volume": 1.5,
        "message_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"dim/{meter}/{resource}/{moment}")),
        "project_id": "dim-project",
        "user_id": "dim-user",
        "resource_id": resource,
        "source": "openstack",
        "timestamp": moment,
        "resource_metadata": metadata,
    }


def test_the_admin_exports_keystones_projects_domains_and_users(real_stack: RealStack) -> None:
    real_stack.reset_storage()  # no samples to read: the test is about Keystone
    output = run_tap(real_tap_config(real_stack))
    for stream, key in (("projects", "projects"), ("domains", "domains"), ("users", "users")):
        held = {e["id"]: e["name"] for e in _keystone(real_stack, f"/{key}", key)}
        assert {r["id"]: r["name"] for r in output.dimensions[stream]} == held, stream
    names = {p["name"] for p in output.dimensions["projects"]}
    assert {"admin", "demo"} <= names
    users = output.dimensions["users"]
    assert {"admin", "demo"} <= {u["name"] for u in users}
    assert all("password" not in u and "password_expires_at" not in u for u in users)


def test_a_member_exports_its_own_project_and_user_and_is_told_why(
    real_stack: RealStack, caplog: pytest.LogCaptureFixture
) -> None:
    real_stack.reset_storage()
    with caplog.at_level(logging.INFO):
        output = run_tap(real_tap_config(real_stack, real_stack.demo))
    assert [p["name"] for p in output.dimensions["projects"]] == ["demo"]
    assert [u["name"] for u in output.dimensions["users"]] == ["demo"]
    said = [r.getMessage() for r in caplog.records if "HTTP 403 on GET /v3/" in r.getMessage()]
    assert len(said) == 3, said


def test_resources_hold_every_resource_with_its_latest_metadata(real_stack: RealStack) -> None:
    real_stack.reset_storage()
    samples = [
        _sample("dim.size", T0 + timedelta(seconds=i), f"dim-{i:03d}", display_name=f"v{i}")
        for i in range(RESOURCES)
    ]
    # One resource moves on: a later sample of another meter, with a flavor and a new name.
    later = T0 + timedelta(hours=1)
    samples.append(
        _sample("dim.other", later, "dim-000", display_name="web-01", flavor={"name": "m1.big"})
    )
    assert real_stack.seed(samples) == len(samples)
    output = run_tap(real_tap_config(real_stack, meters=["dim.size", "dim.other"]))
    rows = {r["resource_id"]: r for r in output.dimensions["resources"]}
    assert set(rows) == {f"dim-{i:03d}" for i in range(RESOURCES)}
    first = rows["dim-000"]
    assert first["first_sample_timestamp"] == "2024-07-01T00:00:00.000000+00:00"
    assert first["last_sample_timestamp"] == "2024-07-01T01:00:00.000000+00:00"
    assert first["metadata"] == {"display_name": "web-01", "flavor.name": "m1.big"}
    assert (first["display_name"], first["flavor_name"]) == ("web-01", "m1.big")
    assert first["meters"] == ["dim.other", "dim.size"]
    assert rows["dim-007"]["meters"] == ["dim.size"]
    assert rows["dim-007"]["display_name"] == "v7"
    meters = {m["name"]: m for m in output.dimensions["meters"]}
    assert meters["dim.size"]["resource_count"] == RESOURCES
    assert meters["dim.size"]["stream"] == "dim_size"
    assert meters["dim.other"]["project_ids"] == ["dim-project"]
