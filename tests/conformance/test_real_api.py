"""What the real Ceilometer 9.0.7 API v2 (PostgreSQL storage) and Keystone 30 answer.

Each test pins one behaviour the tap relies on, citing the section of
shared/ceilometer-v2-api.md ("spec") it checks. The exact observed values are written in the
assertions, so the simulator can be held to them; where the real server differs from the spec,
the test says so.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tap_ceilometer.v2.records import WireSample, decode_sample_page

if TYPE_CHECKING:
    from collections.abc import Iterator

    from keystoneauth1.session import Session

    from tests.conformance.stack import RealStack

NAIVE_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$")
UNAUTHORIZED = {
    "error": {
        "code": 401,
        "title": "Unauthorized",
        "message": "The request you have made requires authentication.",
    }
}
SAMPLE_KEYS = {
    "id", "meter", "type", "unit", "volume", "user_id", "project_id", "resource_id", "source",
    "timestamp", "recorded_at", "metadata",
}  # fmt: skip
OLD_SAMPLE_KEYS = {
    "counter_name", "counter_type", "counter_unit", "counter_volume", "user_id", "project_id",
    "resource_id", "source", "timestamp", "recorded_at", "resource_metadata", "message_id",
}  # fmt: skip

T_LIMIT = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # conf.limit: 150 samples, one a second
T_TIE = dt.datetime(2024, 2, 1, 12, tzinfo=dt.UTC)  # conf.tie: 2,500 at this instant, 10 around
T_TIE_US = dt.datetime(2024, 2, 2, 12, 0, 0, 123456, tzinfo=dt.UTC)  # conf.tie.us: 50 here
T_BOUNDS = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)  # conf.bounds: 10 samples, one a second
TIE_SIZE = 2500
OTHER_PROJECT = "other-project"


@dataclass
class Seeded:
    """What the module seeded: message ids in (timestamp, message_id) order, per meter."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    demo_project: str = ""
    admin_project: str = ""


def _sample(
    meter: str,
    timestamp: dt.datetime | str,
    *,
    volume: float = 1.0,
    project: str = "proj-a",
    unit: str = "B",
    resource: str = "res-1",
    metadata: dict[str, Any] | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    return {
        "counter_name": meter,
        "counter_type": "gauge",
        "counter_unit": unit,
        "counter_volume": volume,
        "message_id": message_id or str(uuid.uuid4()),
        "project_id": project,
        "user_id": "user-a",
        "resource_id": resource,
        "source": "openstack",
        "timestamp": timestamp,
        "resource_metadata": metadata or {"display_name": "vm"},
    }


def _ordered(samples: list[dict[str, Any]]) -> list[str]:
    def key(s: dict[str, Any]) -> tuple[str, str]:
        ts = s["timestamp"]
        return (ts.isoformat() if isinstance(ts, dt.datetime) else ts, s["message_id"])

    return [s["message_id"] for s in sorted(samples, key=key)]


@pytest.fixture(scope="module")
def seeded(real_stack: RealStack) -> Seeded:
    stack = real_stack
    stack.reset_storage()
    out = Seeded(
        demo_project=stack.project_id(stack.demo), admin_project=stack.project_id(stack.admin)
    )
    batches: dict[str, list[dict[str, Any]]] = {}
    # Every other sample has microseconds (250000), the others fall on a whole second.
    batches["conf.limit"] = [
        _sample(
            "conf.limit",
            T_LIMIT + dt.timedelta(seconds=i, microseconds=0 if i % 2 else 250000),
            volume=i,
        )
        for i in range(150)
    ]
    batches["conf.tie"] = [
        _sample("conf.tie", T_TIE + dt.timedelta(seconds=k), volume=k)
        for k in [*range(-10, 0), *range(1, 11)]
    ] + [_sample("conf.tie", T_TIE, volume=0) for _ in range(TIE_SIZE)]
    batches["conf.tie.us"] = [
        _sample("conf.tie.us", T_TIE_US + dt.timedelta(seconds=k)) for k in (-1, -2, 1, 2)
    ] + [_sample("conf.tie.us", T_TIE_US) for _ in range(50)]
    batches["conf.bounds"] = [
        _sample("conf.bounds", T_BOUNDS + dt.timedelta(seconds=i), volume=i) for i in range(10)
    ]
    batches["conf.unit"] = [
        _sample("conf.unit", T_BOUNDS, unit="a"),
        _sample("conf.unit", T_BOUNDS + dt.timedelta(seconds=1), unit="b"),
    ]
    # The demo project's sample is older than another project's sample of the same meter.
    batches["conf.scope"] = [
        _sample("conf.scope", T_BOUNDS, project=out.demo_project, resource="res-demo"),
        _sample(
            "conf.scope",
            T_BOUNDS + dt.timedelta(seconds=1),
            project=OTHER_PROJECT,
            resource="res-other",
        ),
    ]
    batches["conf.demo-only"] = [_sample("conf.demo-only", T_BOUNDS, project=out.demo_project)]
    batches["conf.meta"] = [
        _sample(
            "conf.meta",
            "2024-04-01T05:00:00+02:00",
            metadata={
                "display_name": "web-1",
                "flavor": {"name": "m1.tiny", "ram": 512, "extra": {"k": "v"}},
                "tags": ["a", "b"],
                "size": 0,
                "ratio": 0.75,
                "public": True,
                "nothing": None,
                "prop.3": "dotted",
            },
        )
    ]
    for meter, samples in batches.items():
        assert stack.seed(samples) == len(samples)
        out.ids[meter] = _ordered(samples)
    return out


@pytest.fixture(scope="module")
def admin(real_stack: RealStack) -> Session:
    return real_stack.session(real_stack.admin)


@pytest.fixture(scope="module")
def demo(real_stack: RealStack) -> Session:
    return real_stack.session(real_stack.demo)


def get(stack: RealStack, session: Session, path: str, **params: Any) -> requests.Response:
    response: requests.Response = session.get(
        f"{stack.ceilometer_url}{path}", params=params or None, raise_exc=False
    )
    return response


def query(stack: RealStack, session: Session, **body: Any) -> requests.Response:
    payload = {
        key: json.dumps(value) if key in ("filter", "orderby") else value
        for key, value in body.items()
    }
    response: requests.Response = session.post(
        f"{stack.ceilometer_url}/v2/query/samples", json=payload, raise_exc=False
    )
    return response


def fault(response: requests.Response) -> str:
    body = response.json()
    assert set(body) == {"error_message"}
    assert set(body["error_message"]) == {"faultcode", "faultstring", "debuginfo"}
    assert body["error_message"]["debuginfo"] is None
    return str(body["error_message"]["faultstring"])


def iso(moment: dt.datetime, *, micro: bool = False) -> str:
    """Naive UTC, as Ceilometer takes and gives it; `micro` always writes .ffffff."""
    naive = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds") if micro else naive.isoformat()


# -- limit and order (spec 3, 4) --------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v2/meters/conf.limit", {}),
        ("/v2/samples", {"q.field": "meter", "q.value": "conf.limit"}),
    ],
)
def test_default_limit_is_100_newest_first_with_no_sign_of_truncation(
    real_stack: RealStack, admin: Session, path: str, params: dict[str, str]
) -> None:
    """Spec 3: 100 rows without `limit`; spec 4: timestamp DESC. 150 exist."""
    response = get(real_stack, admin, path, **params)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert len(body) == 100
    # Nothing says more exist: no link header, no count, no marker in the body.
    assert "Link" not in response.headers
    assert not any(h.lower().startswith("x-") and "count" in h.lower() for h in response.headers)
    volumes = [s["counter_volume"] if "counter_volume" in s else s["volume"] for s in body]
    assert volumes == [float(v) for v in range(149, 49, -1)]  # the newest 100, newest first


