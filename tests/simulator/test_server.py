"""Seeding (spec 1.8), Gnocchi mode (spec 1.0), tokens (spec 6), faults, admin API, storage."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import time
import uuid

import pytest
import requests

from ceilometer_simulator import CloudSpec, FaultRule, Simulator, generate_samples
from tests.simulator.conftest import Api, fault, handmade_samples

GNOCCHI_MESSAGE = (
    "This telemetry installation is configured to use Gnocchi. Please use the Gnocchi API "
    "available on the metric endpoint to retrieve data."
)

KEYSTONE_401 = {
    "error": {
        "code": 401,
        "title": "Unauthorized",
        "message": "The request you have made requires authentication.",
    }
}


def _post_body(**over: object) -> list[dict[str, object]]:
    item: dict[str, object] = {
        "counter_name": "my.meter",
        "counter_type": "gauge",
        "counter_unit": "B",
        "counter_volume": 3,
        "resource_id": "res-1",
        "resource_metadata": {"a.b": "c", "d": "e"},
        "timestamp": "2013-01-01 23:23:20",
    }
    item.update(over)
    return [item]


# -- spec 1.8 POST /v2/meters/<name> ------------------------------------------------------------


def test_spec18_post_direct_writes_to_storage(fresh: Simulator, fresh_admin: Api) -> None:
    """spec 1.8: 201 with echoed samples and new message ids; source becomes project:source."""
    r = fresh_admin.post("/v2/meters/my.meter", params={"direct": "True"}, json=_post_body())
    assert r.status_code == 201, r.text
    (echo,) = r.json()
    assert uuid.UUID(echo["message_id"]).version == 1
    token = fresh.keystone.validate(fresh_admin.session.headers["X-Auth-Token"])
    assert token is not None
    assert token.project is not None
    assert echo["project_id"] == token.project.id
    assert echo["user_id"] == token.user.id
    assert echo["source"] == f"{token.project.id}:openstack"
    assert echo["timestamp"] == "2013-01-01T23:23:20"
    assert echo["counter_volume"] == 3.0
    stored = fresh_admin.get(f"/v2/samples/{echo['message_id']}").json()
    assert stored["metadata"] == {"a.b": "c", "d": "e"}
    assert stored["timestamp"] == "2013-01-01T23:23:20"
    assert stored["recorded_at"] is not None
    assert fresh.store.count("my.meter") == 1


def test_spec18_post_keeps_deep_nesting_for_metadata_queries(fresh_admin: Api) -> None:
    """spec 1.8/1.4: metadata POSTed three levels deep is stored nested as the real 9.0.7 does,
    so the complex query on its dotted key finds it (it stored `instance.flavor:ram`)."""
    for metadata in ({"instance.flavor.ram": "512"}, {"instance": {"flavor": {"ram": "512"}}}):
        body = _post_body(resource_metadata=metadata, resource_id=str(uuid.uuid4()))
        r = fresh_admin.post("/v2/meters/my.meter", params={"direct": "True"}, json=body)
        assert r.status_code == 201, r.text
        assert r.json()[0]["resource_metadata"] == {"instance.flavor.ram": "512"}
    found = fresh_admin.query(filter={"=": {"metadata.instance.flavor.ram": "512"}})
    assert found.status_code == 200, found.text
    assert len(found.json()) == 2
    assert found.json()[0]["metadata"] == {"instance.flavor:ram": "512"}


def test_spec18_post_validation(fresh_admin: Api) -> None:
    """spec 1.8: name must match, no message_id, a known type, a valid timestamp."""
    post = fresh_admin.post
    r = post("/v2/meters/other", json=_post_body())
    assert (
        fault(r)
        == "Invalid input for field/attribute counter_name. Value: 'my.meter'. should be other"
    )
    r = post("/v2/meters/my.meter", json=_post_body(message_id="x"))
    assert "The message_id must not be set" in fault(r)
    r = post("/v2/meters/my.meter", json=_post_body(counter_type="weird"))
    assert "The counter type must be: gauge, delta, cumulative" in fault(r)
    r = post("/v2/meters/my.meter", json=_post_body(timestamp="2013-01-bad 23:23:20"))
    assert r.status_code == 400
    assert fault(r).startswith("Invalid input for field/attribute samples")
    r = post("/v2/meters/my.meter", json=[])
    assert fault(r) == "Samples should be included in request body"


def test_spec18_non_admin_cannot_post_to_other_projects(fresh: Simulator) -> None:
    """spec 1.8: a member posting for another project gets 400."""
    api = Api(fresh, fresh.issue_token("demo"))
    r = api.post("/v2/meters/my.meter", json=_post_body(project_id="someone-else"))
    assert r.status_code == 400
    assert "can not post samples to other projects" in fault(r)


# -- Gnocchi mode (spec 1.0) --------------------------------------------------------------------


def test_spec10_gnocchi_mode_answers_410(fresh: Simulator, fresh_admin: Api) -> None:
    """spec 1.0: sample URLs answer 410 with the real message; POST without direct still works."""
    fresh.gnocchi = True
    for method, path in (
        ("GET", "/v2/meters"),
        ("GET", "/v2/meters/meter.test"),
        ("GET", "/v2/samples"),
        ("GET", "/v2/resources"),
        ("POST", "/v2/query/samples"),
    ):
        r = fresh_admin.request(method, path, json={}, headers={"Accept": "application/json"})
        assert r.status_code == 410, path
        body = r.json()["error_message"]
        assert GNOCCHI_MESSAGE in body["message"]
    html = fresh_admin.get("/v2/samples")
    assert html.status_code == 410
    assert isinstance(html.json()["error_message"], str)
    assert fresh_admin.post("/v2/meters/my.meter", json=_post_body()).status_code == 201
    r = fresh_admin.post("/v2/meters/my.meter", params={"direct": "true"}, json=_post_body())
    assert r.status_code == 400
    assert fresh_admin.get("/v2/capabilities").status_code == 200
    assert fresh.store.count("my.meter") == 0


# -- tokens (spec 6) ----------------------------------------------------------------------------


def test_spec6_missing_and_bad_tokens_get_keystone_401(fresh: Simulator) -> None:
    """spec 6: keystonemiddleware's body (no error_message wrapper) and WWW-Authenticate."""
    for headers in ({}, {"X-Auth-Token": "garbage"}):
        r = requests.get(fresh.url + "/v2/meters", headers=headers, timeout=10)
        assert r.status_code == 401
        assert r.json() == KEYSTONE_401
        assert r.headers["WWW-Authenticate"] == f"Keystone uri='{fresh.url}/identity'"


