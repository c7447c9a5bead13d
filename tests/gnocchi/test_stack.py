"""The Gnocchi tier's stack is a real Gnocchi that behaves as gnocchi-api.md says.

These tests prove the fixtures, not the tap: Ceilometer's policies exist as Ceilometer makes
them, posted measures read back as Gnocchi's own 5-minute means, a metricd backlog is invisible
until refreshed, and in keystone mode Gnocchi checks real Keystone tokens and sits in the catalog.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from tests.gnocchi.stack import GnocchiKeystoneStack, GnocchiStack

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _instance(gnocchi: GnocchiStack) -> str:
    resource_id = str(uuid.uuid4())
    gnocchi.create_resource(
        "instance",
        resource_id,
        "project-1",
        "user-1",
        display_name="vm-1",
        flavor_id="m1.small",
        flavor_name="m1.small",
        host="compute-1",
        launched_at=T0,
    )
    return resource_id


def _five_minute_means(points: list[tuple[dt.datetime, float]]) -> list[list[object]]:
    """What Gnocchi's ``mean`` at 300 s must be: the mean of each period, period start in UTC."""
    buckets: dict[dt.datetime, list[float]] = defaultdict(list)
    for ts, value in points:
        start = dt.datetime.fromtimestamp(ts.timestamp() // 300 * 300, tz=dt.UTC)
        buckets[start].append(value)
    return [
        [start.isoformat(), 300.0, sum(values) / len(values)]
        for start, values in sorted(buckets.items())
    ]


def test_ceilometer_archive_policies_are_as_ceilometer_makes_them(gnocchi: GnocchiStack) -> None:
    policies = {
        p["name"]: p for p in gnocchi.request("GET", "/v1/archive_policy", user="nobody").json()
    }
    five_minutes = [{"granularity": "0:05:00", "points": 8640, "timespan": "30 days, 0:00:00"}]
    high = [
        {"granularity": "0:00:01", "points": 3600, "timespan": "1:00:00"},
        {"granularity": "0:01:00", "points": 1440, "timespan": "1 day, 0:00:00"},
        {"granularity": "1:00:00", "points": 8760, "timespan": "365 days, 0:00:00"},
    ]
    expected = {
        "ceilometer-low": (["mean"], five_minutes),
        "ceilometer-low-rate": (["mean", "rate:mean"], five_minutes),
        "ceilometer-high": (["mean"], high),
        "ceilometer-high-rate": (["mean", "rate:mean"], high),
    }
    for name, (methods, definition) in expected.items():
        policy = policies[name]
        assert sorted(policy["aggregation_methods"]) == methods, name
        assert policy["back_window"] == 0, name
        assert {tuple(sorted(d.items())) for d in policy["definition"]} == {
            tuple(sorted(d.items())) for d in definition
        }, name
    # gnocchi-upgrade's own policies are there too, as in a real deployment.
    assert {"low", "medium", "high", "bool"} <= set(policies)
    types = {t["name"] for t in gnocchi.request("GET", "/v1/resource_type").json()}
    assert {"instance", "volume", "instance_disk", "instance_network_interface", "image"} <= types


def test_measures_read_back_as_five_minute_means(gnocchi: GnocchiStack) -> None:
    resource_id = _instance(gnocchi)
    metric_id = gnocchi.create_metric(resource_id, "memory.usage", "ceilometer-low", unit="MB")
    # Every 37 s for about an hour: periods hold 8 or 9 measures, some straddle a boundary.
    points = [(T0 + dt.timedelta(seconds=37 * i), float((i * 7919) % 1000)) for i in range(100)]
    gnocchi.post_measures(metric_id, points)

    answer = gnocchi.measures(metric_id, 300, "mean", refresh=True)

    expected = _five_minute_means(points)
    assert [row[:2] for row in answer] == [row[:2] for row in expected]
    for got, want in zip(answer, expected, strict=True):
        assert math.isclose(got[2], want[2], rel_tol=1e-9), (got, want)
    # ceilometer-low has mean only: other methods are a 404 (gnocchi-api.md section 5).
    response = gnocchi.request(
        "GET",
        f"/v1/metric/{metric_id}/measures",
        params={"aggregation": "max"},
        expect=(404,),
    )
    assert response.json()["description"]["cause"].startswith("Aggregation method does not exist")


def test_backlog_is_invisible_without_refresh(gnocchi: GnocchiStack) -> None:
    resource_id = _instance(gnocchi)
    refreshed = gnocchi.create_metric(resource_id, "vcpus", "ceilometer-low")
    by_metricd = gnocchi.create_metric(resource_id, "memory", "ceilometer-low")
    points = [(T0 + dt.timedelta(minutes=i), 2.0) for i in range(12)]
    gnocchi.stop_metricd()
    try:
        gnocchi.batch_post({refreshed: points, by_metricd: points})
        assert gnocchi.status()["storage"]["summary"]["metrics"] >= 2

        assert gnocchi.measures(refreshed, 300, refresh=False) == []
        expected = _five_minute_means(points)
        assert gnocchi.measures(refreshed, 300, refresh=True) == expected
        assert gnocchi.measures(by_metricd, 300, refresh=False) == []
    finally:
        gnocchi.start_metricd()
    gnocchi.wait_until_processed()
    assert gnocchi.measures(by_metricd, 300, refresh=False) == expected


def test_keystone_mode_checks_real_tokens(gnocchi_keystone: GnocchiKeystoneStack) -> None:
    stack = gnocchi_keystone
    session = stack.session(stack.admin)

    response = session.get(f"{stack.gnocchi.url}/v1/metric", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert isinstance(response.json(), list)

    anonymous = requests.get(
        f"{stack.gnocchi.url}/v1/metric", headers={"Accept": "application/json"}, timeout=30
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Keystone uri=")

    bad = requests.get(
        f"{stack.gnocchi.url}/v1/metric",
        headers={"Accept": "application/json", "X-Auth-Token": "not-a-token"},
        timeout=30,
    )
    assert bad.status_code == 401


def test_keystone_catalog_has_the_metric_endpoint(gnocchi_keystone: GnocchiKeystoneStack) -> None:
    stack = gnocchi_keystone
    session = stack.session(stack.admin)
    for interface in ("public", "internal", "admin"):
        endpoint = session.get_endpoint(
            service_type="metric", service_name="gnocchi", interface=interface
        )
        assert endpoint == stack.gnocchi.url, interface
    catalog = session.auth.get_access(session).service_catalog.catalog
    (metric,) = [service for service in catalog if service["type"] == "metric"]
    assert metric["name"] == "gnocchi"
    assert {e["interface"] for e in metric["endpoints"]} == {"public", "internal", "admin"}


@pytest.mark.parametrize("who", ["admin", "demo"])
def test_keystone_helpers_call_with_tokens(
    gnocchi_keystone: GnocchiKeystoneStack, who: str
) -> None:
    """The stack's own helpers work in keystone mode; demo (member) sees nothing of admin's."""
    gnocchi = gnocchi_keystone.gnocchi
    metric_id = gnocchi.create_metric(None, f"standalone-{uuid.uuid4()}", "ceilometer-low")
    gnocchi.post_measures(metric_id, [(T0, 1.0)])
    listed = {m["id"] for m in gnocchi.request("GET", "/v1/metric", user=who).json()}
    assert (metric_id in listed) == (who == "admin")