@pytest.mark.usefixtures("seeded")
def test_explicit_limit_above_the_default(real_stack: RealStack, admin: Session) -> None:
    """Spec 3: any positive limit is passed to storage; no server maximum below 150 here."""
    body = get(real_stack, admin, "/v2/meters/conf.limit", limit=1000).json()
    assert len(body) == 150


@pytest.mark.usefixtures("seeded")
def test_lower_bound_only_returns_the_newest_not_the_next(
    real_stack: RealStack, admin: Session
) -> None:
    """Spec 4 / 8.2: with `timestamp ge T0` and limit 3, the answer is the 3 newest."""
    body = get(
        real_stack,
        admin,
        "/v2/meters/conf.bounds",
        **{"q.field": "timestamp", "q.op": "ge", "q.value": iso(T_BOUNDS), "limit": "3"},
    ).json()
    assert [s["counter_volume"] for s in body] == [9.0, 8.0, 7.0]


# -- formats (spec 1.2, 1.3, 5) ---------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
def test_timestamps_are_naive_utc_with_microseconds_only_when_non_zero(
    real_stack: RealStack, admin: Session
) -> None:
    """Spec 5: isoformat() of naive UTC; '.ffffff' only when the microseconds are not 0."""
    body = get(real_stack, admin, "/v2/meters/conf.limit", limit=4).json()
    assert [s["timestamp"] for s in body] == [
        "2024-01-01T00:02:29",
        "2024-01-01T00:02:28.250000",
        "2024-01-01T00:02:27",
        "2024-01-01T00:02:26.250000",
    ]
    for sample in body:
        assert NAIVE_UTC.match(sample["recorded_at"])


