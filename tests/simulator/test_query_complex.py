"""POST /v2/query/samples: body rules, filter and orderby grammar, visibility (spec 1.4)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from ceilometer_simulator import Simulator, project_id
from tests.simulator.conftest import OTHER_PROJECT, Api, fault

if TYPE_CHECKING:
    import requests

ALL = {"m-a", "m-b", "m-c", "m-d", "m-e"}
METER = {"=": {"meter": "meter.test"}}


def ids(r: requests.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [s["id"] for s in r.json()]


def q(admin: Api, node: dict, **kw: object) -> set[str]:
    return set(ids(admin.query(filter={"and": [METER, node]}, limit=100, **kw)))


def test_spec14_body_rules(admin: Api) -> None:
    """spec 1.4: JSON strings for filter/orderby; {} is valid; bad keys, types, bodies rejected."""
    r = admin.query()
    assert len(ids(r)) == 100
    stamps = [s["timestamp"] for s in r.json()]
    assert stamps == sorted(stamps, reverse=True)
    r = admin.post("/v2/query/samples", json={"filter": "{}", "foo": 1})
    assert fault(r) == "Unknown attribute for argument body: foo"
    r = admin.post("/v2/query/samples", json={"filter": {"=": {"meter": "x"}}})
    assert r.status_code == 400
    r = admin.post("/v2/query/samples", data=b"")
    assert r.status_code in (400, 415)
    r = admin.post("/v2/query/samples", data=b"", headers={"Content-Type": "application/json"})
    assert fault(r) == 'Missing argument: "body"'
    r = admin.post("/v2/query/samples", data="filter=x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert (
        len(ids(admin.post("/v2/query/samples", json={"filter": json.dumps(METER), "limit": "10"})))
        == 5
    )


def test_spec14_limit(admin: Api) -> None:
    """spec 1.4/3: missing limit means 100; 0 and negatives: 'Limit must be positive'."""
    for bad in (0, -5):
        r = admin.query(limit=bad)
        assert r.status_code == 400
        assert fault(r) == "Limit must be positive"
    assert len(ids(admin.query(limit=3))) == 3


def test_spec14_comparison_operators_case_insensitive(admin: Api) -> None:
    """spec 1.4: =, !=, <, >, <=, =<, >=, =>, =~; op names are case-insensitive."""
    assert q(admin, {"=": {"volume": 2}}) == {"m-b"}
    assert q(admin, {"!=": {"volume": 2}}) == ALL - {"m-b"}
    assert q(admin, {"<": {"counter_volume": 2}}) == {"m-a"}
    assert q(admin, {">": {"volume": 4}}) == {"m-e"}
    assert q(admin, {"<=": {"volume": 2}}) == {"m-a", "m-b"}
    assert q(admin, {"=<": {"volume": 2}}) == {"m-a", "m-b"}
    assert q(admin, {">=": {"volume": 4}}) == {"m-d", "m-e"}
    assert q(admin, {"=>": {"volume": 4}}) == {"m-d", "m-e"}
    assert q(admin, {"=~": {"resource": "^resource-[ab]$"}}) == {"m-a", "m-b", "m-c", "m-d"}
    upper = {"AND": [METER, {"Or": [{"=": {"volume": 1}}, {"In": {"volume": [5, 4]}}]}]}
    assert set(ids(admin.query(filter=upper))) == {"m-a", "m-d", "m-e"}
    assert q(admin, {"not": {"in": {"resource_id": ["resource-a", "resource-b"]}}}) == {"m-e"}
    assert q(admin, {"=": {"user": "user-id"}}) == ALL
    assert q(admin, {"=": {"project": OTHER_PROJECT}}) == {"m-c", "m-d"}
    assert q(admin, {"=": {"type": "cumulative"}}) == ALL
    assert q(admin, {"=": {"unit": "x"}}) == set()
    assert q(admin, {"=": {"message_id": "m-c"}}) == {"m-c"}


def test_spec14_metadata_filters(admin: Api) -> None:
    """spec 1.4: metadata.<key> with typed values; not on a missing key returns nothing (SQL)."""
    assert q(admin, {"=": {"metadata.size": 0}}) == {"m-a"}
    assert q(admin, {"=": {"metadata.size": "0"}}) == {"m-e"}
    assert q(admin, {"=": {"metadata.dict_properties.key": "value"}}) == {"m-d"}
    assert q(admin, {"=": {"metadata.is_public": True}}) == {"m-c"}
    assert q(admin, {"not": {"=": {"metadata.nothere": "x"}}}) == set()
    # ceilometer.NotImplementedError in the SQL driver: WSME answers 501 (conformance tier).
    r = admin.query(filter={"in": {"metadata.size": [0]}})
    assert r.status_code == 501
    assert r.json()["error_message"] == {
        "faultcode": "Server",
        "faultstring": "Metadata query with in operator is not implemented",
        "debuginfo": None,
    }


def test_spec14_grammar_errors(admin: Api) -> None:
    """spec 1.4: unknown field, malformed JSON, single-child and/or, bad orderby."""
    r = admin.query(filter={"=": {"foo": "bar"}})
    assert r.status_code == 400
    assert fault(r).startswith("Filter expression not valid: ")
    assert "is not valid under any of the given schemas" in fault(r)
    r = admin.query(filter="{'bad json")
    assert fault(r).startswith("Filter expression not valid: ")
    assert admin.query(filter={"and": [METER]}).status_code == 400
    assert admin.query(filter={"in": {"volume": []}}).status_code == 400
    assert admin.query(filter={"=": {"volume": 1, "meter": "x"}}).status_code == 400
    r = admin.query(orderby='[{"timestamp": "asc"}] extra')
    assert fault(r).startswith("Order-by expression not valid: Extra data")
    r = admin.query(orderby=[{"timestamp": ""}])
    assert r.status_code == 400
    assert "does not match '(?i)^asc$|^desc$'" in fault(r)
    assert admin.query(orderby=[{"metadata.size": "asc"}]).status_code == 400
    r = admin.query(filter={">": {"timestamp": "Remember Remember"}})
    assert fault(r) == "Failed to parse the timestamp value Remember Remember"


def test_spec14_source_field_is_a_server_error(admin: Api) -> None:
    """spec 1.4 (inferred): filter or orderby on source fails in the SQL driver with 500."""
    for r in (admin.query(filter={"=": {"source": "x"}}), admin.query(orderby=[{"source": "asc"}])):
        assert r.status_code == 500
        assert r.json()["error_message"]["faultcode"] == "Server"


def test_spec14_orderby(admin: Api) -> None:
    """spec 1.4: asc/desc in any case, several keys; default is timestamp DESC."""
    assert ids(admin.query(filter=METER, orderby=[{"timestamp": "aSc"}])) == [
        "m-a",
        "m-b",
        "m-c",
        "m-d",
        "m-e",
    ]
    assert ids(admin.query(filter=METER)) == ["m-e", "m-d", "m-c", "m-b", "m-a"]
    r = admin.query(filter=METER, orderby=[{"resource_id": "DeSc"}, {"volume": "asc"}])
    assert ids(r) == ["m-e", "m-c", "m-d", "m-a", "m-b"]


def test_spec14_timestamps_exact_and_offsets_dropped(admin: Api) -> None:
    """spec 1.4/2.4: = and > on timestamp compare microseconds exactly; offsets are dropped."""
    assert q(admin, {"=": {"timestamp": "2012-07-02T10:42:00.000005"}}) == {"m-c"}
    assert q(admin, {">": {"timestamp": "2012-07-02T10:42:00.000005"}}) == {"m-d", "m-e"}
    assert q(admin, {"=": {"timestamp": "2012-07-02T10:40:00+03:00"}}) == {"m-a"}
    assert q(admin, {"=": {"timestamp": "2012-07-02T10:40:00Z"}}) == {"m-a"}


def test_spec14_keyset_paging_with_message_id_binary_order(admin: Api) -> None:
    """The benchmark's filter shape pages through a 2,500-sample tie without loss or repeats."""
    end = "2030-01-01T00:00:00"
    last_ts, last_id = "2000-01-01T00:00:00", ""
    seen: list[str] = []
    while True:
        flt = {
            "and": [
                {"=": {"counter_name": "cpu_util"}},
                {
                    "or": [
                        {">": {"timestamp": last_ts}},
                        {"and": [{"=": {"timestamp": last_ts}}, {">": {"message_id": last_id}}]},
                    ]
                },
                {"<=": {"timestamp": end}},
            ]
        }
        r = admin.query(
            filter=flt, orderby=[{"timestamp": "asc"}, {"message_id": "asc"}], limit=700
        )
        page = r.json()
        if not page:
            break
        keys = [(s["timestamp"], s["id"]) for s in page]
        assert keys == sorted(keys)
        seen.extend(s["id"] for s in page)
        last_ts, last_id = page[-1]["timestamp"], page[-1]["id"]
    assert len(seen) == len(set(seen)) == admin.sim.store.count("cpu_util")
    expected = [s["message_id"] for s in admin.sim.store.iter_samples("cpu_util")]
    assert seen == expected


