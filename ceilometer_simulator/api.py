"""The Ceilometer v2 controllers: argument parsing, validation, SQL, serialisation."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import random
import threading
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from ceilometer_simulator.errors import (
    GNOCCHI_MESSAGE,
    ApiError,
    abort,
    client_error,
    entity_not_found,
    invalid_input,
    missing_argument,
    unknown_argument,
)
from ceilometer_simulator.metadata import posted_metadata, restore_nesting
from ceilometer_simulator.query import (
    METER_LIST_KEYS,
    ORDER_COLUMNS,
    RESOURCE_KEYS,
    SAMPLE_FILTER_KEYS,
    ComplexTranslator,
    QueryItem,
    Sql,
    Unset,
    bool_from_string,
    filter_to_sql,
    implied_ts_bounds,
    q_from_json,
    q_from_params,
    query_to_filter,
    validate_complex,
)
from ceilometer_simulator.store import (
    SAMPLE_COLUMNS,
    SAMPLE_FROM,
    Store,
    row_to_old_sample,
    row_to_sample,
)
from ceilometer_simulator.timeutil import iso_from_us

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ceilometer_simulator.keystone import Token

SAMPLE_TYPES = ("gauge", "delta", "cumulative")

# Pike's SQLAlchemy driver capabilities (spec 1.6).
CAPABILITIES: dict[str, Any] = {
    "api": {
        "meters:query:simple": True,
        "meters:query:metadata": True,
        "resources:query:simple": True,
        "resources:query:metadata": True,
        "samples:query:simple": True,
        "samples:query:metadata": True,
        "samples:query:complex": True,
        "statistics:groupby": True,
        "statistics:query:simple": True,
        "statistics:query:metadata": True,
        "statistics:aggregation:standard": True,
        **{
            f"statistics:aggregation:selectable:{f}": True
            for f in ("max", "min", "sum", "avg", "count", "stddev", "cardinality")
        },
    },
    "storage": {"storage:production_ready": True},
}

_ENCODER = msgspec.json.Encoder()


@dataclasses.dataclass
class Request:
    """What a controller needs of an HTTP request."""

    method: str
    path: str
    params: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    base_url: str
    token: Token | None = None

    @property
    def auth_project(self) -> str | None:
        """The project a non-admin caller is limited to; None for admins (spec 2.5)."""
        if self.token is None or self.token.is_admin or self.token.project is None:
            return None
        return self.token.project.id

    @property
    def content_type(self) -> str:
        """The media type of the body, without parameters."""
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def json_body(self) -> Any:
        """The body parsed as JSON; 400 when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise client_error(f"Invalid data: {exc}") from None