@pytest.mark.usefixtures("seeded")
def test_old_sample_and_sample_shapes(real_stack: RealStack, admin: Session) -> None:
    """Spec 1.2 (OldSample) and 1.3 (Sample): exact key sets, float volumes, string metadata."""
    old = get(real_stack, admin, "/v2/meters/conf.meta")
    new = get(real_stack, admin, "/v2/samples", **{"q.field": "meter", "q.value": "conf.meta"})
    (old_sample,), (new_sample,) = old.json(), new.json()
    assert set(old_sample) == OLD_SAMPLE_KEYS
    assert set(new_sample) == SAMPLE_KEYS
    # So the tap decodes both shapes by type (records.py), not on its slower checked path.
    for response, new_format in ((old, False), (new, True)):
        (typed,) = decode_sample_page(response.content, new_format=new_format)
        assert isinstance(typed, WireSample)
        assert typed.message_id == old_sample["message_id"]
    assert new_sample["id"] == old_sample["message_id"]
    assert old_sample["counter_volume"] == 1.0
    assert isinstance(old_sample["counter_volume"], float)
    assert old_sample["counter_type"] == new_sample["type"] == "gauge"
    assert old_sample["source"] == "openstack"
    # The seeded timestamp carried +02:00: the storage path converts it to UTC.
    assert old_sample["timestamp"] == new_sample["timestamp"] == "2024-04-01T03:00:00"


@pytest.mark.usefixtures("seeded")
def test_metadata_is_flattened_to_strings(real_stack: RealStack, admin: Session) -> None:
    """Spec 5: nested keys joined with '.' then ':', every value str(); lists as repr.

    Difference from the spec: a list of strings is "[b'a', b'b']" on this server (Ceilometer on
    Python 3 utf-8-encodes list items before str()); Pike on Python 2.7 gave "['a', 'b']".
    """
    (sample,) = get(real_stack, admin, "/v2/meters/conf.meta").json()
    assert sample["resource_metadata"] == {
        "display_name": "web-1",
        "flavor.name": "m1.tiny",
        "flavor.ram": "512",
        "flavor.extra:k": "v",
        "tags": "[b'a', b'b']",
        "size": "0",
        "ratio": "0.75",
        "public": "True",
        "nothing": "None",
        "prop.3": "dotted",  # a dot in a top-level key survives; nested ones become ":"
    }


# -- the complex query: keyset pagination (spec 1.4, 10) ----------------------------------------


def keyset_filter(meter: str, after: tuple[str, str] | None, first: str) -> dict[str, Any]:
    """The tap's main read path: the page after (timestamp, message_id)."""
    if after is None:
        return {"and": [{"=": {"counter_name": meter}}, {">=": {"timestamp": first}}]}
    ts, message_id = after
    return {
        "and": [
            {"=": {"counter_name": meter}},
            {
                "or": [
                    {">": {"timestamp": ts}},
                    {"and": [{"=": {"timestamp": ts}}, {">": {"message_id": message_id}}]},
                ]
            },
        ]
    }


ORDER = [{"timestamp": "asc"}, {"message_id": "asc"}]


def read_by_keyset(
    stack: RealStack,
    session: Session,
    meter: str,
    *,
    first: str,
    limit: int,
    cursor_form: str,
) -> Iterator[list[dict[str, Any]]]:
    after: tuple[str, str] | None = None
    for _ in range(100):
        response = query(
            stack, session, filter=keyset_filter(meter, after, first), orderby=ORDER, limit=limit
        )
        assert response.status_code == 200, response.text
        page = response.json()
        if page:
            yield page
        if len(page) < limit:
            return
        last = page[-1]
        moment = dt.datetime.fromisoformat(last["timestamp"]).replace(tzinfo=dt.UTC)
        # "returned": the timestamp string exactly as the server gave it;
        # "micro": always with .ffffff, as the tap sends it (query.api_timestamp).
        ts = last["timestamp"] if cursor_form == "returned" else iso(moment, micro=True)
        after = (ts, last["id"])
    pytest.fail("keyset pagination did not end within 100 pages")


@pytest.mark.parametrize("cursor_form", ["micro", "returned"])
def test_keyset_pages_through_a_2500_sample_tie_exactly_once(
    real_stack: RealStack, admin: Session, seeded: Seeded, cursor_form: str
) -> None:
    """Spec 1.4 + 10: filter and orderby on (timestamp, message_id) page through a tie."""
    pages = list(
        read_by_keyset(
            real_stack,
            admin,
            "conf.tie",
            first=iso(T_TIE - dt.timedelta(hours=1), micro=True),
            limit=1000,
            cursor_form=cursor_form,
        )
    )
    assert [len(p) for p in pages] == [1000, 1000, 520]
    got = [s["id"] for page in pages for s in page]
    assert len(got) == len(set(got)) == TIE_SIZE + 20
    # Exactly the seeded samples, in (timestamp, message_id) order: the server's message_id
    # order is the same as Python's here (lower-case uuids; the database collates C.UTF-8).
    assert got == seeded.ids["conf.tie"]
    at_tie = [s for page in pages for s in page if s["timestamp"] == "2024-02-01T12:00:00"]
    assert len(at_tie) == TIE_SIZE


@pytest.mark.parametrize("cursor_form", ["micro", "returned"])
def test_keyset_pages_through_a_tie_at_an_instant_with_microseconds(
    real_stack: RealStack, admin: Session, seeded: Seeded, cursor_form: str
) -> None:
    """Equality on a timestamp with microseconds is exact (PostgreSQL keeps µs)."""
    pages = list(
        read_by_keyset(
            real_stack,
            admin,
            "conf.tie.us",
            first=iso(T_TIE_US - dt.timedelta(hours=1), micro=True),
            limit=7,
            cursor_form=cursor_form,
        )
    )
    got = [s["id"] for page in pages for s in page]
    assert got == seeded.ids["conf.tie.us"]
    assert {len(p) for p in pages[:-1]} == {7}


