"""The same requests to the real Ceilometer 9.0.7 + Keystone 30 and to the simulator, compared.

Both are seeded with the same samples. Each case sends one request to both servers and compares
the normalised answers: status, content type, the WWW-Authenticate challenge's form, and the JSON
body. Project ids are written as the names of their projects, recorded_at as its format only, and
lists whose order the API leaves open are sorted. A case that fails here found a place where the
simulator and the real server disagree.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import requests
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from ceilometer_simulator import Simulator

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conformance.stack import RealStack

RECORDED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$")
# keystonemiddleware 13 quotes with ", 4.17 (Pike) with ': either is the same challenge.
CHALLENGE = re.compile(r"""^Keystone uri=(["'])http://127\.0\.0\.1:\d+[^"']*\1$""")
T0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
T_TIE = T0 + dt.timedelta(hours=1)
OTHER = "other-project"
UNORDERED = ("/v2/meters", "/v2/resources")  # spec 1.1, 1.5: no defined order
MODULE_START = dt.datetime.now(dt.UTC)


def _naive(moment: dt.datetime, *, micro: bool = False) -> str:
    naive = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds") if micro else naive.isoformat()


def _sample(meter: str, moment: dt.datetime | str, i: int, **extra: Any) -> dict[str, Any]:
    return {
        "counter_name": meter,
        "counter_type": extra.pop("type_", "gauge"),
        "counter_unit": extra.pop("unit", "B"),
        "counter_volume": float(i),
        "message_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meter}/{i}")),
        "project_id": extra.pop("project", "proj-a"),
        "user_id": "user-a",
        "resource_id": extra.pop("resource", f"res-{i % 3}"),
        "source": "openstack",
        "timestamp": moment,
        "resource_metadata": extra.pop("metadata", {"display_name": f"vm-{i}"}),
    }


def dataset(demo_project: str) -> list[dict[str, Any]]:
    samples = [
        _sample("d.list", T0 + dt.timedelta(seconds=i, microseconds=0 if i % 2 else 500000), i)
        for i in range(130)
    ]
    samples += [_sample("d.tie", T_TIE, i) for i in range(40)]
    samples += [_sample("d.tie", T_TIE + dt.timedelta(seconds=k), 100 + k) for k in (-2, -1, 1)]
    samples += [
        _sample("d.unit", T0, 1, unit="a"),
        _sample("d.unit", T0 + dt.timedelta(seconds=1), 2, unit="b", type_="delta"),
        _sample("d.scope", T0, 1, project=demo_project, resource="res-demo"),
        _sample("d.scope", T0 + dt.timedelta(seconds=1), 2, project=OTHER, resource="res-o"),
        _sample("d.demo", T0, 1, project=demo_project),
        _sample(
            "d.meta",
            "2024-05-01T05:00:00+02:00",
            1,
            metadata={
                "display_name": "web-1",
                "flavor": {"name": "m1.tiny", "ram": 512, "extra": {"k": "v"}},
                "size": 0,
                "ratio": 0.75,
                "public": True,
                "nothing": None,
                "prop.3": "dotted",
                "OS-EXT-AZ:availability_zone": "nova",
            },
        ),
        _sample("d.listmeta", T0, 1, metadata={"tags": ["a", "b"], "ports": [80, 443]}),
    ]
    return samples


@dataclass
class Target:
    """One server under test, with sessions for the admin and demo users."""

    name: str
    ceilometer_url: str
    admin: ks_session.Session
    demo: ks_session.Session
    projects: dict[str, str]  # project id -> placeholder

    def session(self, who: str) -> ks_session.Session:
        return self.admin if who == "admin" else self.demo


def _session(auth_url: str, user: str, password: str, project: str) -> ks_session.Session:
    return ks_session.Session(
        auth=v3.Password(
            auth_url=auth_url,
            username=user,
            password=password,
            project_name=project,
            user_domain_id="default",
            project_domain_id="default",
        )
    )


