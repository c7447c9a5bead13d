"""HTTP behaviour of the Ceilometer v2 endpoints, point by point against the specification."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections import Counter

import requests

from ceilometer_simulator import Simulator, project_id
from tests.simulator.conftest import OTHER_PROJECT, TIE_SPEC, Api, fault

OLD_SAMPLE_KEYS = {
    "counter_name",
    "counter_type",
    "counter_unit",
    "counter_volume",
    "resource_id",
    "project_id",
    "user_id",
    "source",
    "timestamp",
    "recorded_at",
    "resource_metadata",
    "message_id",
}
SAMPLE_KEYS = {
    "id",
    "meter",
    "type",
    "unit",
    "volume",
    "user_id",
    "project_id",
    "resource_id",
    "source",
    "timestamp",
    "recorded_at",
    "metadata",
}
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$")


# -- spec 1.0 general behaviour ---------------------------------------------------------------


def test_spec10_root_versions_without_token(sim: Simulator) -> None:
    """spec 1.0: GET / lists v2 (stable, 2013-02-13) and needs no token."""
    r = requests.get(sim.url + "/", timeout=10)
    assert r.status_code == 200
    (v2,) = r.json()["versions"]["values"]
    assert v2["id"] == "v2"
    assert v2["status"] == "stable"
    assert v2["updated"] == "2013-02-13T00:00:00Z"
    assert {"href": f"{sim.url}/v2", "rel": "self"} in v2["links"]
    assert v2["media-types"][0]["type"] == "application/vnd.openstack.telemetry-v2+json"


def test_spec10_v2_itself_and_unknown_paths_are_404(admin: Api) -> None:
    """spec 1.0: GET /v2 is 404 (known quirk); unknown /v2/ paths are 404 with error_message."""
    for path in ("/v2", "/v2/nothing", "/v2/meters/a/b/c"):
        r = admin.get(path)
        assert r.status_code == 404
        assert r.json()["error_message"]
    r = admin.get("/v2/nothing", headers={"Accept": "application/json"})
    assert r.json()["error_message"]["code"] == "404 Not Found"


def test_spec10_wrong_methods_are_405(admin: Api) -> None:
    """spec 1.0: POST /v2/samples and POST /v2/meters: 405 Allow GET; DELETE /v2/meters: 405."""
    for method, path in (("POST", "/v2/samples"), ("POST", "/v2/meters"), ("DELETE", "/v2/meters")):
        r = admin.request(method, path, json=[])
        assert r.status_code == 405
        assert r.headers["Allow"] == "GET"


def test_spec10_accept_text_plain_is_406(admin: Api) -> None:
    """spec 1.0: Accept text/plain gets 406; text/plain with JSON at q=0.8 is served.

    The error_message is WebOb's page as a string (plain text, or HTML for a client that takes
    HTML), byte for byte what the real Ceilometer 9.0.7 sends (conformance tier).
    """
    r = admin.get("/v2/meters", headers={"Accept": "text/plain"})
    assert r.status_code == 406
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {
        "error_message": "406 Not Acceptable\n\nThe resource could not be generated that was "
        "acceptable to your browser (content of type text/plain. \n\n "
    }
    r = admin.get("/v2/meters", headers={"Accept": "text/html"})
    assert r.status_code == 406
    assert r.json() == {
        "error_message": "<html>\n <head>\n  <title>406 Not Acceptable</title>\n </head>\n"
        " <body>\n  <h1>406 Not Acceptable</h1>\n  The resource could not be generated that was"
        " acceptable to your browser\n(content of type text/html. <br /><br />\n\n </body>\n"
        "</html>"
    }
    ok = admin.get("/v2/meters", headers={"Accept": "text/plain, application/json; q=0.8"})
    assert ok.status_code == 200


def test_spec10_unknown_and_repeated_arguments(admin: Api) -> None:
    """spec 1.0: unknown query args, args on /v2/samples/<id>, repeated limit, bad ints: 400."""
    r = admin.get("/v2/samples", params={"foo": "bar"})
    assert r.status_code == 400
    assert fault(r) == 'Unknown argument: "foo"'
    r = admin.get("/v2/samples/m-a", params={"limit": 5})
    assert r.status_code == 400
    assert fault(r).startswith("Unknown argument:")
    r = admin.get("/v2/meters", params=[("limit", 1), ("limit", 1)])
    assert r.status_code == 400
    r = admin.get("/v2/samples", params={"limit": "happiness"})
    assert r.status_code == 400
    assert "Invalid input for field/attribute limit" in fault(r)
    r = admin.get("/v2/samples", params={"limit": "NaN"})
    assert "unable to convert to int" in fault(r)
    r = admin.get("/v2/resources", params={"meter_links": "yes please"})
    assert "unable to convert to int" in fault(r)


def test_spec10_get_with_json_body(admin: Api) -> None:
    """spec 1.0: GET may carry q and limit in a JSON body; the same arg twice gives 400."""
    q = [{"field": "resource_id", "op": "eq", "value": "resource-b"}]
    r = admin.get("/v2/meters/meter.test", json={"q": q, "limit": 10})
    assert r.status_code == 200
    assert {s["message_id"] for s in r.json()} == {"m-c", "m-d"}
    r = admin.get(
        "/v2/meters/meter.test",
        params={"q.field": "resource_id", "q.value": "resource-b"},
        json={"q": q},
    )
    assert r.status_code == 400
    assert fault(r) == "Parameter q was given several times"


def test_spec10_error_body_shape(admin: Api) -> None:
    """spec 1.0: client errors are {"error_message": {faultcode, faultstring, debuginfo}}."""
    r = admin.get("/v2/samples", params={"limit": 0})
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {
        "error_message": {
            "faultcode": "Client",
            "faultstring": "Limit must be positive",
            "debuginfo": None,
        }
    }


# -- spec 1.1 meters ----------------------------------------------------------------------------


def test_spec11_meter_list(admin: Api) -> None:
    """spec 1.1: one entry per (meter, resource) with base64 meter_id; unique=True nulls ids."""
    r = admin.get("/v2/meters", params={"limit": 10_000})
    meters = r.json()
    assert r.status_code == 200
    entry = next(
        m for m in meters if m["name"] == "meter.test" and m["resource_id"] == "resource-a"
    )
    assert entry["meter_id"] == base64.b64encode(b"resource-a+meter.test").decode()
    assert entry["type"] == "cumulative"
    assert entry["source"] == "test_source"
    assert len({(m["name"], m["resource_id"]) for m in meters}) == len(meters)
    unique = admin.get("/v2/meters", params={"unique": "True", "limit": 1000}).json()
    names = [m["name"] for m in unique]
    assert len(names) == len(set(names))
    assert "meter.test" in names
    assert all(m["resource_id"] is None and m["project_id"] is None for m in unique)


def test_spec11_meter_list_default_limit_and_fields(admin: Api) -> None:
    """spec 1.1/3: more than 100 pairs are silently cut to 100; timestamp/limit q are rejected."""
    assert len(admin.get("/v2/meters", params={"limit": 10_000}).json()) > 100
    assert len(admin.get("/v2/meters").json()) == 100
    r = admin.get(
        "/v2/meters", params={"q.field": "timestamp", "q.op": "gt", "q.value": "2012-01-01"}
    )
    assert r.status_code == 400
    assert fault(r) == 'Unknown argument: "timestamp": not valid for this resource'
    r = admin.get("/v2/meters", params={"q.field": "limit", "q.value": "1"})
    assert r.status_code == 400
    assert 'Unknown argument: "limit": unrecognized field in query' in fault(r)
    r = admin.get("/v2/meters", params={"q.field": "resource", "q.value": "resource-b"})
    assert {m["name"] for m in r.json()} == {"meter.test"}


# -- spec 1.2 OldSample -------------------------------------------------------------------------


def test_spec12_old_sample_shape(admin: Api) -> None:
    """spec 1.2: OldSample fields, float volume, flattened metadata, no message_signature."""
    r = admin.get(
        "/v2/meters/meter.test", params={"q.field": "resource_id", "q.value": "resource-b"}
    )
    assert r.status_code == 200
    by_id = {s["message_id"]: s for s in r.json()}
    d = by_id["m-d"]
    assert set(d) == OLD_SAMPLE_KEYS
    assert d["resource_metadata"] == {
        "dict_properties.key": "value",
        "not_ignored_list": "['returned']",
    }
    assert d["counter_volume"] == 4.0
    assert '"counter_volume":4.0' in r.text
    assert d["timestamp"] == "2012-07-02T10:42:00.000006"
    assert d["recorded_at"] == "2012-07-02T10:42:01.000006"
    assert by_id["m-c"]["resource_metadata"] == {"tag": "self.sample", "is_public": "True"}


def test_spec12_unknown_meter_trailing_slash_and_dotted_names(admin: Api) -> None:
    """spec 1.2: unknown meter is [], a trailing slash works, meter.jpg is a meter name."""
    assert admin.get("/v2/meters/noexist").json() == []
    assert admin.get("/v2/meters/meter.jpg").json() == []
    assert len(admin.get("/v2/meters/meter.test/").json()) == 5


# -- spec 1.3 Sample ----------------------------------------------------------------------------


def test_spec13_samples_and_get_one(admin: Api) -> None:
    """spec 1.3: Sample shape; GET /v2/samples/<id>; missing id is 404 "Sample <id> Not Found"."""
    r = admin.get("/v2/samples/m-a")
    assert r.status_code == 200
    assert r.json() == {
        "id": "m-a",
        "meter": "meter.test",
        "type": "cumulative",
        "unit": "",
        "volume": 1.0,
        "user_id": "user-id",
        "project_id": project_id(0),
        "resource_id": "resource-a",
        "source": "test_source",
        "timestamp": "2012-07-02T10:40:00",
        "recorded_at": "2012-07-02T10:40:01",
        "metadata": {"display_name": "test-server", "size": "0"},
    }
    r = admin.get("/v2/samples/nope")
    assert r.status_code == 404
    assert fault(r) == "Sample nope Not Found"
    listed = admin.get("/v2/samples", params={"q.field": "meter", "q.value": "meter.test"}).json()
    assert {s["id"] for s in listed} == {"m-a", "m-b", "m-c", "m-d", "m-e"}
    assert all(set(s) == SAMPLE_KEYS for s in listed)


# -- spec 1.5 / 1.6 / 1.7 -----------------------------------------------------------------------


def test_spec15_resources(admin: Api) -> None:
    """spec 1.5: resource fields, self and meter links, meter_links=0, get one, 404."""
    r = admin.get("/v2/resources", params={"q.field": "resource_id", "q.value": "resource-b"})
    (res,) = r.json()
    assert res["first_sample_timestamp"] == "2012-07-02T10:42:00.000005"
    assert res["last_sample_timestamp"] == "2012-07-02T10:42:00.000006"
    assert res["project_id"] == OTHER_PROJECT
    assert res["links"][0] == {"href": f"{admin.sim.url}/v2/resources/resource-b", "rel": "self"}
    assert {
        "href": f"{admin.sim.url}/v2/meters/meter.test?q.field=resource_id&q.value=resource-b",
        "rel": "meter.test",
    } in res["links"]
    r = admin.get(
        "/v2/resources",
        params={"q.field": "resource_id", "q.value": "resource-b", "meter_links": 0},
    )
    assert len(r.json()[0]["links"]) == 1
    assert admin.get("/v2/resources/resource-b").json()["resource_id"] == "resource-b"
    r = admin.get("/v2/resources/nope")
    assert r.status_code == 404
    assert fault(r) == "Resource nope Not Found"
    assert len(admin.get("/v2/resources").json()) == 100


def test_spec16_capabilities(admin: Api) -> None:
    """spec 1.6: flat api keys, complex query true, storage production_ready."""
    caps = admin.get("/v2/capabilities").json()
    assert set(caps) == {"api", "storage"}
    assert caps["api"]["samples:query:complex"] is True
    assert caps["api"]["statistics:aggregation:selectable:cardinality"] is True
    assert caps["storage"] == {"storage:production_ready": True}


def test_spec17_statistics(admin: Api) -> None:
    """spec 1.7: sums over the filter, negative period and bad groupby/aggregate rejected."""
    (stat,) = admin.get("/v2/meters/meter.test/statistics").json()
    assert (stat["count"], stat["sum"], stat["min"], stat["max"]) == (5, 15.0, 1.0, 5.0)
    assert stat["period"] == 0
    assert stat["groupby"] is None
    assert stat["duration"] == 180.0
    grouped = admin.get(
        "/v2/meters/meter.test/statistics", params={"groupby": "resource_id"}
    ).json()
    assert {g["groupby"]["resource_id"]: g["count"] for g in grouped} == {
        "resource-a": 2,
        "resource-b": 2,
        "resource-c": 1,
    }
    periods = admin.get("/v2/meters/meter.test/statistics", params={"period": 60}).json()
    assert [p["count"] for p in periods] == [1, 1, 2, 1]
    assert (
        fault(admin.get("/v2/meters/meter.test/statistics", params={"period": -1}))
        == "Period must be positive."
    )
    r = admin.get("/v2/meters/meter.test/statistics", params={"groupby": "foo"})
    assert "Invalid groupby fields" in fault(r)
    r = admin.get("/v2/meters/meter.test/statistics", params={"aggregate.func": "mmm"})
    assert fault(r) == "Invalid aggregation function: mmm"
    assert (
        admin.get("/v2/meters/meter.test/statistics", params={"aggregate": "max"}).status_code
        == 400
    )
    assert admin.get("/v2/meters/nothing/statistics").json() == []


def test_spec17_groupby_source_is_not_implemented(admin: Api) -> None:
    """The SQL driver raises ceilometer.NotImplementedError, which WSME answers with 501."""
    r = admin.get("/v2/meters/meter.test/statistics", params={"groupby": "source"})
    assert r.status_code == 501
    assert r.json() == {
        "error_message": {
            "faultcode": "Server",
            "faultstring": "Unable to group by these fields",
            "debuginfo": None,
        }
    }


# -- spec 2 simple query ------------------------------------------------------------------------


def _ids(r: requests.Response) -> set[str]:
    assert r.status_code == 200, r.text
    return {s.get("message_id") or s.get("id") for s in r.json()}


def _ts(admin: Api, op: str, value: str) -> set[str]:
    return _ids(
        admin.get(
            "/v2/meters/meter.test", params={"q.field": "timestamp", "q.op": op, "q.value": value}
        )
    )


def test_spec24_timestamp_bounds_inclusive_exclusive(admin: Api) -> None:
    """spec 2.4: gt is >, ge is >=, le is <=, lt is <, compared to the microsecond."""
    edge = "2012-07-02T10:42:00.000005"
    assert _ts(admin, "gt", edge) == {"m-d", "m-e"}
    assert _ts(admin, "ge", edge) == {"m-c", "m-d", "m-e"}
    assert _ts(admin, "le", edge) == {"m-a", "m-b", "m-c"}
    assert _ts(admin, "lt", edge) == {"m-a", "m-b"}


def test_spec24_offsets_dropped_and_bad_format(admin: Api) -> None:
    """spec 2.4: +05:00 is ignored (not converted); a bad value gives 'invalid timestamp format'."""
    assert _ts(admin, "ge", "2012-07-02T10:43:00+05:00") == {"m-e"}
    assert _ts(admin, "ge", "2012-07-02T10:43:00Z") == {"m-e"}
    assert _ts(admin, "ge", "2012-07-02") == {"m-a", "m-b", "m-c", "m-d", "m-e"}
    r = admin.get("/v2/samples", params={"q.field": "timestamp", "q.op": "gt", "q.value": "123"})
    assert r.status_code == 400
    assert (
        fault(r)
        == "Invalid input for field/attribute timestamp. Value: '123'. invalid timestamp format"
    )


def test_spec22_operators(admin: Api) -> None:
    """spec 2.2: timestamp takes lt/le/gt/ge only; other fields eq only; empty op means eq."""
    r = admin.get(
        "/v2/samples", params={"q.field": "timestamp", "q.op": "eq", "q.value": "2012-07-02"}
    )
    assert (
        fault(r)
        == "Invalid input for field/attribute op. Value: 'eq'. unimplemented operator for timestamp"
    )
    r = admin.get("/v2/samples", params={"q.field": "project_id", "q.op": "lt", "q.value": "x"})
    assert (
        fault(r) == "Invalid input for field/attribute op. Value: 'lt'. "
        "unimplemented operator for project_id"
    )
    r = admin.get("/v2/samples", params={"q.field": "metadata.size", "q.op": "ne", "q.value": "0"})
    assert r.status_code == 400
    r = admin.get("/v2/samples", params={"q.field": "resource", "q.op": "foo", "q.value": "x"})
    assert (
        fault(r)
        == "Invalid input for field/attribute op. Value: 'foo'. unimplemented operator for resource"
    )
    # Exactly what python-ceilometerclient builds (spec 2.1).
    client_style = (
        "q.field=resource_id&q.field=source&q.op=&q.op=&q.type=&q.type="
        "&q.value=resource-b&q.value=test_source&limit=10"
    )
    assert _ids(admin.get("/v2/samples?" + client_style)) == {"m-c", "m-d"}


def test_spec23_unknown_field_message(admin: Api) -> None:
    """spec 2.3: unknown fields give the exact "unrecognized field in query" message."""
    r = admin.get(
        "/v2/samples", params={"q.field": "abc", "q.op": "eq", "q.value": "xyz", "q.type": ""}
    )
    assert r.status_code == 400
    assert fault(r) == (
        "Unknown argument: \"abc\": unrecognized field in query: [<Query 'abc' eq 'xyz' >], "
        "valid keys: ['message_id', 'meter', 'project', 'resource', 'search_offset', 'source', "
        "'timestamp', 'user']"
    )
    for field in ("counter_name", "recorded_at", "volume", "metaquery"):
        r = admin.get("/v2/samples", params={"q.field": field, "q.value": "1"})
        assert "unrecognized field in query" in fault(r)


def test_spec23_fields_and_none(admin: Api) -> None:
    """spec 2.3: user/project/resource/source/message_id filters; the literal None matches NULL."""
    assert _ids(admin.get("/v2/samples", params={"q.field": "message_id", "q.value": "m-b"})) == {
        "m-b"
    }
    assert _ids(admin.get("/v2/samples", params={"q.field": "user", "q.value": "None"})) == {
        "m-null"
    }
    r = admin.get("/v2/samples", params={"q.field": "project", "q.value": OTHER_PROJECT})
    assert _ids(r) == {"m-c", "m-d"}
    assert _ids(
        admin.get(
            "/v2/samples", params={"q.field": "source", "q.value": "test_source", "limit": 50}
        )
    ) == {
        "m-a",
        "m-b",
        "m-c",
        "m-d",
        "m-e",
        "m-null",
    }


def test_spec23_metadata_types(admin: Api) -> None:
    """spec 2.3: untyped values go through literal_eval; typed side tables make types matter."""

    def meta(value: str, type_: str = "") -> set[str]:
        params = {"q.field": "metadata.size", "q.value": value, "q.type": type_}
        return _ids(admin.get("/v2/meters/meter.test", params=params))

    assert meta("0") == {"m-a"}
    assert meta("0", "string") == {"m-e"}
    assert meta("0.75") == {"m-b"}
    assert meta("0", "integer") == {"m-a"}
    r = admin.get(
        "/v2/samples", params={"q.field": "metadata.size", "q.value": "1", "q.type": "blob"}
    )
    assert fault(r).startswith(
        "The data type blob is not supported. The supported data type list is:"
    )
    r = admin.get(
        "/v2/samples", params={"q.field": "metadata.size", "q.value": "0.7.5", "q.type": "float"}
    )
    assert fault(r) == "Unable to convert the value 0.7.5 to the expected data type float."
    nested = {"q.field": "metadata.dict_properties.key", "q.value": "value"}
    assert _ids(admin.get("/v2/meters/meter.test", params=nested)) == {"m-d"}
    flag = {"q.field": "resource_metadata.is_public", "q.value": "True"}
    assert _ids(admin.get("/v2/meters/meter.test", params=flag)) == {"m-c"}


def test_spec23_metadata_of_unsupported_type_is_501(admin: Api) -> None:
    """A metadata value that is no str/int/float/bool/None (q.type=datetime, or an untyped value
    that literal_eval makes a list or dict) is a ceilometer.NotImplementedError: 501, Server."""
    for type_, value, kind in (
        ("datetime", "2024-01-01", "<class 'datetime.datetime'>"),
        ("", "[1]", "<class 'list'>"),
        ("", "{'a': 1}", "<class 'dict'>"),
    ):
        params = {"q.field": "metadata.size", "q.type": type_, "q.value": value}
        for path in ("/v2/samples", "/v2/meters/meter.test"):
            r = admin.get(path, params=params)
            assert r.status_code == 501, (path, value)
            assert r.json() == {
                "error_message": {
                    "faultcode": "Server",
                    "faultstring": f"Query on metadata.size is of {kind} type and is not supported",
                    "debuginfo": None,
                }
            }
    # A datetime that does not parse is still the client's error.
    r = admin.get(
        "/v2/samples", params={"q.field": "metadata.x", "q.type": "datetime", "q.value": "nope"}
    )
    assert r.status_code == 400
    assert fault(r) == "Unable to convert the value nope to the expected data type datetime."


def test_spec23_metadata_none_matches_samples_without_a_text_value(admin: Api) -> None:
    """Untyped None: the SQL driver outer-joins the text side table and compares with NULL, so
    samples whose key holds a number, or which lack the key, match; a text value does not."""
    params = {"q.field": "metadata.size", "q.value": "None"}
    assert _ids(admin.get("/v2/meters/meter.test", params=params)) == {"m-a", "m-b", "m-c", "m-d"}
    quoted = {"q.field": "metadata.size", "q.value": "'None'"}
    assert _ids(admin.get("/v2/meters/meter.test", params=quoted)) == set()
    missing = {"q.field": "metadata.no_such_key", "q.value": "None"}
    assert len(_ids(admin.get("/v2/meters/meter.test", params=missing))) == 5


def test_spec22_search_offset(admin: Api) -> None:
    """spec 2.2: search_offset needs a timestamp and widens the bounds by N minutes."""
    r = admin.get("/v2/samples", params={"q.field": "search_offset", "q.value": "1"})
    assert fault(r) == (
        "Invalid input for field/attribute field. Value: 'search_offset'. "
        "search_offset cannot be used without timestamp"
    )
    params = [
        ("q.field", "timestamp"),
        ("q.op", "ge"),
        ("q.value", "2012-07-02T10:43:00"),
        ("q.field", "search_offset"),
        ("q.op", "eq"),
        ("q.value", "1"),
    ]
    assert _ids(admin.get("/v2/meters/meter.test", params=params)) == {"m-c", "m-d", "m-e"}


# -- spec 2.5 scoping ---------------------------------------------------------------------------


def test_spec25_non_admin_scoped_to_own_project(demo: Api, admin: Api) -> None:
    """spec 2.5: a member sees its project only; naming another is 401 in the fault shape."""
    own = project_id(0)
    assert _ids(demo.get("/v2/meters/meter.test")) == {"m-a", "m-b", "m-e"}
    samples = demo.get("/v2/samples", params={"limit": 1000}).json()
    assert samples
    assert {s["project_id"] for s in samples} == {own}
    r = demo.get("/v2/samples", params={"q.field": "project_id", "q.value": OTHER_PROJECT})
    assert r.status_code == 401
    assert fault(r) == f"Not Authorized to access project {OTHER_PROJECT}"
    assert r.headers["WWW-Authenticate"].startswith("Keystone uri=")
    assert {m["project_id"] for m in demo.get("/v2/meters", params={"limit": 1000}).json()} == {own}
    assert demo.get("/v2/resources/resource-b").status_code == 404
    assert admin.get("/v2/resources/resource-b").status_code == 200
    # GET /v2/samples/<id> is not scoped (spec 1.3, inferred from code).
    assert demo.get("/v2/samples/m-c").status_code == 200


# -- spec 3 limit, spec 4 order -----------------------------------------------------------------


def test_spec3_default_limit_100_no_marker(admin: Api) -> None:
    """spec 3: no limit means 100 rows and nothing in the answer says so; limit<=0 is 400."""
    r = admin.get("/v2/samples")
    assert len(r.json()) == 100
    assert "Link" not in r.headers
    assert len(admin.get("/v2/meters/cpu_util").json()) == 100
    assert len(admin.get("/v2/meters/cpu_util", params={"limit": 3000}).json()) == TIE_SPEC.samples
    for bad in ("0", "-1"):
        r = admin.get("/v2/meters/cpu_util", params={"limit": bad})
        assert r.status_code == 400
        assert fault(r) == "Limit must be positive"


def test_spec3_default_limit_is_configurable(fresh: Simulator, fresh_admin: Api) -> None:
    """spec 3: [api] default_api_return_limit."""
    fresh.default_limit = 2
    assert len(fresh_admin.get("/v2/samples").json()) == 2
    assert len(fresh_admin.query().json()) == 2


def test_spec4_newest_first_limit_after_order(admin: Api) -> None:
    """spec 4: timestamp DESC, then LIMIT: a lower bound returns the newest N, not the next N."""
    r = admin.get(
        "/v2/meters/meter.test",
        params={"limit": 2, "q.field": "timestamp", "q.op": "gt", "q.value": "2012-01-01"},
    )
    assert [s["message_id"] for s in r.json()] == ["m-e", "m-d"]
    stamps = [s["timestamp"] for s in admin.get("/v2/samples", params={"limit": 500}).json()]
    assert stamps == sorted(stamps, reverse=True)


def test_spec4_ties_come_back_in_unstable_order(admin: Api) -> None:
    """spec 4/8.8: 2,500 samples share one timestamp; which 100 come back changes per request."""
    tie_ts = Counter(s["timestamp"] for s in admin.sim.store.iter_samples("cpu_util")).most_common(
        1
    )[0]
    assert tie_ts[1] == 2_500
    params = [
        ("q.field", "timestamp"),
        ("q.op", "ge"),
        ("q.value", tie_ts[0]),
        ("q.field", "timestamp"),
        ("q.op", "le"),
        ("q.value", tie_ts[0]),
    ]
    pages = [frozenset(_ids(admin.get("/v2/meters/cpu_util", params=params))) for _ in range(3)]
    assert all(len(p) == 100 for p in pages)
    assert len(set(pages)) > 1
    r = admin.query(filter={"=": {"meter": "cpu_util"}}, orderby=[{"timestamp": "asc"}], limit=3000)
    stamps = [s["timestamp"] for s in r.json()]
    assert stamps == sorted(stamps)


# -- spec 5 formats -----------------------------------------------------------------------------


def test_spec5_formats_in_generated_data(admin: Api) -> None:
    """spec 5: naive ISO with and without fraction in one answer; string metadata; extremes."""
    samples = admin.get("/v2/samples", params={"limit": 5000}).json()
    stamps = [s["timestamp"] for s in samples]
    assert all(ISO_RE.match(t) for t in stamps)
    assert any("." in t for t in stamps)
    assert any("." not in t for t in stamps)
    assert all(isinstance(v, str) for s in samples for v in s["metadata"].values())
    assert any(s["volume"] == 9.2e18 for s in samples)
    assert any(s["volume"] == 1e-9 for s in samples)
    late = [
        s
        for s in samples
        if s["recorded_at"]
        and dt.datetime.fromisoformat(s["recorded_at"]) - dt.datetime.fromisoformat(s["timestamp"])
        > dt.timedelta(minutes=30)
    ]
    assert late
    assert admin.get("/v2/samples/m-null").json()["recorded_at"] is None


def test_spec5_recorded_at_is_the_insert_time_unless_explicitly_null(fresh: Simulator) -> None:
    """Ceilometer's storage sets recorded_at when it writes the row; an explicit None is a legacy
    row without one (before SQL migration 029, or MongoDB) and stays null."""
    base = {
        "counter_name": "meter.rec",
        "counter_type": "gauge",
        "counter_unit": "B",
        "counter_volume": 1.0,
        "project_id": "p",
        "user_id": "u",
        "resource_id": "r",
        "source": "openstack",
        "timestamp": "2020-01-01T00:00:00",
        "resource_metadata": {},
    }
    before = dt.datetime.now(dt.UTC)
    fresh.store.add_samples([{**base, "message_id": "no-key"}])
    after = dt.datetime.now(dt.UTC)
    fresh.store.add_samples([{**base, "message_id": "null", "recorded_at": None}])
    got = {s["message_id"]: s["recorded_at"] for s in fresh.store.iter_samples("meter.rec")}
    assert got["null"] is None
    recorded = dt.datetime.fromisoformat(got["no-key"]).replace(tzinfo=dt.UTC)
    assert before - dt.timedelta(microseconds=1) <= recorded <= after