@pytest.mark.usefixtures("seeded")
def test_complex_query_defaults_limit_100_newest_first(
    real_stack: RealStack, admin: Session
) -> None:
    """Spec 1.4: no limit means 100; no orderby means timestamp DESC; `meter` aliases it."""
    body = query(real_stack, admin, filter={"=": {"meter": "conf.limit"}}).json()
    assert len(body) == 100
    assert [s["volume"] for s in body] == [float(v) for v in range(149, 49, -1)]
    empty = query(real_stack, admin).json()  # `{}` is a valid body
    assert len(empty) == 100


@pytest.mark.usefixtures("seeded")
def test_complex_query_operators_are_case_insensitive_and_orderby_asc(
    real_stack: RealStack, admin: Session
) -> None:
    """Spec 1.4: "AND"/"Or" are lower-cased; direction "aSc" works."""
    body = query(
        real_stack,
        admin,
        filter={"AND": [{"=": {"counter_name": "conf.bounds"}}, {">": {"volume": 6}}]},
        orderby=[{"timestamp": "aSc"}],
    ).json()
    assert [s["volume"] for s in body] == [7.0, 8.0, 9.0]


@pytest.mark.usefixtures("seeded")
def test_timezone_offsets_in_query_values_are_dropped_not_converted(
    real_stack: RealStack, admin: Session
) -> None:
    """Spec 2.4: `+02:00` is discarded: 00:00:03+02:00 is treated as 00:00:03 UTC."""
    bound = iso(T_BOUNDS + dt.timedelta(seconds=3)) + "+02:00"
    simple = get(
        real_stack,
        admin,
        "/v2/meters/conf.bounds",
        **{"q.field": "timestamp", "q.op": "lt", "q.value": bound},
    ).json()
    complex_ = query(
        real_stack,
        admin,
        filter={"and": [{"=": {"meter": "conf.bounds"}}, {"<": {"timestamp": bound}}]},
    ).json()
    assert sorted(s["counter_volume"] for s in simple) == [0.0, 1.0, 2.0]
    assert sorted(s["volume"] for s in complex_) == [0.0, 1.0, 2.0]


# -- the simple query's timestamp bounds (spec 2.2, 2.4) ----------------------------------------


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([("gt", 3)], [4, 5, 6, 7, 8, 9]),
        ([("ge", 3)], [3, 4, 5, 6, 7, 8, 9]),
        ([("lt", 6)], [0, 1, 2, 3, 4, 5]),
        ([("le", 6)], [0, 1, 2, 3, 4, 5, 6]),
        ([("ge", 3), ("lt", 6)], [3, 4, 5]),
        ([("gt", 3), ("le", 6)], [4, 5, 6]),
    ],
)
@pytest.mark.parametrize("path", ["/v2/meters/conf.bounds", "/v2/samples"])
def test_simple_query_timestamp_bounds(
    real_stack: RealStack,
    admin: Session,
    path: str,
    conditions: list[tuple[str, int]],
    expected: list[int],
) -> None:
    params: list[tuple[str, str]] = []
    if path == "/v2/samples":
        params += [("q.field", "meter"), ("q.op", "eq"), ("q.type", ""), ("q.value", "conf.bounds")]
    for op, second in conditions:
        value = iso(T_BOUNDS + dt.timedelta(seconds=second), micro=True)
        params += [("q.field", "timestamp"), ("q.op", op), ("q.type", ""), ("q.value", value)]
    response = admin.get(f"{real_stack.ceilometer_url}{path}", params=params, raise_exc=False)
    assert response.status_code == 200, response.text
    body = response.json()
    volumes = [s.get("counter_volume", s.get("volume")) for s in body]
    assert volumes == [float(v) for v in reversed(expected)]  # newest first


@pytest.mark.usefixtures("seeded")
def test_simple_query_window_around_a_tie(real_stack: RealStack, admin: Session) -> None:
    """The window reader's tie case: [T, T+1µs) holds the whole tie when the limit allows."""
    pairs = [
        ("q.field", "timestamp"),
        ("q.op", "ge"),
        ("q.type", ""),
        ("q.value", iso(T_TIE, micro=True)),
        ("q.field", "timestamp"),
        ("q.op", "lt"),
        ("q.type", ""),
        ("q.value", iso(T_TIE + dt.timedelta(microseconds=1), micro=True)),
        ("limit", "10000"),
    ]
    body = admin.get(
        f"{real_stack.ceilometer_url}/v2/meters/conf.tie", params=pairs, raise_exc=False
    ).json()
    assert len(body) == TIE_SIZE
    assert {s["timestamp"] for s in body} == {"2024-02-01T12:00:00"}
    capped = admin.get(
        f"{real_stack.ceilometer_url}/v2/meters/conf.tie",
        params=[*pairs[:-1], ("limit", "1000")],
        raise_exc=False,
    ).json()
    assert len(capped) == 1000