def test_spec6_tokens_expire_and_can_be_revoked(fresh: Simulator) -> None:
    """Tokens live token_ttl seconds; revoke_tokens() and /_sim/tokens/revoke kill them."""
    fresh.token_ttl = 0.3
    api = Api(fresh, fresh.issue_token())
    assert api.get("/v2/capabilities").status_code == 200
    time.sleep(0.4)
    assert api.get("/v2/capabilities").status_code == 401
    fresh.token_ttl = 3600
    api = Api(fresh, fresh.issue_token())
    assert api.get("/v2/capabilities").status_code == 200
    assert fresh.revoke_tokens() >= 1
    assert api.get("/v2/capabilities").status_code == 401
    api = Api(fresh, fresh.issue_token())
    r = requests.post(fresh.url + "/_sim/tokens/revoke", timeout=10)
    assert r.json()["revoked"] >= 1
    assert api.get("/v2/capabilities").json() == KEYSTONE_401


# -- faults -------------------------------------------------------------------------------------


def test_fault_status_for_next_n_requests(fresh: Simulator, fresh_admin: Api) -> None:
    """A status fault hits the next N matching requests only, matched by method and path."""
    fresh.faults.add(
        FaultRule(method="POST", path=r"^/v2/query/samples", action="status", status=503, times=2)
    )
    assert fresh_admin.get("/v2/samples").status_code == 200
    assert [fresh_admin.query().status_code for _ in range(3)] == [503, 503, 200]
    fresh.faults.add(FaultRule(path=r"^/v2/samples", status=500))
    r = fresh_admin.get("/v2/samples")
    assert r.status_code == 500
    assert r.json()["error_message"]["faultcode"] == "Server"
    fresh.faults.clear()
    assert fresh_admin.get("/v2/samples").status_code == 200


def test_fault_rate(fresh: Simulator, fresh_admin: Api) -> None:
    """A rate fault hits about that share of requests."""
    fresh.faults.add(FaultRule(path=r"^/v2/capabilities", rate=0.5, status=503))
    codes = [fresh_admin.get("/v2/capabilities").status_code for _ in range(60)]
    assert 10 < codes.count(503) < 50
    assert set(codes) == {200, 503}


