"""The dimension streams against the simulated cloud: resources, the meter catalogue, and
Keystone's projects, domains and users, as an admin and as a project member."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from ceilometer_simulator import FaultRule
from tap_ceilometer.timestamps import utc_iso
from tests.support.tap import (
    DIMENSION_STREAMS,
    run_tap,
    sample,
    samples_only_catalog,
    tap_config,
)

if TYPE_CHECKING:
    from ceilometer_simulator import Simulator

T0 = datetime(2024, 5, 1, tzinfo=UTC)
RESOURCES = 150  # more than the API's default limit of 100 rows


def _cloud(sim: Simulator) -> list[dict[str, Any]]:
    """150 instances with cpu and memory.usage, flavors given both ways, one volume with
    no metadata; a sample's metadata changes over time (the latest one counts)."""
    made = []
    for i in range(RESOURCES):
        for step in range(3):
            flavor: dict[str, Any] = (
                {"flavor": {"name": f"m1.size{step}"}} if i % 2 else {"instance_type": "m1.old"}
            )
            for meter, kind in (("cpu", "cumulative"), ("memory.usage", "gauge")):
                made.append(
                    sample(
                        meter,
                        T0 + timedelta(minutes=10 * step, seconds=i),
                        1000 * i + step,
                        resource_id=f"vm-{i:03d}",
                        project_id=f"p{i % 4}",
                        counter_type=kind,
                        counter_unit="ns" if meter == "cpu" else "MB",
                        resource_metadata={"display_name": f"web-{i}-{step}", **flavor},
                    )
                )
    made.append(
        sample(
            "volume.size",
            T0,
            1,
            resource_id="vol-1",
            project_id="p9",
            counter_unit="GB",
            resource_metadata=None,
        )
    )
    sim.store.add_samples(made)
    return made