@pytest.mark.usefixtures("seeded")
def test_simple_query_accepts_date_only_and_z(real_stack: RealStack, admin: Session) -> None:
    """Spec 2.4: `2024-03-01` and `...Z` parse; Z is UTC."""
    for value in ("2024-03-01", "2024-03-01T00:00:05Z"):
        response = get(
            real_stack,
            admin,
            "/v2/meters/conf.bounds",
            **{"q.field": "timestamp", "q.op": "ge", "q.value": value},
        )
        assert response.status_code == 200, response.text
    body = get(
        real_stack,
        admin,
        "/v2/meters/conf.bounds",
        **{"q.field": "timestamp", "q.op": "ge", "q.value": "2024-03-01T00:00:05Z"},
    ).json()
    assert len(body) == 5


# -- meters (spec 1.1) --------------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
def test_meters_unique_is_one_entry_per_name_type_unit(
    real_stack: RealStack, admin: Session
) -> None:
    """unique=True groups by the meter row, which is (name, type, unit), not by name.

    Beyond the spec: a name seen with two units is listed twice. resource_id, project_id,
    user_id and source are null, and meter_id is base64("None+" + name).
    """
    body = get(real_stack, admin, "/v2/meters", unique="True", limit=1000).json()
    names = sorted(m["name"] for m in body)
    assert names == sorted(
        [
            "conf.bounds",
            "conf.demo-only",
            "conf.limit",
            "conf.meta",
            "conf.scope",
            "conf.tie",
            "conf.tie.us",
            "conf.unit",
            "conf.unit",
        ]
    )
    units = sorted(m["unit"] for m in body if m["name"] == "conf.unit")
    assert units == ["a", "b"]
    for meter in body:
        assert set(meter) == {
            "name", "type", "unit", "resource_id", "project_id", "user_id", "source", "meter_id"
        }  # fmt: skip
        assert meter["resource_id"] is meter["project_id"] is meter["user_id"] is None
        assert meter["source"] is None
        assert meter["meter_id"] == base64.b64encode(f"None+{meter['name']}".encode()).decode()


@pytest.mark.usefixtures("seeded")
def test_meters_limit_applies_to_unique_and_default_100(
    real_stack: RealStack, admin: Session
) -> None:
    """Spec 1.1/3: `limit` caps unique lists as well; order is unspecified."""
    assert len(get(real_stack, admin, "/v2/meters", unique="True", limit=2).json()) == 2
    assert len(get(real_stack, admin, "/v2/meters", unique="True", limit=9).json()) == 9
    assert len(get(real_stack, admin, "/v2/meters", unique="True", limit=10).json()) == 9
    # Not unique: one entry per (meter row, resource_id), the meter row being (name, type,
    # unit): conf.scope has two resources, conf.unit two units on one resource.
    full = get(real_stack, admin, "/v2/meters", limit=1000).json()
    keys = sorted((m["name"], m["unit"], m["resource_id"]) for m in full)
    assert len(keys) == len(set(keys)) == 10
    assert ("conf.scope", "B", "res-demo") in keys
    assert ("conf.scope", "B", "res-other") in keys
    assert ("conf.unit", "a", "res-1") in keys
    assert ("conf.unit", "b", "res-1") in keys
    assert len(get(real_stack, admin, "/v2/meters", limit=2).json()) == 2


@pytest.mark.usefixtures("seeded")
def test_meters_rejects_timestamp_and_accepts_truthy_unique_spellings(
    real_stack: RealStack, admin: Session
) -> None:
    response = get(
        real_stack, admin, "/v2/meters", **{"q.field": "timestamp", "q.op": "gt", "q.value": "x"}
    )
    assert response.status_code == 400
    assert fault(response) == 'Unknown argument: "timestamp": not valid for this resource'
    for spelling in ("true", "1", "yes", "on"):
        body = get(real_stack, admin, "/v2/meters", unique=spelling, limit=1000).json()
        assert all(m["resource_id"] is None for m in body)


# -- capabilities (spec 1.6) --------------------------------------------------------------------


def test_capabilities(real_stack: RealStack, admin: Session) -> None:
    body = get(real_stack, admin, "/v2/capabilities").json()
    assert body == {
        "api": {
            "meters:query:metadata": True,
            "meters:query:simple": True,
            "resources:query:metadata": True,
            "resources:query:simple": True,
            "samples:query:complex": True,
            "samples:query:metadata": True,
            "samples:query:simple": True,
            "statistics:aggregation:selectable:avg": True,
            "statistics:aggregation:selectable:cardinality": True,
            "statistics:aggregation:selectable:count": True,
            "statistics:aggregation:selectable:max": True,
            "statistics:aggregation:selectable:min": True,
            "statistics:aggregation:selectable:stddev": True,
            "statistics:aggregation:selectable:sum": True,
            "statistics:aggregation:standard": True,
            "statistics:groupby": True,
            "statistics:query:metadata": True,
            "statistics:query:simple": True,
        },
        "storage": {"storage:production_ready": True},
    }