def test_spec14_visibility_for_non_admin(demo: Api) -> None:
    """spec 1.4: non-admins get project_id = own ANDed in; naming another project is 401."""
    assert set(ids(demo.query(filter=METER))) == {"m-a", "m-b", "m-e"}
    assert {s["project_id"] for s in demo.query(limit=500).json()} == {project_id(0)}
    r = demo.query(filter={"=": {"project_id": OTHER_PROJECT}})
    assert r.status_code == 401
    assert fault(r) == f"Not Authorized to access project {OTHER_PROJECT}"
    own = {"and": [METER, {"=": {"project": project_id(0)}}]}
    assert set(ids(demo.query(filter=own))) == {"m-a", "m-b", "m-e"}


def test_spec14_query_plan_uses_the_meter_timestamp_index(sim: Simulator, admin: Api) -> None:
    """Performance: the keyset filter becomes an index range search, not a scan."""
    flt = {
        "and": [
            {"=": {"counter_name": "cpu_util"}},
            {
                "or": [
                    {">": {"timestamp": "2017-01-01T05:00:00"}},
                    {
                        "and": [
                            {"=": {"timestamp": "2017-01-01T05:00:00"}},
                            {">": {"message_id": "a"}},
                        ]
                    },
                ]
            },
            {"<=": {"timestamp": "2017-01-02T00:00:00"}},
        ]
    }
    assert (
        admin.query(
            filter=flt, orderby=[{"timestamp": "asc"}, {"message_id": "asc"}], limit=5
        ).status_code
        == 200
    )
    plan = sim.store.last_plans()[-1]
    assert "ix_sample_meter_ts (meter_pk=? AND ts>? AND ts<?)" in plan
    assert "SCAN" not in plan
    assert "TEMP B-TREE" not in plan


@pytest.mark.parametrize("limit", [1, 2])
def test_spec14_limit_applies_after_ordering(admin: Api, limit: int) -> None:
    """spec 4: LIMIT comes after ORDER BY for the complex query as well."""
    assert (
        ids(admin.query(filter=METER, orderby=[{"volume": "desc"}], limit=limit))
        == ["m-e", "m-d"][:limit]
    )