def test_fault_slow(fresh: Simulator, fresh_admin: Api) -> None:
    """A slow fault delays the real answer."""
    fresh.faults.add(FaultRule(path=r"^/v2/capabilities", action="slow", delay=0.3, times=1))
    start = time.monotonic()
    assert fresh_admin.get("/v2/capabilities").status_code == 200
    assert time.monotonic() - start >= 0.3


def test_fault_drop_truncate_garbage(fresh: Simulator, fresh_admin: Api) -> None:
    """Dropped connections, bodies shorter than Content-Length, non-JSON bodies."""
    fresh.faults.add(FaultRule(path=r"^/v2/samples$", action="drop", times=1))
    with pytest.raises(requests.ConnectionError):
        fresh_admin.get("/v2/samples")
    fresh.faults.add(FaultRule(path=r"^/v2/samples$", action="truncate", times=1))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        fresh_admin.get("/v2/samples")
    fresh.faults.add(FaultRule(path=r"^/v2/samples$", action="garbage", times=1))
    r = fresh_admin.get("/v2/samples")
    assert r.status_code == 200
    with pytest.raises(ValueError):  # noqa: PT011
        r.json()
    assert fresh_admin.get("/v2/samples").status_code == 200


def test_truncate_sends_short_body_then_closes(fresh: Simulator, fresh_admin: Api) -> None:
    """Content-Length promises more bytes than arrive before the close."""
    fresh.faults.add(FaultRule(path=r"^/v2/samples$", action="truncate", times=1))
    conn = http.client.HTTPConnection("127.0.0.1", fresh.port, timeout=10)
    conn.request(
        "GET",
        "/v2/samples",
        headers={"X-Auth-Token": str(fresh_admin.session.headers["X-Auth-Token"])},
    )
    resp = conn.getresponse()
    promised = int(resp.headers["Content-Length"])
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    assert 0 < len(info.value.partial) < promised
    conn.close()


def test_keep_alive(fresh: Simulator, fresh_admin: Api) -> None:
    """HTTP/1.1 keep-alive: several requests over one socket."""
    conn = http.client.HTTPConnection("127.0.0.1", fresh.port, timeout=10)
    token = str(fresh_admin.session.headers["X-Auth-Token"])
    for _ in range(3):
        conn.request("GET", "/v2/capabilities", headers={"X-Auth-Token": token})
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
    assert conn.sock is not None
    assert isinstance(conn.sock, socket.socket)
    conn.close()


# -- admin endpoints, recording, storage --------------------------------------------------------


def test_admin_endpoints(fresh: Simulator) -> None:
    """/_sim/samples, /_sim/load, /_sim/faults, /_sim/stats and /_sim/count need no token."""
    url = fresh.url + "/_sim"
    sample = {
        "counter_name": "late.meter",
        "counter_type": "delta",
        "counter_unit": "B",
        "counter_volume": 1e-9,
        "message_id": "adm-1",
        "project_id": "p",
        "user_id": "u",
        "resource_id": "r",
        "source": "openstack",
        "timestamp": "2017-01-01T00:00:00+02:00",
        "recorded_at": None,
        "resource_metadata": {"x": {"y": 1}},
    }
    assert requests.post(url + "/samples", json=[sample], timeout=10).json() == {"added": 1}
    assert requests.get(url + "/count", params={"meter": "late.meter"}, timeout=10).json() == {
        "count": 1
    }
    (got,) = fresh.store.iter_samples("late.meter")
    assert (
        got["timestamp"] == "2016-12-31T22:00:00"
    )  # storage converts offsets; only queries drop them
    assert got["resource_metadata"] == {"x.y": "1"}
    spec = CloudSpec(samples=50, meters=["cpu"]).to_json()
    assert requests.post(url + "/load", json=spec, timeout=10).json() == {"added": 50}
    assert fresh.store.count("cpu") == 50
    rule = {
        "method": "GET",
        "path": "^/v2/capabilities",
        "action": "status",
        "status": 503,
        "times": 1,
    }
    assert requests.post(url + "/faults", json=rule, timeout=10).status_code == 200
    api = Api(fresh, fresh.issue_token())
    assert api.get("/v2/capabilities").status_code == 503
    requests.post(url + "/faults", json=rule, timeout=10)
    assert requests.delete(url + "/faults", timeout=10).json() == {"rules": []}
    assert api.get("/v2/capabilities").status_code == 200
    stats = requests.get(url + "/stats", timeout=10).json()
    assert stats["requests"]["GET /v2/capabilities"] == 2
    assert requests.post(url + "/load", json={"bogus": 1}, timeout=10).status_code == 400