# -- errors (spec 1.0, 2.3, 3, 1.4) -------------------------------------------------------------


VALID_SAMPLE_KEYS = (
    "valid keys: ['message_id', 'meter', 'project', 'resource', 'search_offset', 'source', "
    "'timestamp', 'user']"
)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"q.field": "counter_name", "q.value": "x"},
            'Unknown argument: "counter_name": unrecognized field in query: '
            f"[<Query 'counter_name' eq 'x' Unset>], {VALID_SAMPLE_KEYS}",
        ),
        (
            {"q.field": "project_id", "q.op": "lt", "q.value": "x"},
            "Invalid input for field/attribute op. Value: 'lt'. "
            "unimplemented operator for project_id",
        ),
        (
            {"q.field": "project_id", "q.op": "foo", "q.value": "x"},
            "Invalid input for field/attribute op. Value: 'foo'. "
            "unimplemented operator for project_id",
        ),
        (
            {"q.field": "timestamp", "q.op": "eq", "q.value": "2024-01-01T00:00:00"},
            "Invalid input for field/attribute op. Value: 'eq'. "
            "unimplemented operator for timestamp",
        ),
        (
            {"q.field": "timestamp", "q.op": "gt", "q.value": "123"},
            "Invalid input for field/attribute timestamp. Value: '123'. invalid timestamp format",
        ),
        ({"limit": "0"}, "Limit must be positive"),
        ({"limit": "-1"}, "Limit must be positive"),
        (
            {"limit": "abc"},
            "Invalid input for field/attribute limit. Value: 'abc'. unable to convert to int. "
            "Error: invalid literal for int() with base 10: 'abc'",
        ),
        ({"nope": "1"}, 'Unknown argument: "nope"'),
    ],
)
def test_simple_query_errors(
    real_stack: RealStack, admin: Session, params: dict[str, str], expected: str
) -> None:
    response = get(real_stack, admin, "/v2/samples", **params)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert fault(response) == expected
    assert response.json()["error_message"]["faultcode"] == "Client"


@pytest.mark.parametrize("path", ["/v2/meters", "/v2/meters/conf.limit"])
def test_limit_zero_everywhere(real_stack: RealStack, admin: Session, path: str) -> None:
    response = get(real_stack, admin, path, limit="0")
    assert response.status_code == 400
    assert fault(response) == "Limit must be positive"


@pytest.mark.parametrize(
    ("body", "status", "prefix"),
    [
        ({"limit": 0}, 400, "Limit must be positive"),
        ({"limit": -5}, 400, "Limit must be positive"),
        (
            {"filter": json.dumps({"=": {"nope": 1}})},
            400,
            "Filter expression not valid: {'=': {'nope': 1}} is not valid under any of the "
            "given schemas",
        ),
        ({"filter": '{"=": '}, 400, "Filter expression not valid: Expecting value: line 1"),
        (
            {"filter": json.dumps({"and": [{"=": {"meter": "x"}}]})},
            400,
            "Filter expression not valid: ",
        ),
        (
            {"orderby": json.dumps([{"timestamp": "up"}])},
            400,
            "Order-by expression not valid: 'up' does not match '(?i)^asc$|^desc$'",
        ),
        (
            {"filter": {"=": {"meter": "x"}}},
            400,
            "Invalid input for field/attribute filter. Value: '{'=': {'meter': 'x'}}'. "
            "Wrong type. Expected '<class 'str'>', got '<class 'dict'>'",
        ),
        ({"foo": 1}, 400, "Unknown attribute for argument body: foo"),
        (
            {"filter": json.dumps({">": {"timestamp": "nope"}})},
            400,
            "Failed to parse the timestamp value nope",
        ),
        # Spec 11.3, now observed: SQL storage has no `source` on its sample view.
        (
            {"filter": json.dumps({"=": {"source": "openstack"}})},
            500,
            "type object 'FullSample' has no attribute 'source'",
        ),
    ],
)
def test_complex_query_errors(
    real_stack: RealStack, admin: Session, body: dict[str, Any], status: int, prefix: str
) -> None:
    response = admin.post(
        f"{real_stack.ceilometer_url}/v2/query/samples", json=body, raise_exc=False
    )
    assert response.status_code == status, response.text
    assert fault(response).startswith(prefix)
    code = "Client" if status < 500 else "Server"
    assert response.json()["error_message"]["faultcode"] == code


@pytest.mark.usefixtures("seeded")
def test_complex_query_on_recorded_at_works_on_postgresql(
    real_stack: RealStack, admin: Session
) -> None:
    """Spec 11.2, now observed: PostgreSQL compares the unconverted string as a timestamp."""
    response = query(
        real_stack,
        admin,
        filter={"and": [{"=": {"meter": "conf.bounds"}}, {">": {"recorded_at": "2000-01-01"}}]},
    )
    assert response.status_code == 200
    assert len(response.json()) == 10