def _target(name: str, ceilometer_url: str, auth_url: str) -> Target:
    admin = _session(auth_url, "admin", "admin-secret", "admin")
    demo = _session(auth_url, "demo", "demo-secret", "demo")
    projects = {
        str(admin.get_project_id()): "<admin-project>",
        str(demo.get_project_id()): "<demo-project>",
    }
    return Target(name, ceilometer_url, admin, demo, projects)


@pytest.fixture(scope="module")
def targets(real_stack: RealStack) -> Iterator[tuple[Target, Target]]:
    real_stack.reset_storage()
    real = _target("real", real_stack.ceilometer_url, real_stack.auth_url)
    with Simulator() as sim:
        simulated = _target("simulator", sim.url, sim.auth_url)
        for target, seed in ((real, real_stack.seed), (simulated, sim.add_samples)):
            demo_project = next(p for p, n in target.projects.items() if n == "<demo-project>")
            samples = dataset(demo_project)
            assert seed(samples) == len(samples)
        yield real, simulated
        for target in (real, simulated):
            target.admin.session.close()
            target.demo.session.close()


@dataclass(frozen=True)
class Case:
    """One request: `who` is admin, demo or none (no token), `token` a literal token."""

    id: str
    path: str
    method: str = "GET"
    params: tuple[tuple[str, str], ...] = ()
    body: Any = None
    who: str = "admin"
    token: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def _q(*conditions: tuple[str, str, str], **extra: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for field, op, value in conditions:
        out += [("q.field", field), ("q.op", op), ("q.type", ""), ("q.value", value)]
    return (*out, *extra.items())


def _cq(**body: Any) -> dict[str, Any]:
    return {k: json.dumps(v) if k in ("filter", "orderby") else v for k, v in body.items()}


def _keyset(meter: str, ts: str, message_id: str) -> dict[str, Any]:
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
T_TIE_MICRO = _naive(T_TIE, micro=True)
T3 = _naive(T0 + dt.timedelta(seconds=3), micro=True)
T7 = _naive(T0 + dt.timedelta(seconds=7), micro=True)

CASES = [
    # limits and order (spec 3, 4)
    Case("meter-default-limit", "/v2/meters/d.list"),
    Case("samples-default-limit", "/v2/samples", params=_q(("meter", "eq", "d.list"))),
    Case("meter-limit-5", "/v2/meters/d.list", params=(("limit", "5"),)),
    Case("lower-bound-newest", "/v2/meters/d.list", params=_q(("timestamp", "ge", T3), limit="3")),
    *(
        Case(
            f"bounds-{a}-{b}",
            "/v2/meters/d.list",
            params=_q(("timestamp", a, T3), ("timestamp", b, T7)),
        )
        for a in ("gt", "ge")
        for b in ("lt", "le")
    ),
    Case("bounds-tz-dropped", "/v2/meters/d.list", params=_q(("timestamp", "lt", T3 + "+02:00"))),
    Case("bounds-z", "/v2/meters/d.list", params=_q(("timestamp", "lt", T3 + "Z"))),
    Case("bounds-date-only", "/v2/meters/d.list", params=_q(("timestamp", "ge", "2024-05-01"))),
    # formats (spec 1.2, 1.3, 5)
    Case("old-sample-meta", "/v2/meters/d.meta"),
    Case("sample-meta", "/v2/samples", params=_q(("meter", "eq", "d.meta"))),
    # the complex query (spec 1.4)
    Case("cq-default", "/v2/query/samples", "POST", body=_cq(filter={"=": {"meter": "d.list"}})),
    Case("cq-empty", "/v2/query/samples", "POST", body={}),
    Case(
        "cq-keyset-first",
        "/v2/query/samples",
        "POST",
        body=_cq(
            filter={"and": [{"=": {"counter_name": "d.tie"}}, {">=": {"timestamp": T_TIE_MICRO}}]},
            orderby=ORDER,
            limit=10,
        ),
    ),
    Case(
        "cq-keyset-after",
        "/v2/query/samples",
        "POST",
        body=_cq(filter=_keyset("d.tie", T_TIE_MICRO, "8"), orderby=ORDER, limit=10),
    ),
    Case(
        "cq-case-insensitive",
        "/v2/query/samples",
        "POST",
        body=_cq(
            filter={"AND": [{"=": {"meter": "d.list"}}, {">": {"volume": 125}}]},
            orderby=[{"timestamp": "aSc"}],
        ),
    ),
    Case(
        "cq-tz-dropped",
        "/v2/query/samples",
        "POST",
        body=_cq(filter={"and": [{"=": {"meter": "d.list"}}, {"<": {"timestamp": T3 + "+02:00"}}]}),
    ),
    *(
        Case(
            f"cq-metadata-{i}",
            "/v2/query/samples",
            "POST",
            body=_cq(filter={"and": [{"=": {"meter": "d.meta"}}, {"=": cond}]}),
        )
        for i, cond in enumerate(
            [
                {"metadata.display_name": "web-1"},
                {"metadata.flavor.ram": 512},
                {"metadata.flavor.ram": "512"},
                {"metadata.size": 0},
                {"metadata.size": "0"},
                {"metadata.public": True},
                {"metadata.ratio": 0.75},
            ]
        )
    ),
    *(
        Case(f"sq-metadata-{i}", "/v2/meters/d.meta", params=params)
        for i, params in enumerate(
            [
                _q(("metadata.display_name", "eq", "web-1")),
                _q(("metadata.flavor.ram", "eq", "512")),
                _q(("resource_metadata.flavor.name", "eq", "m1.tiny")),
                _q(("metadata.size", "eq", "0")),
                (("q.field", "metadata.size"), ("q.type", "string"), ("q.value", "0")),
                (("q.field", "metadata.flavor.ram"), ("q.type", "string"), ("q.value", "512")),
                (("q.field", "metadata.public"), ("q.type", "boolean"), ("q.value", "true")),
            ]
        )
    ),
    # meters (spec 1.1)
    Case("meters-unique", "/v2/meters", params=(("unique", "True"), ("limit", "1000"))),
    Case("meters-all", "/v2/meters", params=(("limit", "1000"),)),
    Case("meters-default-limit", "/v2/meters"),
    Case("meters-unknown", "/v2/meters/no.such.meter"),
    Case("statistics-unknown", "/v2/meters/no.such.meter/statistics"),
    Case("capabilities", "/v2/capabilities"),
    # errors (spec 1.0, 2.3, 3, 1.4)
    *(
        Case(f"sq-error-{i}", "/v2/samples", params=params)
        for i, params in enumerate(
            [
                _q(("counter_name", "eq", "x")),
                _q(("project_id", "lt", "x")),
                _q(("project_id", "foo", "x")),
                _q(("timestamp", "eq", "2024-01-01T00:00:00")),
                _q(("timestamp", "gt", "123")),
                (("limit", "0"),),
                (("limit", "-1"),),
                (("limit", "abc"),),
                (("nope", "1"),),
                (("q.field", "metadata.x"), ("q.type", "blob"), ("q.value", "1")),
                (("q.field", "metadata.x"), ("q.type", "float"), ("q.value", "0.7.5")),
                (("q.field", "metadata.x"), ("q.type", "datetime"), ("q.value", "2024-01-01")),
            ]
        )
    ),
    Case("meters-timestamp", "/v2/meters", params=_q(("timestamp", "gt", "2024-01-01"))),
    Case("meters-limit-0", "/v2/meters", params=(("limit", "0"),)),
    Case("sample-missing", "/v2/samples/no-such-id"),
    Case("sample-missing-args", "/v2/samples/no-such-id", params=(("limit", "5"),)),
    *(
        Case(f"cq-error-{i}", "/v2/query/samples", "POST", body=body)
        for i, body in enumerate(
            [
                {"limit": 0},
                {"filter": json.dumps({"=": {"nope": 1}})},
                {"filter": '{"=": '},
                {"orderby": json.dumps([{"timestamp": "up"}])},
                {"filter": {"=": {"meter": "x"}}},
                {"foo": 1},
                {"filter": json.dumps({">": {"timestamp": "nope"}})},
                {"filter": json.dumps({"=": {"source": "openstack"}})},
                {"filter": json.dumps({"=": {"resource_metadata.display_name": "x"}})},
            ]
        )
    ),
    Case("not-found", "/v2/nope"),
    Case("v2-root", "/v2"),
    Case("method-not-allowed", "/v2/samples", "POST", body=[]),
    Case("not-acceptable", "/v2/samples", headers=(("Accept", "text/plain"),)),
    Case("not-acceptable-html", "/v2/samples", headers=(("Accept", "text/html"),)),
    # ceilometer.NotImplementedError from the storage driver: 501 (found by this tier)
    Case(
        "cq-metadata-in",
        "/v2/query/samples",
        "POST",
        body=_cq(filter={"in": {"metadata.display_name": ["web-1"]}}),
    ),
    Case(
        "statistics-groupby-source", "/v2/meters/d.list/statistics", params=(("groupby", "source"),)
    ),
    *(
        Case(f"sq-metadata-unsupported-{i}", "/v2/meters/d.meta", params=params)
        for i, params in enumerate(
            [
                (("q.field", "metadata.size"), ("q.value", "[1]")),
                (("q.field", "metadata.size"), ("q.value", "{'a': 1}")),
            ]
        )
    ),
    # An untyped None compares the text side table with NULL through an outer join.
    *(
        Case(f"sq-metadata-none-{i}", "/v2/samples", params=params)
        for i, params in enumerate(
            [
                _q(("meter", "eq", "d.meta"), ("metadata.nothing", "eq", "None")),
                _q(("meter", "eq", "d.meta"), ("metadata.size", "eq", "None")),
                _q(("meter", "eq", "d.meta"), ("metadata.display_name", "eq", "None")),
                _q(("meter", "eq", "d.meta"), ("metadata.no_such_key", "eq", "None")),
                _q(("meter", "eq", "d.meta"), ("metadata.nothing", "eq", "'None'")),
            ]
        )
    ),
    # authentication (spec 6)
    Case("no-token", "/v2/samples", who="none"),
    Case("bad-token", "/v2/samples", who="none", token="not-a-token"),
    # non-admin scoping (spec 2.5)
    Case("demo-scope", "/v2/meters/d.scope", who="demo"),
    Case("demo-samples", "/v2/samples", who="demo"),
    Case("demo-unique", "/v2/meters", params=(("unique", "True"),), who="demo"),
    Case("demo-meters", "/v2/meters", who="demo"),
    Case("demo-other", "/v2/samples", params=_q(("project_id", "eq", OTHER)), who="demo"),
    Case(
        "demo-cq-other",
        "/v2/query/samples",
        "POST",
        body=_cq(filter={"=": {"project_id": OTHER}}),
        who="demo",
    ),
]


def call(target: Target, case: Case) -> requests.Response:
    url = f"{target.ceilometer_url}{case.path}"
    headers = dict(case.headers)
    kwargs: dict[str, Any] = {"params": list(case.params) or None, "headers": headers}
    if case.body is not None:
        kwargs["json"] = case.body
    if case.who == "none":
        if case.token:
            headers["X-Auth-Token"] = case.token
        return requests.request(case.method, url, timeout=60, **kwargs)
    response: requests.Response = target.session(case.who).request(
        url, case.method, raise_exc=False, **kwargs
    )
    return response


def _normalise_value(value: Any, projects: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "recorded_at" and isinstance(item, str) and RECORDED_AT.match(item):
                out[key] = "<recorded_at>"
            elif key == "recorded_at" and item is None:
                out[key] = "<null>"
            elif key == "href" and isinstance(item, str):
                out[key] = re.sub(r"^http://127\.0\.0\.1:\d+", "<url>", item)
            else:
                out[key] = _normalise_value(item, projects)
        return out
    if isinstance(value, list):
        return [_normalise_value(item, projects) for item in value]
    if isinstance(value, str):
        for project_id, placeholder in projects.items():
            value = value.replace(project_id, placeholder)
        return value
    return value


# Texts that depend on library versions, not on Ceilometer: compare the stable part only.
# - jsonschema's explanation after the first line (its field list comes from a set, so its
#   order changes from one process to the next);
# - WSME 0.13 (here) says "Wrong type. Expected '<class 'str'>', got '<class 'dict'>'" where
#   WSME 0.9.2 (Pike) said "Value should be string": compare up to the value;
# - WebOb's HTML error pages differ in whitespace between versions.
FIRST_LINE_ONLY = {"cq-error-1", "cq-error-3", "cq-error-8"}
UP_TO_VALUE = {"cq-error-4"}


def _stable_fault(case: Case, body: Any) -> Any:
    if not isinstance(body, dict) or "error_message" not in body:
        return body
    message = body["error_message"]
    if isinstance(message, str):
        return {"error_message": re.sub(r"\s+", "", message)}
    text = message.get("faultstring") if isinstance(message, dict) else None
    if isinstance(text, str) and case.id in FIRST_LINE_ONLY:
        message["faultstring"] = text.split("\n", 1)[0]
    if isinstance(text, str) and case.id in UP_TO_VALUE:
        message["faultstring"] = text.split("'. ", 1)[0]
    return body


def normalise(target: Target, case: Case, response: requests.Response) -> dict[str, Any]:
    """The parts of an answer that must agree, in a form that compares across servers."""
    try:
        body: Any = response.json()
    except ValueError:
        body = {"<not json>": response.text}
    body = _stable_fault(case, _normalise_value(body, target.projects))
    if isinstance(body, list):
        items = sorted(body, key=lambda item: json.dumps(item, sort_keys=True))
        if case.path in UNORDERED:
            body = items
        else:
            # Samples: the order of timestamps is pinned, the order within one instant is not.
            order = [s.get("timestamp") for s in body if isinstance(s, dict)]
            body = {"timestamps in order": order, "items": items}
    challenge = response.headers.get("WWW-Authenticate")
    return {
        "status": response.status_code,
        "content-type": response.headers.get("Content-Type"),
        "allow": response.headers.get("Allow"),
        "challenge": None if challenge is None else bool(CHALLENGE.match(challenge)),
        "body": body,
    }


def _params() -> list[Any]:
    return [pytest.param(case, id=case.id) for case in CASES]


@pytest.mark.parametrize("case", _params())
def test_simulator_answers_like_the_real_server(targets: tuple[Target, Target], case: Case) -> None:
    real, simulated = targets
    expected = normalise(real, case, call(real, case))
    got = normalise(simulated, case, call(simulated, case))
    assert got == expected


def test_recorded_at_is_the_insert_time(targets: tuple[Target, Target]) -> None:
    """A sample seeded without recorded_at gets one: the time it was stored (spec 5).

    Both servers run on this machine and were seeded when this module started, so the stamp
    lies between the module's start and now.
    """
    now = dt.datetime.now(dt.UTC)
    for target in targets:
        body = target.admin.get(f"{target.ceilometer_url}/v2/meters/d.demo", raise_exc=False).json()
        (sample,) = body
        recorded = dt.datetime.fromisoformat(sample["recorded_at"]).replace(tzinfo=dt.UTC)
        assert MODULE_START <= recorded <= now, target.name


def test_metadata_list_of_strings_is_version_dependent(targets: tuple[Target, Target]) -> None:
    """A version-dependent difference, kept on purpose: strings in a metadata list.

    Ceilometer flattens metadata with str(); the list's strings were encoded to bytes first. On
    Python 2.7 (Pike as deployed) bytes print as 'a'; on Python 3 (this 9.0.7) as b'a'. The
    simulator follows Pike. Numbers print alike on both. This pins both renderings, so a change
    on either side shows here.
    """
    rendered = []
    for target in targets:
        (sample,) = target.admin.get(f"{target.ceilometer_url}/v2/meters/d.listmeta").json()
        rendered.append(sample["resource_metadata"])
    real, simulated = rendered
    assert real == {"tags": "[b'a', b'b']", "ports": "[80, 443]"}
    assert simulated == {"tags": "['a', 'b']", "ports": "[80, 443]"}