def test_requests_are_recorded(fresh: Simulator, fresh_admin: Api) -> None:
    """sim.requests: method, path, query string, JSON body, status; reset_requests()."""
    fresh.reset_requests()
    fresh_admin.get("/v2/samples", params={"limit": 5})
    fresh_admin.query(filter={"=": {"meter": "x"}}, limit=7)
    first, second = fresh.requests
    assert (first.method, first.path, first.query, first.status) == (
        "GET",
        "/v2/samples",
        "limit=5",
        200,
    )
    assert first.params == {"limit": ["5"]}
    assert second.json == {"filter": json.dumps({"=": {"meter": "x"}}), "limit": 7}
    assert "X-Auth-Token" not in second.headers
    fresh.reset_requests()
    assert fresh.requests == []


def test_store_iter_samples_matches_api_and_orders_by_timestamp_then_id(
    fresh: Simulator, fresh_admin: Api
) -> None:
    """iter_samples yields OldSample dicts exactly as the API prints them, oldest first."""
    fresh.store.load(CloudSpec(samples=300, tie_fraction=0.5, tie_size=20))
    api = {
        s["message_id"]: s for s in fresh_admin.get("/v2/meters/cpu", params={"limit": 1000}).json()
    }
    mine = list(fresh.store.iter_samples("cpu"))
    assert len(mine) == len(api) == fresh.store.count("cpu")
    assert all(api[s["message_id"]] == s for s in mine)
    keys = [(s["timestamp"], s["message_id"]) for s in fresh.store.iter_samples()]
    assert len(keys) == fresh.store.count()
    assert fresh.store.meters() == sorted({"meter.test", "meter.nulls", *CloudSpec().meters})


def test_store_file_persists_and_memory_mode(tmp_path: object) -> None:
    """A file database survives a restart; ':memory:' works too; naive and aware UTC agree."""
    path = f"{tmp_path}/db.sqlite"
    with Simulator(db_path=path) as s:
        s.store.add_samples(handmade_samples())
    with Simulator(db_path=path) as s:
        assert s.store.count("meter.test") == 5
        assert s.store.add_samples(generate_samples(CloudSpec(samples=10))) == 10
        assert s.store.count() == 16
    with Simulator(db_path=":memory:") as s:
        s.store.add_samples(handmade_samples())
        (null,) = s.store.iter_samples("meter.nulls")
        assert null["timestamp"] == "2012-07-02T10:40:00"
        assert null["user_id"] is None
        assert null["recorded_at"] is None
        naive = {
            **handmade_samples()[0],
            "message_id": "naive",
            "timestamp": dt.datetime(2012, 7, 2, 10, 40),  # noqa: DTZ001 - naive means UTC
        }
        s.store.add_samples([naive])
        assert {x["timestamp"] for x in s.store.iter_samples("meter.test")} >= {
            "2012-07-02T10:40:00"
        }


def test_interfaces_are_served_under_prefixes(fresh: Simulator, fresh_admin: Api) -> None:
    """Catalog internal/admin endpoints answer like public, and requests record the interface."""
    fresh.reset_requests()
    for name, base in fresh.endpoints.items():
        r = fresh_admin.session.get(base + "/v2/capabilities", timeout=10)
        assert r.status_code == 200, name
    assert [(r.interface, r.path) for r in fresh.requests] == [
        ("public", "/v2/capabilities"),
        ("internal", "/v2/capabilities"),
        ("admin", "/v2/capabilities"),
    ]


def test_concurrent_readers_and_a_writer(fresh: Simulator) -> None:
    """Threaded server: parallel queries stay consistent while samples arrive."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    token = fresh.issue_token()
    url = fresh.url + "/_sim/load"

    def read(_: int) -> int:
        with requests.Session() as s:
            s.headers["X-Auth-Token"] = token
            codes = {s.get(fresh.url + "/v2/samples", params={"limit": 50}, timeout=30).status_code}
            r = s.post(fresh.url + "/v2/query/samples", json={"limit": 20}, timeout=30)
            codes.add(r.status_code)
            return max(codes)

    with ThreadPoolExecutor(max_workers=6) as pool:
        writer = pool.submit(
            requests.post, url, json=CloudSpec(samples=5_000, seed=9).to_json(), timeout=60
        )
        assert set(pool.map(read, range(24))) == {200}
        assert writer.result().json() == {"added": 5_000}
    assert fresh.store.count() == 5_006
    assert len(fresh.requests) == 48