@dataclasses.dataclass
class Response:
    """An HTTP answer: status, JSON (or other) body, extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    content_type: str = "application/json"


def json_response(data: Any, status: int = 200) -> Response:
    """A JSON answer encoded with msgspec."""
    return Response(status, _ENCODER.encode(data))


def _int_arg(name: str, value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError("bool is no int")
        return int(value)
    except (TypeError, ValueError) as exc:
        raise invalid_input(name, value, f"unable to convert to int. Error: {exc}") from None


def parse_args(req: Request, spec: Mapping[str, str]) -> dict[str, Any]:  # noqa: PLR0912
    """WSME-style arguments from the query string and (for GET) an optional JSON body.

    ``spec`` maps argument names to ``q``, ``int`` or ``str``.
    """
    hit: set[str] = set()
    from_params: dict[str, Any] = {}
    for name, kind in spec.items():
        if kind == "q":
            q = q_from_params(req.params, hit)
            if q is not None:
                from_params[name] = q
        elif kind == "list":
            if name in req.params:
                hit.add(name)
                from_params[name] = list(req.params[name])
        elif kind == "agg":
            if name in req.params:
                hit.add(name)
                value = req.params[name][-1]
                raise invalid_input(
                    name, value, f"unable to convert to Aggregate. Error: {value!r} is no object"
                )
            funcs = req.params.get(f"{name}.func", [])
            params = req.params.get(f"{name}.param", [])
            if funcs or params:
                hit.update({f"{name}.func", f"{name}.param"})
                from_params[name] = [
                    (f, params[i] if i < len(params) else None) for i, f in enumerate(funcs)
                ]
        elif name in req.params:
            hit.add(name)
            values = req.params[name]
            # Pecan hands a repeated parameter over as a list, which int() rejects.
            raw: Any = values[0] if len(values) == 1 else values
            from_params[name] = _int_arg(name, raw) if kind == "int" else raw
    unknown = [k for k in req.params if k not in hit]
    if unknown:
        raise unknown_argument(", ".join(unknown))
    from_body: dict[str, Any] = {}
    if req.method == "GET" and req.body.strip() and req.content_type == "application/json":
        body = req.json_body()
        if isinstance(body, dict):
            for key, value in body.items():
                if key not in spec:
                    raise unknown_argument(key)
                kind = spec[key]
                if kind == "q":
                    from_body[key] = q_from_json(value)
                elif kind == "int":
                    from_body[key] = _int_arg(key, value)
                else:
                    from_body[key] = value
    for key in from_body:
        if key in from_params:
            raise client_error(f"Parameter {key} was given several times")
    return {**from_params, **from_body}


class CeilometerApi:
    """Routes /v2 requests to controllers that behave like Ceilometer 9.0 (Pike)."""

    def __init__(self, store: Store, gnocchi: bool = False, default_limit: int = 100) -> None:
        self.store = store
        self.gnocchi = gnocchi
        self.default_limit = default_limit
        self._salt_rng = random.Random()
        self._salt_lock = threading.Lock()

    # -- routing ---------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        """Answer one authenticated request under /v2."""
        parts = [urllib.parse.unquote(p) for p in req.path.split("/")[2:]]
        while parts and parts[-1] == "" and len(parts) > 1:
            parts.pop()  # a trailing slash routes like the bare path
        kind = parts[0] if parts else ""
        rest = parts[1:]
        if kind in ("meters", "resources", "samples") and self.gnocchi:
            if kind == "meters" and req.method == "POST" and rest:
                direct = req.params.get("direct", [""])[-1]
                if bool_from_string(direct):
                    raise abort(400, "direct option cannot be true when Gnocchi is enabled.")
                return self.post_samples(req, rest[0])
            raise abort(410, GNOCCHI_MESSAGE)
        route = self._route(req, kind, rest)
        if route is None:
            raise abort(404)
        return route()

    def _route(  # noqa: PLR0911, PLR0912 - a routing table
        self, req: Request, kind: str, rest: list[str]
    ) -> Callable[[], Response] | None:
        method = req.method
        if kind == "meters":
            if not rest:
                return self._only(method, "GET", lambda: self.list_meters(req))
            if len(rest) == 1:
                if method == "POST":
                    return lambda: self.post_samples(req, rest[0])
                return self._only(method, "GET, POST", lambda: self.meter_samples(req, rest[0]))
            if len(rest) == 2 and rest[1] == "statistics":
                return self._only(method, "GET", lambda: self.statistics(req, rest[0]))
            return None
        if kind == "samples":
            if not rest:
                return self._only(method, "GET", lambda: self.list_samples(req))
            if len(rest) == 1:
                return self._only(method, "GET", lambda: self.get_sample(req, rest[0]))
            return None
        if kind == "resources":
            if not rest:
                return self._only(method, "GET", lambda: self.list_resources(req))
            if len(rest) == 1:
                return self._only(method, "GET", lambda: self.get_resource(req, rest[0]))
            return None
        if kind == "query" and rest == ["samples"]:
            if self.gnocchi:
                raise abort(410, GNOCCHI_MESSAGE)
            return self._only(method, "POST", lambda: self.query_samples(req))
        if kind == "capabilities" and not rest:
            return self._only(method, "GET", self.capabilities)
        return None

    @staticmethod
    def _only(method: str, allowed: str, handler: Callable[[], Response]) -> Callable[[], Response]:
        if method in allowed.split(", ") or (method == "HEAD" and "GET" in allowed):
            return handler

        def not_allowed() -> Response:
            raise abort(405, headers={"Allow": allowed})

        return not_allowed

    # -- helpers ---------------------------------------------------------------------------------

    def _limit(self, limit: int | None) -> int:
        # enforce_limit: the default applies silently; limit <= 0 is an error (spec 3).
        if limit is None:
            limit = self.default_limit
        if not limit or limit <= 0:
            raise client_error("Limit must be positive")
        return limit

    def _salt(self) -> int:
        with self._salt_lock:
            return self._salt_rng.randrange(1, 2_147_483_647)

    def _tie_order(self) -> str:
        # Ties come back in an order that changes between calls, like an engine that picks any.
        return f"((s.pk * {self._salt()}) % 2147483629)"

    def _meter_pks(self, predicate: Callable[[str, str, str], bool]) -> list[int]:
        return [pk for pk, name, mtype, unit in self._meter_rows() if predicate(name, mtype, unit)]

    def _meter_rows(self) -> list[tuple[int, str, str, str]]:
        return [(pk, n, t, u) for (n, t, u), pk in self.store.meter_cache().items()]

    def _simple_samples(self, where: Sql, limit: int) -> list[Any]:
        sql = (
            f"SELECT {SAMPLE_COLUMNS} FROM {SAMPLE_FROM} WHERE {where.where}"  # noqa: S608
            f" ORDER BY s.ts DESC, {self._tie_order()} LIMIT ?"
        )
        return self.store.fetch(sql, [*where.params, limit])

    def _filter_from(self, args: Mapping[str, Any], req: Request) -> Sql:
        q: list[QueryItem] = args.get("q") or []
        f = query_to_filter(q, SAMPLE_FILTER_KEYS, req.auth_project)
        return filter_to_sql(f, self._meter_pks)

    # -- controllers -----------------------------------------------------------------------------

    def meter_samples(self, req: Request, name: str) -> Response:
        """GET /v2/meters/<name>: OldSamples, newest first, default limit (spec 1.2)."""
        args = parse_args(req, {"q": "q", "limit": "int"})
        limit = self._limit(args.get("limit"))
        q: list[QueryItem] = args.get("q") or []
        f = query_to_filter(q, SAMPLE_FILTER_KEYS, req.auth_project)
        f.meter = name  # the path wins over any q.field=meter
        rows = self._simple_samples(filter_to_sql(f, self._meter_pks), limit)
        return Response(200, _ENCODER.encode([row_to_old_sample(r) for r in rows]))

    def list_samples(self, req: Request) -> Response:
        """GET /v2/samples: Samples, newest first, default limit (spec 1.3)."""
        args = parse_args(req, {"q": "q", "limit": "int"})
        limit = self._limit(args.get("limit"))
        rows = self._simple_samples(self._filter_from(args, req), limit)
        return Response(200, _ENCODER.encode([row_to_sample(r) for r in rows]))

    def get_sample(self, req: Request, sample_id: str) -> Response:
        """GET /v2/samples/<id>: no limit, no project scoping (spec 1.3)."""
        parse_args(req, {})
        rows = self.store.fetch(
            f"SELECT {SAMPLE_COLUMNS} FROM {SAMPLE_FROM} WHERE s.message_id = ?"  # noqa: S608
            " ORDER BY s.ts DESC",
            [sample_id],
        )
        if not rows:
            raise entity_not_found("Sample", sample_id)
        return Response(200, _ENCODER.encode(row_to_sample(rows[0])))

    def query_samples(self, req: Request) -> Response:  # noqa: PLR0912
        """POST /v2/query/samples: the complex query (spec 1.4)."""
        parse_args(req, {})
        if req.content_type != "application/json":
            raise client_error(f"Unknown mimetype: {req.content_type or 'None'}", status=415)
        if not req.body.strip():
            raise missing_argument("body")
        body = req.json_body()
        if not isinstance(body, dict):
            raise invalid_input("body", body, "Value should be an object")
        unknown = [k for k in body if k not in ("filter", "orderby", "limit")]
        if unknown:
            word = "attributes" if len(unknown) > 1 else "attribute"
            raise client_error(f"Unknown {word} for argument body: {', '.join(unknown)}")
        for key in ("filter", "orderby"):
            if key in body and body[key] is not None and not isinstance(body[key], str):
                raise invalid_input(key, body[key], "Value should be string")
        if "limit" in body and body["limit"] is not None:
            body = {**body, "limit": _int_arg("limit", body["limit"])}
        cq = validate_complex(body, req.auth_project, self.default_limit)
        translator = ComplexTranslator(self._meter_rows)
        where = "1 = 1"
        bounds = ""
        params: list[Any] = []
        if cq.filter is not None:
            where = translator.translate(cq.filter)
            params = translator.params
            lo, hi = implied_ts_bounds(cq.filter)
            if lo is not None:
                bounds += f" AND s.ts >= {int(lo)}"
            if hi is not None:
                bounds += f" AND s.ts <= {int(hi)}"
        if cq.orderby:
            terms = []
            for field, direction in cq.orderby:
                if field == "source":
                    raise ApiError(
                        500,
                        "type object 'FullSample' has no attribute 'source'",
                        faultcode="Server",
                    )
                terms.append(f"{ORDER_COLUMNS[field]} {direction.upper()}")
            order = ", ".join(terms)
            if "message_id" not in {f for f, _ in cq.orderby}:
                order += f", {self._tie_order()}"
        else:
            order = f"s.ts DESC, {self._tie_order()}"
        sql = (
            f"SELECT {SAMPLE_COLUMNS} FROM {SAMPLE_FROM} WHERE {where}{bounds}"  # noqa: S608
            f" ORDER BY {order} LIMIT ?"
        )
        rows = self.store.fetch(sql, [*params, cq.limit])
        return Response(200, _ENCODER.encode([row_to_sample(r) for r in rows]))

    def list_meters(self, req: Request) -> Response:
        """GET /v2/meters: one entry per (meter, resource) from its latest sample (spec 1.1)."""
        args = parse_args(req, {"q": "q", "limit": "int", "unique": "str"})
        limit = self._limit(args.get("limit"))
        q: list[QueryItem] = args.get("q") or []
        f = query_to_filter(q, METER_LIST_KEYS, req.auth_project, allow_timestamps=False)
        unique = bool_from_string(args.get("unique", ""))
        return json_response(self._meters(f, unique, limit))

    def _meters(self, f: Any, unique: bool, limit: int | None) -> list[dict[str, Any]]:
        # Filters apply to the latest sample of each group only, as in the SQL driver.
        f.meter = None
        where = filter_to_sql(f, self._meter_pks)
        if unique:
            latest = "SELECT max(sample_pk) FROM latest GROUP BY meter_pk"
        elif f.resource:
            latest = "SELECT sample_pk FROM latest WHERE resource_id = ?"
            where.params.insert(0, f.resource)
        else:
            latest = "SELECT sample_pk FROM latest"
        sql = (
            "SELECT m.name, m.type, m.unit, r.resource_id, r.project_id, r.user_id, r.source"  # noqa: S608 - only our own column names
            f" FROM {SAMPLE_FROM} WHERE s.pk IN ({latest}) AND {where.where}"
        )
        params = list(where.params)
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        out = []
        for row in self.store.fetch(sql, params):
            name, mtype, unit = row[:3]
            rid, pid, uid, src = (None, None, None, None) if unique else row[3:]
            meter_id = base64.b64encode(f"{rid}+{name}".encode()).decode()
            out.append(
                {
                    "meter_id": meter_id,
                    "name": name,
                    "type": mtype,
                    "unit": unit,
                    "resource_id": rid,
                    "project_id": pid,
                    "user_id": uid,
                    "source": src,
                }
            )
        return out

    def list_resources(self, req: Request) -> Response:
        """GET /v2/resources (spec 1.5)."""
        args = parse_args(req, {"q": "q", "limit": "int", "meter_links": "int"})
        limit = self._limit(args.get("limit"))
        q: list[QueryItem] = args.get("q") or []
        f = query_to_filter(q, RESOURCE_KEYS, req.auth_project)
        links = args.get("meter_links", 1)
        return json_response(self._resources(req, f, limit, bool(links)))

    def get_resource(self, req: Request, resource_id: str) -> Response:
        """GET /v2/resources/<id>: project-scoped, 404 when missing (spec 1.5)."""
        parse_args(req, {})
        f = query_to_filter([], RESOURCE_KEYS, req.auth_project)
        f.resource = resource_id
        found = self._resources(req, f, None, True)
        if not found:
            raise entity_not_found("Resource", resource_id)
        return json_response(found[0])

    def _resources(self, req: Request, f: Any, limit: int | None, links: bool) -> list[Any]:
        where = filter_to_sql(f, self._meter_pks)
        ids_sql = f"SELECT DISTINCT r.resource_id FROM {SAMPLE_FROM} WHERE {where.where}"  # noqa: S608
        params = list(where.params)
        if limit:
            ids_sql += " LIMIT ?"
            params.append(limit)
        out = []
        for (rid,) in self.store.fetch(ids_sql, params):
            rows = self.store.fetch(
                f"SELECT min(s.ts), max(s.ts) FROM {SAMPLE_FROM}"  # noqa: S608
                f" WHERE {where.where} AND r.resource_id = ?",
                [*where.params, rid],
            )
            first, last = rows[0]
            detail = self.store.fetch(
                "SELECT r.user_id, r.project_id, r.source, r.flat FROM sample s"
                " JOIN resource r ON r.pk = s.res_pk WHERE s.ts = ? AND r.resource_id = ?"
                " ORDER BY s.pk DESC LIMIT 1",
                [last, rid],
            )
            uid, pid, src, flat = detail[0]
            entry: dict[str, Any] = {
                "resource_id": rid,
                "project_id": pid,
                "user_id": uid,
                "source": src,
                "first_sample_timestamp": iso_from_us(first),
                "last_sample_timestamp": iso_from_us(last),
                "metadata": msgspec.Raw(flat),
                "links": [{"href": f"{req.base_url}/v2/resources/{rid}", "rel": "self"}],
            }
            if links:
                meters_filter = query_to_filter([], METER_LIST_KEYS, None, allow_timestamps=False)
                meters_filter.resource = rid
                for meter in self._meters(meters_filter, False, None):
                    entry["links"].append(
                        {
                            "href": f"{req.base_url}/v2/meters/{meter['name']}"
                            f"?q.field=resource_id&q.value={rid}",
                            "rel": meter["name"],
                        }
                    )
            out.append(entry)
        return out

    def capabilities(self) -> Response:
        """GET /v2/capabilities (spec 1.6)."""
        return json_response(CAPABILITIES)

    def statistics(self, req: Request, name: str) -> Response:
        """GET /v2/meters/<name>/statistics: one period, optional groupby (spec 1.7, brief)."""
        return self._statistics(req, name)

    def _statistics(self, req: Request, name: str) -> Response:
        from ceilometer_simulator.statistics import statistics  # noqa: PLC0415

        args = parse_args(
            req,
            {"q": "q", "period": "int", "groupby": "list", "aggregate": "agg"},
        )
        q: list[QueryItem] = args.get("q") or []
        f = query_to_filter(q, SAMPLE_FILTER_KEYS, req.auth_project)
        f.meter = name
        where = filter_to_sql(f, self._meter_pks)
        return json_response(statistics(self.store, where, f, args))

    # -- seeding ---------------------------------------------------------------------------------

    def post_samples(self, req: Request, name: str) -> Response:
        """POST /v2/meters/<name>: validate, echo with message ids, store (spec 1.8)."""
        args = parse_args(req, {"direct": "str"})
        direct = bool_from_string(args.get("direct", ""))
        if req.content_type != "application/json":
            raise client_error(f"Unknown mimetype: {req.content_type or 'None'}", status=415)
        body = req.json_body() if req.body.strip() else None
        if not body:
            raise client_error("Samples should be included in request body")
        if not isinstance(body, list):
            raise invalid_input(
                "samples", req.body.decode(errors="replace"), "Value should be a list"
            )
        token = req.token
        def_project = token.project.id if token and token.project else None
        def_user = token.user.id if token else None
        auth_project = req.auth_project
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        echoed: list[dict[str, Any]] = []
        stored: list[dict[str, Any]] = []
        for item in body:
            s = self._old_sample_in(item, req)
            if s.get("counter_name") != name:
                raise invalid_input(
                    "counter_name", s.get("counter_name", Unset), f"should be {name}"
                )
            if s.get("message_id"):
                raise invalid_input("message_id", s["message_id"], "The message_id must not be set")
            if s.get("counter_type") not in SAMPLE_TYPES:
                raise invalid_input(
                    "counter_type",
                    s.get("counter_type", Unset),
                    "The counter type must be: " + ", ".join(SAMPLE_TYPES),
                )
            for field in ("counter_unit", "counter_volume", "resource_id"):
                if s.get(field) is None:
                    raise invalid_input(field, Unset, "Mandatory field missing.")
            s["user_id"] = s.get("user_id") or def_user
            s["project_id"] = s.get("project_id") or def_project
            s["source"] = f"{s['project_id']}:{s.get('source') or 'openstack'}"
            ts: dt.datetime = s.get("timestamp") or now
            s["timestamp"] = ts
            if auth_project and auth_project != s["project_id"]:
                raise invalid_input(
                    "project_id", s["project_id"], "can not post samples to other projects"
                )
            s["message_id"] = str(uuid.uuid1())
            echo = dict(s)
            echo["timestamp"] = ts.isoformat()
            if isinstance(echo.get("recorded_at"), dt.datetime):
                echo["recorded_at"] = echo["recorded_at"].isoformat()
            echoed.append(echo)
            stored.append(
                {
                    **s,
                    # The SQL driver stamps recorded_at at insert time, whatever was posted.
                    "recorded_at": dt.datetime.now(dt.UTC),
                    "resource_metadata": restore_nesting(s.get("resource_metadata") or {}),
                }
            )
        if direct or not self.gnocchi:
            # Without direct the samples would travel the notification bus to the collector;
            # here they land in storage at once. In Gnocchi mode they leave this API for good.
            self.store.add_samples(stored)
        return json_response(echoed, status=201)

    @staticmethod
    def _old_sample_in(item: Any, req: Request) -> dict[str, Any]:
        allowed = {
            "counter_name",
            "counter_type",
            "counter_unit",
            "counter_volume",
            "user_id",
            "project_id",
            "resource_id",
            "timestamp",
            "recorded_at",
            "resource_metadata",
            "message_id",
            "source",
        }
        if not isinstance(item, dict):
            raise invalid_input("samples", item, "Value should be an object")
        unknown = sorted(set(item) - allowed)
        if unknown:
            word = "attributes" if len(unknown) > 1 else "attribute"
            raise client_error(f"Unknown {word} for argument samples: {', '.join(unknown)}")
        out: dict[str, Any] = {k: v for k, v in item.items() if v is not None}
        for field in ("timestamp", "recorded_at"):
            if field in out:
                try:
                    parsed = dt.datetime.fromisoformat(str(out[field]).strip())
                except ValueError:
                    raise invalid_input(
                        "samples", req.body.decode(errors="replace"), "Value should be datetime"
                    ) from None
                if parsed.tzinfo is not None:
                    parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
                out[field] = parsed
        if "counter_volume" in out:
            try:
                out["counter_volume"] = float(out["counter_volume"])
            except (TypeError, ValueError):
                raise invalid_input(
                    "samples", req.body.decode(errors="replace"), "Value should be float"
                ) from None
        meta = out.get("resource_metadata")
        if meta is not None:
            if not isinstance(meta, dict):
                raise invalid_input("resource_metadata", meta, "Value should be a dict")
            out["resource_metadata"] = posted_metadata(meta)
        return out