@pytest.mark.usefixtures("seeded")
def test_unknown_meter_and_missing_sample(real_stack: RealStack, admin: Session) -> None:
    """Spec 1.1/1.3: an unknown meter is an empty list; a missing sample id is a 404."""
    unknown = get(real_stack, admin, "/v2/meters/no.such.meter")
    assert unknown.status_code == 200
    assert unknown.json() == []
    stats = get(real_stack, admin, "/v2/meters/no.such.meter/statistics")
    assert stats.status_code == 200
    assert stats.json() == []
    missing = get(real_stack, admin, "/v2/samples/no-such-id")
    assert missing.status_code == 404
    assert fault(missing) == "Sample no-such-id Not Found"
    one = get(real_stack, admin, "/v2/samples/no-such-id", limit="5")
    assert one.status_code == 400
    assert fault(one).startswith('Unknown argument: "limit"')


@pytest.mark.parametrize(
    "case",
    [
        ("GET", "/v2/nope", {}, 404, "404 Not Found"),
        ("GET", "/v2", {}, 404, "404 Not Found"),
        ("POST", "/v2/samples", {}, 405, "405 Method Not Allowed"),
        ("GET", "/v2/samples", {"Accept": "text/plain"}, 406, "406 Not Acceptable"),
    ],
)
def test_pecan_errors_wrap_a_string(
    real_stack: RealStack, admin: Session, case: tuple[str, str, dict[str, str], int, str]
) -> None:
    """Spec 1.0 / 11.1, now observed: `error_message` is a string (HTML for 404 and 405)."""
    method, path, headers, status, text = case
    response = admin.request(
        f"{real_stack.ceilometer_url}{path}", method, headers=headers, raise_exc=False
    )
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error_message"}
    assert isinstance(body["error_message"], str)
    assert text in body["error_message"]
    if status == 405:
        assert response.headers["Allow"] == "GET"


# -- authentication (spec 6) --------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "not-a-token"])
@pytest.mark.parametrize("path", ["/v2/samples", "/"])
def test_keystonemiddleware_401(real_stack: RealStack, token: str | None, path: str) -> None:
    """Spec 6: 401 in Keystone's shape, never `error_message`; even `/` needs a token.

    Difference from the spec: keystonemiddleware 13 quotes the URI with double quotes,
    `Keystone uri="<www_authenticate_uri>"` (4.17 used single quotes). The URI is the configured
    `www_authenticate_uri`, here the unversioned Keystone URL as devstack sets it.
    """
    headers = {"X-Auth-Token": token} if token else {}
    response = requests.get(f"{real_stack.ceilometer_url}{path}", headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == UNAUTHORIZED
    assert response.headers["WWW-Authenticate"] == f'Keystone uri="{real_stack.keystone_url}"'


def test_keystone_bad_password_and_no_v2(real_stack: RealStack) -> None:
    """Keystone's own 401 for a failed login, and no v2.0 API at all on Keystone 30."""
    login = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"id": "default"}, "password": "wrong"}
                },
            }
        }
    }
    response = requests.post(f"{real_stack.auth_url}/auth/tokens", json=login, timeout=30)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    v2 = requests.post(f"{real_stack.keystone_url}/v2.0/tokens", json={}, timeout=30)
    assert v2.status_code == 404


def test_catalog_names_the_metering_endpoint(real_stack: RealStack, admin: Session) -> None:
    for interface in ("public", "internal", "admin"):
        endpoint = admin.get_endpoint(
            service_type="metering", interface=interface, region_name="RegionOne"
        )
        assert endpoint == real_stack.ceilometer_url


def test_root_lists_v2(real_stack: RealStack, admin: Session) -> None:
    body = get(real_stack, admin, "/").json()
    (version,) = body["versions"]["values"]
    assert version["id"] == "v2"
    assert version["status"] == "stable"
    assert version["updated"] == "2013-02-13T00:00:00Z"


# -- non-admin scoping (spec 1.4, 2.5) ----------------------------------------------------------


def test_demo_sees_only_its_project(real_stack: RealStack, demo: Session, seeded: Seeded) -> None:
    body = get(real_stack, demo, "/v2/meters/conf.scope").json()
    assert [s["project_id"] for s in body] == [seeded.demo_project]
    complex_ = query(real_stack, demo, filter={"=": {"counter_name": "conf.scope"}}).json()
    assert [s["project_id"] for s in complex_] == [seeded.demo_project]
    assert all(
        s["project_id"] == seeded.demo_project for s in get(real_stack, demo, "/v2/samples").json()
    )


@pytest.mark.usefixtures("seeded")
def test_demo_naming_another_project_gets_401(real_stack: RealStack, demo: Session) -> None:
    """Spec 2.5: 401 in the `error_message` shape; keystonemiddleware adds WWW-Authenticate."""
    simple = get(
        real_stack, demo, "/v2/samples", **{"q.field": "project_id", "q.value": OTHER_PROJECT}
    )
    complex_ = query(real_stack, demo, filter={"=": {"project_id": OTHER_PROJECT}})
    for response in (simple, complex_):
        assert response.status_code == 401
        assert fault(response) == f"Not Authorized to access project {OTHER_PROJECT}"
        assert response.headers["WWW-Authenticate"] == f'Keystone uri="{real_stack.keystone_url}"'


