"""Fixtures: simulators with generated and hand-made data, and authenticated HTTP sessions."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pytest
import requests

from ceilometer_simulator import CloudSpec, Simulator, project_id

if TYPE_CHECKING:
    from collections.abc import Iterator

UTC = dt.UTC
T0 = dt.datetime(2012, 7, 2, 10, 40, tzinfo=UTC)
OTHER_PROJECT = "project-other"


def handmade_samples() -> list[dict[str, Any]]:
    """Samples of meter.test whose values pin down each query rule."""
    demo = project_id(0)
    base = {
        "counter_name": "meter.test",
        "counter_type": "cumulative",
        "counter_unit": "",
        "source": "test_source",
        "user_id": "user-id",
    }
    rows = [
        # (message_id, timestamp, volume, project, resource, metadata)
        ("m-a", T0, 1, demo, "resource-a", {"display_name": "test-server", "size": 0}),
        ("m-b", T0 + dt.timedelta(minutes=1), 2, demo, "resource-a", {"size": 0.75}),
        (
            "m-c",
            T0 + dt.timedelta(minutes=2, microseconds=5),
            3,
            OTHER_PROJECT,
            "resource-b",
            {"tag": "self.sample", "is_public": True},
        ),
        (
            "m-d",
            T0 + dt.timedelta(minutes=2, microseconds=6),
            4,
            OTHER_PROJECT,
            "resource-b",
            {"dict_properties": {"key": "value"}, "not_ignored_list": ["returned"]},
        ),
        ("m-e", T0 + dt.timedelta(minutes=3), 5, demo, "resource-c", {"size": "0"}),
    ]
    out = []
    for mid, ts, vol, proj, res, meta in rows:
        out.append(
            {
                **base,
                "message_id": mid,
                "timestamp": ts,
                "recorded_at": ts + dt.timedelta(seconds=1),
                "counter_volume": vol,
                "project_id": proj,
                "resource_id": res,
                "resource_metadata": meta,
            }
        )
    out.append(
        {
            **base,
            "counter_name": "meter.nulls",
            "counter_type": "gauge",
            "message_id": "m-null",
            "timestamp": T0.replace(tzinfo=None),
            "recorded_at": None,
            "counter_volume": 7,
            "project_id": demo,
            "user_id": None,
            "resource_id": "resource-n",
            "resource_metadata": {},
        }
    )
    return out


TIE_SPEC = CloudSpec(
    seed=7,
    samples=3_000,
    meters=["cpu_util"],
    tie_fraction=0.9,
    tie_size=2_500,
    start=dt.datetime(2017, 1, 1, tzinfo=UTC),
    end=dt.datetime(2017, 1, 2, tzinfo=UTC),
)
CLOUD_SPEC = CloudSpec(
    seed=1,
    samples=4_000,
    resources_per_project=12,
    late_fraction=0.05,
    whole_second_fraction=0.3,
    extreme_volumes=True,
)


@pytest.fixture(scope="package")
def sim() -> Iterator[Simulator]:
    """A read-mostly simulator: a generated cloud, a 2,500-sample tie and hand-made samples."""
    with Simulator(seed=3) as s:
        s.store.load(CLOUD_SPEC)
        s.store.load(TIE_SPEC)
        s.store.add_samples(handmade_samples())
        yield s


def _token(s: Simulator, user: str) -> str:
    password = {"admin": "admin-secret", "demo": "demo-secret"}[user]
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"name": "Default"}, "password": password}
                },
            },
            "scope": {"project": {"name": user, "domain": {"id": "default"}}},
        }
    }
    r = requests.post(f"{s.auth_url}/auth/tokens", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


class Api:
    """A tiny client bound to one simulator and one token."""

    def __init__(self, s: Simulator, token: str | None) -> None:
        self.sim = s
        self.session = requests.Session()
        if token:
            self.session.headers["X-Auth-Token"] = token

    def get(self, path: str, params: Any = None, **kw: Any) -> requests.Response:
        return self.session.get(self.sim.url + path, params=params, timeout=30, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.session.post(self.sim.url + path, timeout=30, **kw)

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.session.request(method, self.sim.url + path, timeout=30, **kw)

    def query(
        self, filter: Any = None, orderby: Any = None, limit: Any = None
    ) -> requests.Response:
        body: dict[str, Any] = {}
        if filter is not None:
            body["filter"] = filter if isinstance(filter, str) else json.dumps(filter)
        if orderby is not None:
            body["orderby"] = orderby if isinstance(orderby, str) else json.dumps(orderby)
        if limit is not None:
            body["limit"] = limit
        return self.post("/v2/query/samples", json=body)


def fault(r: requests.Response) -> str:
    """The faultstring of a WSME error body."""
    return str(r.json()["error_message"]["faultstring"])


@pytest.fixture(scope="package")
def admin(sim: Simulator) -> Api:
    return Api(sim, _token(sim, "admin"))


@pytest.fixture(scope="package")
def demo(sim: Simulator) -> Api:
    return Api(sim, _token(sim, "demo"))


@pytest.fixture
def fresh() -> Iterator[Simulator]:
    """A simulator of its own (for tests that change data, faults, tokens or modes)."""
    with Simulator() as s:
        s.store.add_samples(handmade_samples())
        yield s


@pytest.fixture
def fresh_admin(fresh: Simulator) -> Api:
    return Api(fresh, _token(fresh, "admin"))