def _expected_resources(made: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_resource: dict[str, list[dict[str, Any]]] = {}
    for s in made:
        by_resource.setdefault(s["resource_id"], []).append(s)
    expected = {}
    for rid, group in by_resource.items():
        latest = max(group, key=lambda s: s["timestamp"])
        raw = latest["resource_metadata"]
        flat = {}  # Ceilometer flattens a sample's missing metadata to {} (spec 1.5)
        if raw is not None:
            flat = {
                (f"{k}.{kk}" if isinstance(v, dict) else k): (vv if isinstance(v, dict) else v)
                for k, v in raw.items()
                for kk, vv in (v.items() if isinstance(v, dict) else [(None, v)])
            }
        expected[rid] = {
            "resource_id": rid,
            "project_id": latest["project_id"],
            "user_id": latest["user_id"],
            "source": latest["source"],
            "first_sample_timestamp": utc_iso(min(s["timestamp"] for s in group)),
            "last_sample_timestamp": utc_iso(latest["timestamp"]),
            "metadata": flat,
            "display_name": flat.get("display_name"),
            "flavor_name": flat.get("flavor.name") or flat.get("instance_type"),
            "meters": sorted({s["counter_name"] for s in group}),
        }
    return expected


def test_resources_are_complete_beyond_the_default_limit_with_names_and_flavors(
    sim: Simulator,
) -> None:
    made = _cloud(sim)
    output = run_tap(tap_config(sim))
    rows = {r["resource_id"]: r for r in output.dimensions["resources"]}
    assert len(output.dimensions["resources"]) == RESOURCES + 1
    assert rows == _expected_resources(made)
    assert rows["vm-001"]["flavor_name"] == "m1.size2"  # nested `flavor.name`, the latest
    assert rows["vm-000"]["flavor_name"] == "m1.old"  # `instance_type`
    assert rows["vol-1"]["metadata"] == {}
    assert rows["vol-1"]["display_name"] is None
    listed = [r for r in sim.requests if r.path == "/v2/resources"]
    assert all(r.params["meter_links"] == ["0"] for r in listed)


@pytest.mark.parametrize("layout", ["per_meter", "single"])
def test_the_meter_catalogue_names_the_table_of_each_meter(sim: Simulator, layout: str) -> None:
    _cloud(sim)
    output = run_tap(tap_config(sim, layout=layout, meters=["cpu", "memory.usage"]))
    meters = {m["name"]: m for m in output.dimensions["meters"]}
    assert set(meters) == {"cpu", "memory.usage", "volume.size"}
    tables = {"cpu": "cpu", "memory.usage": "memory_usage"}
    assert {name: m["stream"] for name, m in meters.items()} == {
        "cpu": tables["cpu"] if layout == "per_meter" else "samples",
        "memory.usage": tables["memory.usage"] if layout == "per_meter" else "samples",
        "volume.size": None,  # not exported by this config
    }
    cpu = meters["cpu"]
    assert (cpu["type"], cpu["unit"], cpu["resource_count"]) == ("cumulative", "ns", RESOURCES)
    assert (cpu["project_count"], cpu["project_ids"]) == (4, ["p0", "p1", "p2", "p3"])
    assert meters["volume.size"]["project_ids"] == ["p9"]


def test_the_admin_exports_every_project_domain_and_user_by_name(sim: Simulator) -> None:
    _cloud(sim)
    output = run_tap(tap_config(sim))
    identities = sim.keystone.identities
    projects = {p["id"]: p for p in output.dimensions["projects"]}
    assert {pid: p["name"] for pid, p in projects.items()} == {
        p.id: p.name for p in identities.projects.values()
    }
    assert all(isinstance(p["enabled"], bool) for p in projects.values())
    users = output.dimensions["users"]
    assert {u["id"]: u["name"] for u in users} == {u.id: u.name for u in identities.users.values()}
    assert all(
        set(u) == set(output.dimension_schemas["users"]["schema"]["properties"]) for u in users
    )
    for secret in ("admin-secret", "demo-secret", "password", "email"):
        assert secret not in str(users) + str(output.dimension_schemas["users"])
    assert {d["name"] for d in output.dimensions["domains"]} >= {"Default"}


def test_a_project_member_exports_what_keystone_lets_it_see_and_says_so(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    _cloud(sim)
    config = tap_config(sim)
    config.update(username="demo", password="demo-secret", project_name="demo")
    with caplog.at_level(logging.INFO):
        output = run_tap(config)
    identities = sim.keystone.identities
    demo = identities.user_by_name("demo", "default")
    assert demo is not None
    assert [p["id"] for p in output.dimensions["projects"]] == list(demo.roles)
    assert [u["id"] for u in output.dimensions["users"]] == [demo.id]
    said = [
        r.getMessage() for r in caplog.records if "does not let this user list" in r.getMessage()
    ]
    assert len(said) == 3, said  # one line per stream: projects, domains, users
    assert "HTTP 403" in said[0]


def test_later_partitions_leave_the_dimensions_to_the_first(sim: Simulator) -> None:
    _cloud(sim)
    first = run_tap(tap_config(sim, partition={"index": 0, "count": 2}))
    second = run_tap(tap_config(sim, partition={"index": 1, "count": 2}))
    assert set(first.dimension_schemas) == DIMENSION_STREAMS
    assert second.dimension_schemas == {}


def test_deselected_dimensions_cost_no_request(sim: Simulator) -> None:
    _cloud(sim)
    config = tap_config(sim)
    catalog = samples_only_catalog(config)
    sim.reset_requests()
    output = run_tap(config, catalog=catalog)
    assert output.dimensions == {}
    paths = {r.path for r in sim.requests}
    assert "/v2/resources" not in paths
    assert not {p for p in paths if p.startswith("/identity/v3/") and "auth/tokens" not in p}


def test_a_failing_resource_list_leaves_the_samples_whole(
    sim: Simulator, caplog: pytest.LogCaptureFixture, backoff_waits: list[float]
) -> None:
    made = _cloud(sim)
    sim.faults.add(FaultRule(method="GET", path="^/v2/resources$", action="status", status=500))
    with caplog.at_level(logging.WARNING):
        output = run_tap(tap_config(sim, max_retries=1))
    assert output.count() == len(made)
    assert "resources" not in output.dimensions
    assert any(
        "The resources stream stopped after 0 rows" in r.getMessage() for r in caplog.records
    )
    assert set(output.dimensions) == DIMENSION_STREAMS - {"resources"}


def test_keystone_pages_are_followed_to_the_end(sim: Simulator) -> None:
    """Keystone (Train and later) pages its lists at list_limit, with a marker link."""
    sim.keystone.list_limit = 3
    output = run_tap(tap_config(sim))
    identities = sim.keystone.identities
    assert len(identities.projects) > 6
    assert sorted(p["id"] for p in output.dimensions["projects"]) == sorted(identities.projects)
    assert sorted(u["id"] for u in output.dimensions["users"]) == sorted(identities.users)
    pages = [r for r in sim.requests if r.path == "/identity/v3/projects"]
    assert len(pages) == len(identities.projects) // 3 + 1


def test_a_keystone_that_keeps_failing_leaves_the_samples_whole(
    sim: Simulator, caplog: pytest.LogCaptureFixture, backoff_waits: list[float]
) -> None:
    made = _cloud(sim)
    sim.faults.add(FaultRule(method="GET", path="^/identity/v3/projects$", status=503))
    with caplog.at_level(logging.WARNING):
        output = run_tap(tap_config(sim, max_retries=1))
    assert output.count() == len(made)
    assert "projects" not in output.dimensions
    assert {"domains", "users", "resources", "meters"} <= set(output.dimensions)
    said = [r.getMessage() for r in caplog.records if "projects stream" in r.getMessage()]
    assert said, "one warning says the projects stream is empty"