def test_demo_unique_meters_miss_meters_whose_latest_sample_is_elsewhere(
    real_stack: RealStack, demo: Session, seeded: Seeded
) -> None:
    """Beyond the spec: /v2/meters picks each meter's latest sample first, then scopes it.

    conf.scope has a demo sample, but its newest sample is in another project, so a demo
    user's `unique=True` list leaves conf.scope out. Not unique, the pair (conf.scope,
    res-demo) is listed, because its latest sample is demo's.
    """
    unique = get(real_stack, demo, "/v2/meters", unique="True", limit=1000).json()
    assert sorted(m["name"] for m in unique) == ["conf.demo-only"]
    full = get(real_stack, demo, "/v2/meters", limit=1000).json()
    assert sorted((m["name"], m["resource_id"]) for m in full) == [
        ("conf.demo-only", "res-1"),
        ("conf.scope", "res-demo"),
    ]
    assert all(m["project_id"] == seeded.demo_project for m in full)


def test_admin_sees_every_project(real_stack: RealStack, admin: Session, seeded: Seeded) -> None:
    body = get(real_stack, admin, "/v2/meters/conf.scope").json()
    assert sorted(s["project_id"] for s in body) == sorted([seeded.demo_project, OTHER_PROJECT])


# -- metadata conditions (spec 1.4 fields, 2.3 metadata value types) ------------------------------


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(
    ("condition", "matches"),
    [
        ({"metadata.display_name": "web-1"}, 1),
        ({"metadata.flavor.name": "m1.tiny"}, 1),
        ({"metadata.flavor.ram": 512}, 1),
        ({"metadata.flavor.ram": "512"}, 0),  # typed side tables: the int does not match a str
        ({"metadata.ratio": 0.75}, 1),
        ({"metadata.public": True}, 1),
        ({"metadata.size": 0}, 1),
        ({"metadata.size": "0"}, 0),
        ({"metadata.tags": "[b'a', b'b']"}, 0),  # list items are not stored for queries
    ],
)
def test_complex_filter_on_metadata(
    real_stack: RealStack, admin: Session, condition: dict[str, Any], matches: int
) -> None:
    response = query(
        real_stack, admin, filter={"and": [{"=": {"meter": "conf.meta"}}, {"=": condition}]}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()) == matches


def test_complex_filter_rejects_resource_metadata_prefix(
    real_stack: RealStack, admin: Session
) -> None:
    """Only `metadata.<key>` is a filter field; `resource_metadata.<key>` fails the schema."""
    response = query(real_stack, admin, filter={"=": {"resource_metadata.display_name": "x"}})
    assert response.status_code == 400
    assert fault(response).startswith(
        "Filter expression not valid: {'=': {'resource_metadata.display_name': 'x'}} is not "
        "valid under any of the given schemas"
    )


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(
    "case",
    [
        ("metadata.display_name", "web-1", "", 1),
        ("resource_metadata.flavor.name", "m1.tiny", "", 1),
        ("metadata.flavor.ram", "512", "", 1),  # untyped: literal_eval makes it an int
        ("metadata.flavor.ram", "512", "integer", 1),
        ("metadata.flavor.ram", "512", "string", 0),
        ("metadata.size", "0", "", 1),
        ("metadata.ratio", "0.75", "", 1),
        ("metadata.ratio", "0.75", "float", 1),
        ("metadata.public", "True", "", 1),
        ("metadata.public", "true", "boolean", 1),
    ],
)
def test_simple_query_on_metadata(
    real_stack: RealStack, admin: Session, case: tuple[str, str, str, int]
) -> None:
    field, value, type_, matches = case
    params = [("q.field", field), ("q.op", "eq"), ("q.type", type_), ("q.value", value)]
    response = admin.get(
        f"{real_stack.ceilometer_url}/v2/meters/conf.meta", params=params, raise_exc=False
    )
    assert response.status_code == 200, response.text
    assert len(response.json()) == matches


@pytest.mark.parametrize(
    "case",
    [
        (
            "datetime",
            "2024-01-01T00:00:00",
            501,
            "Query on metadata.x is of <class 'datetime.datetime'> type and is not supported",
        ),
        (
            "float",
            "0.7.5",
            400,
            "Unable to convert the value 0.7.5 to the expected data type float.",
        ),
        (
            "blob",
            "1",
            400,
            "The data type blob is not supported. The supported data type list is: "
            "['integer', 'float', 'string', 'boolean', 'datetime']",
        ),
    ],
)
def test_simple_query_metadata_type_errors(
    real_stack: RealStack, admin: Session, case: tuple[str, str, int, str]
) -> None:
    """Spec 2.3; beyond it: `q.type=datetime` on metadata is a 501 from the SQL driver."""
    type_, value, status, text = case
    params = [("q.field", "metadata.x"), ("q.op", "eq"), ("q.type", type_), ("q.value", value)]
    response = admin.get(
        f"{real_stack.ceilometer_url}/v2/meters/conf.meta", params=params, raise_exc=False
    )
    assert response.status_code == status
    assert fault(response) == text
