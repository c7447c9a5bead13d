"""Query languages of the v2 API: the simple ``q`` list and the complex JSON filter.

Both are validated with the messages of the real server and translated to SQL over the
simulator's schema, so that windowed queries run on the (meter, timestamp, message_id) index.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from typing import TYPE_CHECKING, Any

import jsonschema  # type: ignore[import-untyped]

from ceilometer_simulator.errors import (
    ApiError,
    client_error,
    invalid_input,
    not_implemented,
    project_not_authorized,
    server_error,
    unknown_argument,
)
from ceilometer_simulator.store import VTYPE_BOOL, VTYPE_FLOAT, VTYPE_INT, VTYPE_TEXT
from ceilometer_simulator.timeutil import parse_query_timestamp, query_timestamp_us, to_us

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence


class _UnsetType:
    """WSME's ``Unset``: an attribute the client did not send."""

    _instance: _UnsetType | None = None

    def __new__(cls) -> _UnsetType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Unset"

    def __bool__(self) -> bool:
        return False


Unset: Any = _UnsetType()

_QUERY_ATTRS = ("field", "op", "type", "value")  # WSME lists a type's attributes sorted by key


@dataclasses.dataclass
class QueryItem:
    """One simple-query condition, ``Query{field, op, value, type}`` (spec 2.1)."""

    field: Any = Unset
    op_: Any = Unset
    value: Any = Unset
    type: Any = Unset

    @property
    def op(self) -> str:
        # An empty or missing op means eq (Query.get_op).
        return str(self.op_ or "eq")

    def __repr__(self) -> str:
        return f"<Query {self.field!r} {self.op} {self.value!r} {self.type}>"


def q_from_params(params: Mapping[str, list[str]], hit: set[str]) -> list[QueryItem] | None:
    """Parallel ``q.field``/``q.op``/``q.value``/``q.type`` lists, matched by position.

    Mirrors WSME ``array_from_params``, including how a shorter list realigns the items.
    """
    if not any(k.startswith("q.") and len(k) > 2 for k in params):
        return None
    items: list[QueryItem] = []
    for attr in _QUERY_ATTRS:
        key = f"q.{attr}"
        hit.add(key)
        values = params.get(key, [])
        if len(items) < len(values):
            items[-1:] = [QueryItem() for _ in range(len(values) - len(items))]
        for i, value in enumerate(values):
            setattr(items[i], "op_" if attr == "op" else attr, value)
    return items


def q_from_json(value: Any) -> list[QueryItem]:
    """The JSON-body form of ``q``: a list of objects (spec 1.0, GET with a JSON body)."""
    if not isinstance(value, list):
        raise invalid_input("q", value, "Value should be a list")
    items = []
    for entry in value:
        if not isinstance(entry, dict):
            raise invalid_input("q", entry, "Value should be an object")
        unknown = sorted(set(entry) - set(_QUERY_ATTRS))
        if unknown:
            word = "attributes" if len(unknown) > 1 else "attribute"
            raise client_error(f"Unknown {word} for argument q: {', '.join(unknown)}")
        items.append(
            QueryItem(
                entry.get("field", Unset),
                entry.get("op", Unset),
                entry.get("value", Unset),
                entry.get("type", Unset),
            )
        )
    return items


# -- simple query -----------------------------------------------------------------------------

SAMPLE_FILTER_KEYS = ("message_id", "meter", "project", "resource", "source", "user")
METER_LIST_KEYS = ("project", "resource", "source", "unique", "user")
RESOURCE_KEYS = ("project", "resource", "source", "user")
_TRANSLATION = {"user_id": "user", "project_id": "project", "resource_id": "resource"}
_SUPPORTED_TYPES = ["integer", "float", "string", "boolean", "datetime"]
_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


def bool_from_string(value: Any, strict: bool = False) -> bool:
    """oslo ``strutils.bool_from_string``."""
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if strict and text not in _FALSE:
        raise ValueError(f"Unrecognized value '{value}'")
    return False


def _is_metadata(field: Any) -> bool:
    return isinstance(field, str) and field.startswith(("metadata.", "resource_metadata."))


def value_as_type(item: QueryItem, forced: str | None = None) -> Any:
    """``Query._get_value_as_type``: literal_eval when untyped, else the named converter."""
    kind = forced or item.type
    value = item.value
    try:
        if not kind:
            try:
                return ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                return value
        if kind not in _SUPPORTED_TYPES:
            raise TypeError(kind)
        converters: dict[str, Callable[[Any], Any]] = {
            "integer": int,
            "float": float,
            "string": str,
            "boolean": lambda v: bool_from_string(v, strict=True),
            "datetime": parse_query_timestamp,
        }
        return converters[kind](value)
    except ValueError:
        raise client_error(
            f"Unable to convert the value {value} to the expected data type {kind}."
        ) from None
    except TypeError:
        raise client_error(
            f"The data type {kind} is not supported. "
            f"The supported data type list is: {_SUPPORTED_TYPES}"
        ) from None


@dataclasses.dataclass
class SampleFilter:
    """``storage.SampleFilter``: what a simple query asks of the storage driver."""

    user: Any = None
    project: Any = None
    start_timestamp: int | None = None
    start_timestamp_op: str | None = None
    end_timestamp: int | None = None
    end_timestamp_op: str | None = None
    resource: Any = None
    meter: Any = None
    source: Any = None
    message_id: Any = None
    metaquery: dict[str, Any] = dataclasses.field(default_factory=dict)
    unique: Any = None


def _validate_timestamp_fields(
    query: Sequence[QueryItem], field: str, ops: Sequence[str], allow: bool
) -> bool:
    # Only the first condition on the field is checked, as in the real server (spec 2.2).
    for item in query:
        if item.field == field:
            if not allow:
                raise unknown_argument(field, "not valid for this resource")
            if item.op not in ops:
                raise invalid_input("op", item.op, f"unimplemented operator for {item.field}")
            return True
    return False


def query_to_filter(
    query: list[QueryItem],
    valid_keys: Sequence[str],
    auth_project: str | None,
    allow_timestamps: bool = True,
) -> SampleFilter:
    """Validate a simple query and turn it into a SampleFilter (``v2/utils.query_to_kwargs``)."""
    if auth_project:
        for item in query:
            if item.field in ("project", "project_id") and item.value != auth_project:
                raise project_not_authorized(item.value)
    keys = set(valid_keys)
    if allow_timestamps:
        keys |= {"timestamp", "search_offset"}
    has_ts = _validate_timestamp_fields(
        query, "timestamp", ("lt", "le", "gt", "ge"), allow_timestamps
    )
    has_offset = _validate_timestamp_fields(query, "search_offset", ("eq",), allow_timestamps)
    if has_offset and not has_ts:
        raise invalid_input(
            "field", "search_offset", "search_offset cannot be used without timestamp"
        )
    for item in query:
        if item.field in ("timestamp", "search_offset"):
            continue
        key = (
            _TRANSLATION.get(item.field, item.field) if isinstance(item.field, str) else item.field
        )
        if key in keys or _is_metadata(item.field):
            if item.op != "eq":
                raise invalid_input("op", item.op, f"unimplemented operator for {item.field}")
            if _is_metadata(key):
                value_as_type(item)
        else:
            msg = f"unrecognized field in query: {query}, valid keys: {sorted(keys)}"
            raise unknown_argument(str(key), msg)
    if auth_project and not any(i.field in ("project", "project_id") for i in query):
        query = [*query, QueryItem("project_id", "eq", auth_project, "string")]
    return _to_filter(query)


def _to_filter(query: list[QueryItem]) -> SampleFilter:  # noqa: PLR0912 - as query_to_kwargs
    f = SampleFilter()
    stamp: dict[str, Any] = {}
    for item in query:
        if item.field == "timestamp":
            if item.op in ("lt", "le"):
                stamp["end"], stamp["end_op"] = item.value, item.op
            elif item.op in ("gt", "ge"):
                stamp["start"], stamp["start_op"] = item.value, item.op
        elif item.op == "eq":
            if item.field == "search_offset":
                stamp["offset"] = item.value
            elif _is_metadata(item.field):
                f.metaquery[item.field] = value_as_type(item)
            else:
                setattr(f, _TRANSLATION.get(item.field, item.field), item.value)
    if stamp:
        try:
            offset_us = int(stamp.get("offset", 0)) * 60_000_000
        except ValueError as exc:
            raise server_error(str(exc)) from None
        for bound, sign in (("start", -1), ("end", 1)):
            if bound in stamp:
                try:
                    us = query_timestamp_us(stamp[bound])
                except ValueError:
                    raise invalid_input(
                        "timestamp", stamp[bound], "invalid timestamp format"
                    ) from None
                setattr(f, f"{bound}_timestamp", us + sign * offset_us)
                setattr(f, f"{bound}_timestamp_op", stamp[f"{bound}_op"])
    return f


@dataclasses.dataclass
class Sql:
    """A WHERE clause under construction."""

    clauses: list[str] = dataclasses.field(default_factory=list)
    params: list[Any] = dataclasses.field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    @property
    def where(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "1 = 1"


_META_VTYPES: dict[type, int] = {
    str: VTYPE_TEXT,
    int: VTYPE_INT,
    float: VTYPE_FLOAT,
    bool: VTYPE_BOOL,
}


def _meta_key(field: str) -> str:
    return field.split(".", 1)[1]


def meter_pks_sql(pks: Sequence[int]) -> str:
    """A condition on ``s.meter_pk`` (pks are ints from our own table: safe to inline)."""
    if not pks:
        return "0"
    if len(pks) == 1:
        return f"s.meter_pk = {int(pks[0])}"
    return f"s.meter_pk IN ({', '.join(str(int(p)) for p in pks)})"


def _add_metaquery(sql: Sql, key: str, value: Any) -> None:
    """One ``metadata.<key> = value`` of a simple query, as the SQL driver joins it."""
    if value is None:
        # The SQL driver outer-joins the text side table and compares with NULL, so None
        # matches every sample without a text value under the key (a missing key too).
        sql.add(
            "NOT EXISTS (SELECT 1 FROM meta x WHERE x.res_pk = s.res_pk AND x.key = ?"
            " AND x.vtype = ? AND x.value IS NOT NULL)",
            _meta_key(key),
            VTYPE_TEXT,
        )
        return
    vtype = _META_VTYPES.get(type(value))
    if vtype is None:
        raise not_implemented(f"Query on {key} is of {type(value)} type and is not supported")
    sql.add(
        "EXISTS (SELECT 1 FROM meta x WHERE x.res_pk = s.res_pk AND x.key = ?"
        " AND x.vtype = ? AND x.value = ?)",
        _meta_key(key),
        vtype,
        value,
    )


def filter_to_sql(
    f: SampleFilter, meter_pks: Callable[[Callable[[str, str, str], bool]], list[int]]
) -> Sql:
    """SQL for a SampleFilter (``make_query_from_filter``); empty values are ignored."""
    sql = Sql()
    if f.meter:
        name = f.meter
        sql.add(meter_pks_sql(meter_pks(lambda n, _t, _u: n == name)))
    if f.source:
        sql.add("r.source = ?", f.source)
    if f.start_timestamp is not None:
        sql.add("s.ts > ?" if f.start_timestamp_op == "gt" else "s.ts >= ?", f.start_timestamp)
    if f.end_timestamp is not None:
        sql.add("s.ts <= ?" if f.end_timestamp_op == "le" else "s.ts < ?", f.end_timestamp)
    for attr, column in (("user", "r.user_id"), ("project", "r.project_id")):
        value = getattr(f, attr)
        if value:
            if value == "None":  # the literal None matches NULL (spec 2.3)
                sql.add(f"{column} IS NULL")
            else:
                sql.add(f"{column} = ?", value)
    if f.resource:
        sql.add("r.resource_id = ?", f.resource)
    if f.message_id:
        sql.add("s.message_id = ?", f.message_id)
    for key, value in f.metaquery.items():
        _add_metaquery(sql, key, value)
    return sql


# -- complex query (spec 1.4) -----------------------------------------------------------------

SAMPLE_MODEL_FIELDS = (
    "source",
    "counter_name",
    "counter_type",
    "counter_unit",
    "counter_volume",
    "user_id",
    "project_id",
    "resource_id",
    "timestamp",
    "resource_metadata",
    "message_id",
    "message_signature",
    "recorded_at",
)
_NAME_MAPPING = {
    "user": "user_id",
    "project": "project_id",
    "resource": "resource_id",
    "meter": "counter_name",
    "type": "counter_type",
    "unit": "counter_unit",
    "volume": "counter_volume",
}
_SIMPLE_OPS = ["=", "!=", "<", ">", "<=", "=<", ">=", "=>", "=~"]


def _list_to_regexp(items: Sequence[str], prefix: str = "") -> str:
    return prefix + "|".join(f"^{item}$" for item in items)


def _one_key(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "patternProperties": schema,
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
    }


def _build_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    valid_fields = _list_to_regexp([*SAMPLE_MODEL_FIELDS, *_NAME_MAPPING])
    filter_fields = valid_fields + r"|^metadata\.[\S]+$"
    value = {
        "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}],
        "minProperties": 1,
        "maxProperties": 1,
    }
    value_in = {
        "type": "array",
        "items": {"oneOf": [{"type": "string"}, {"type": "number"}]},
        "minItems": 1,
    }
    definitions = {
        "leaf_simple_ops": _one_key(
            {_list_to_regexp(_SIMPLE_OPS, "(?i)"): _one_key({filter_fields: value})}
        ),
        "leaf_in": _one_key({"(?i)^in$": _one_key({filter_fields: value_in})}),
        "and_or": _one_key(
            {"(?i)^and$|^or$": {"type": "array", "items": {"$ref": "#"}, "minItems": 2}}
        ),
        "not": _one_key({"(?i)^not$": {"$ref": "#"}}),
    }
    filter_schema = {
        "oneOf": [{"$ref": f"#/definitions/{name}"} for name in definitions],
        "minProperties": 1,
        "maxProperties": 1,
        "definitions": definitions,
    }
    orderby_schema = {
        "type": "array",
        "items": _one_key({valid_fields: {"type": "string", "pattern": "(?i)^asc$|^desc$"}}),
    }
    return filter_schema, orderby_schema


_FILTER_SCHEMA, _ORDERBY_SCHEMA = _build_schemas()
_FILTER_VALIDATOR = jsonschema.Draft4Validator(_FILTER_SCHEMA)
_ORDERBY_VALIDATOR = jsonschema.Draft4Validator(_ORDERBY_SCHEMA)


def _first_error(validator: Any, instance: Any) -> str | None:
    # jsonschema 2.x (Pike) raised the first error of iter_errors, not the "best match".
    for error in validator.iter_errors(instance):
        return str(error)
    return None


def _leaves(node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    ((op, body),) = node.items()
    low = op.lower()
    if low in ("and", "or"):
        for child in body:
            yield from _leaves(child)
    elif low == "not":
        yield from _leaves(body)
    else:
        yield op, body


@dataclasses.dataclass
class ComplexQuery:
    """A validated POST /v2/query/samples body."""

    filter: Any
    orderby: list[tuple[str, str]] | None
    limit: int


def _parse_expression(raw: Any, validator: Any, label: str) -> Any:
    """A JSON string checked against its schema; the real 400 text when it is not valid."""
    try:
        parsed = json.loads(raw)
        error = _first_error(validator, parsed)
    except ValueError as exc:
        error = str(exc)
    if error is not None:
        raise client_error(f"{label} expression not valid: {error}")
    return parsed


def validate_complex(
    body: Mapping[str, Any], auth_project: str | None, default_limit: int
) -> ComplexQuery:
    """``ValidatedComplexQuery.validate`` with the real order of checks and messages."""
    filter_expr: Any = None
    raw_filter = body.get("filter", Unset)
    if raw_filter is not Unset and raw_filter is not None:
        filter_expr = _parse_expression(raw_filter, _FILTER_VALIDATOR, "Filter")
        for _op, leaf in _leaves(filter_expr):
            ((field, value),) = leaf.items()
            if field.lower() in ("timestamp", "state_timestamp"):
                try:
                    parsed = to_us(parse_query_timestamp(value))
                except ValueError:
                    raise client_error(f"Failed to parse the timestamp value {value}") from None
                leaf[field] = _Micro(parsed)
        filter_expr = _normalise(filter_expr)
    if auth_project:
        own = {"=": {"project_id": auth_project}}
        filter_expr = own if filter_expr is None else {"and": [own, filter_expr]}
        for _op, leaf in _leaves(filter_expr):
            ((field, value),) = leaf.items()
            if field == "project_id" and value != auth_project:
                raise project_not_authorized(value)
    orderby: list[tuple[str, str]] | None = None
    raw_orderby = body.get("orderby", Unset)
    if raw_orderby is not Unset and raw_orderby is not None:
        parsed_orderby = _parse_expression(raw_orderby, _ORDERBY_VALIDATOR, "Order-by")
        orderby = []
        for item in parsed_orderby:
            ((field, direction),) = item.items()
            orderby.append((_NAME_MAPPING.get(field, field), direction.lower()))
    limit = body.get("limit", Unset)
    if limit is Unset or limit is None:
        limit = default_limit
    if not limit or limit <= 0:
        raise client_error("Limit must be positive")
    return ComplexQuery(filter_expr, orderby, int(limit))


class _Micro(int):
    """A timestamp already converted to epoch microseconds (so it is not parsed twice)."""


def _normalise(node: Any) -> Any:
    ((op, body),) = node.items()
    low = op.lower()
    if low in ("and", "or"):
        return {low: [_normalise(child) for child in body]}
    if low == "not":
        return {low: _normalise(body)}
    ((field, value),) = body.items()
    if field.startswith("metadata."):
        field = "resource_metadata." + field[len("metadata.") :]
    return {low: {_NAME_MAPPING.get(field, field): value}}


_SQL_OPS = {
    "=": "=",
    "!=": "!=",
    "<": "<",
    ">": ">",
    "<=": "<=",
    "=<": "<=",
    ">=": ">=",
    "=>": ">=",
}
_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}
_COLUMNS = {
    "counter_volume": "s.volume",
    "user_id": "r.user_id",
    "project_id": "r.project_id",
    "resource_id": "r.resource_id",
    "timestamp": "s.ts",
    "recorded_at": "s.recorded",
    "message_id": "s.message_id",
    "message_signature": "s.signature",
    "resource_metadata": "CAST(r.metadata AS TEXT)",
}
_METER_ATTRS = {"counter_name": 0, "counter_type": 1, "counter_unit": 2}
ORDER_COLUMNS = {
    **_COLUMNS,
    "counter_name": "m.name",
    "counter_type": "m.type",
    "counter_unit": "m.unit",
}


def _no_source() -> ApiError:
    # FullSample has source_id, not source: the SQL driver fails with AttributeError (spec 1.4).
    return server_error("type object 'FullSample' has no attribute 'source'")


class ComplexTranslator:
    """Turns a normalised complex filter into SQL over sample/meter/resource/meta."""

    def __init__(self, meter_rows: Callable[[], list[tuple[int, str, str, str]]]) -> None:
        self._meter_rows = meter_rows
        self.params: list[Any] = []

    def translate(self, node: Any) -> str:  # noqa: PLR0911 - one return per node kind
        ((op, body),) = node.items()
        if op in ("and", "or"):
            return "(" + f" {op.upper()} ".join(self.translate(c) for c in body) + ")"
        if op == "not":
            return f"(NOT {self.translate(body)})"
        ((field, value),) = body.items()
        if field == "source":
            raise _no_source()
        if field.startswith("resource_metadata."):
            return self._metadata(op, field, value)
        if field in _METER_ATTRS:
            return self._meter(op, _METER_ATTRS[field], value)
        column = _COLUMNS[field]
        if field == "recorded_at":
            value = self._recorded(value)
        if op == "in":
            self.params.extend(value)
            return f"{column} IN ({', '.join('?' for _ in value)})"
        self.params.append(value)
        if op == "=~":
            return f"{column} REGEXP ?"
        return f"{column} {_SQL_OPS[op]} ?"

    @staticmethod
    def _recorded(value: Any) -> Any:
        # Not converted by the API (spec 11.2): behave like PostgreSQL's implicit cast.
        if isinstance(value, list):
            return [ComplexTranslator._recorded(v) for v in value]
        try:
            return query_timestamp_us(value)
        except ValueError:
            raise server_error(f'invalid input syntax for type timestamp: "{value}"') from None

    def _meter(self, op: str, index: int, value: Any) -> str:
        # Meter attributes are NOT NULL and the meter table is tiny: resolve in Python so the
        # (meter_pk, ts, message_id) index drives the scan.
        def match(attr: Any) -> bool:
            if op == "in":
                return attr in value
            if op == "=~":
                return re.search(str(value), str(attr)) is not None
            if isinstance(value, str):
                return _PY_OPS[_SQL_OPS[op]](attr, value)
            return False

        pks = [row[0] for row in self._meter_rows() if match(row[1 + index])]
        return meter_pks_sql(pks)

    def _metadata(self, op: str, field: str, value: Any) -> str:
        if op == "in":
            raise not_implemented("Metadata query with in operator is not implemented")
        vtype = _META_VTYPES.get(type(value), VTYPE_TEXT)
        # A scalar subquery is NULL when the key is missing, so NOT(...) still excludes the
        # sample, like the SQL driver's outer join (spec 1.4: SQL returns nothing).
        sub = "(SELECT x.value FROM meta x WHERE x.res_pk = s.res_pk AND x.key = ? AND x.vtype = ?)"
        self.params.extend([_meta_key(field), vtype, value])
        if op == "=~":
            return f"{sub} REGEXP ?"
        return f"{sub} {_SQL_OPS[op]} ?"


def implied_ts_bounds(node: Any) -> tuple[int | None, int | None]:  # noqa: PLR0911
    """Lowest/highest timestamp any matching sample can have, from the filter's structure.

    Adding these redundant bounds lets SQLite seek the index instead of scanning from the start
    of a meter when the filter is a keyset condition like ``ts > T OR (ts = T AND id > X)``.
    """
    ((op, body),) = node.items()
    if op == "and":
        los, his = zip(*(implied_ts_bounds(c) for c in body), strict=True)
        lo_known = [v for v in los if v is not None]
        hi_known = [v for v in his if v is not None]
        return (max(lo_known) if lo_known else None, min(hi_known) if hi_known else None)
    if op == "or":
        bounds = [implied_ts_bounds(c) for c in body]
        los2 = [b[0] for b in bounds]
        his2 = [b[1] for b in bounds]
        lo = None if any(v is None for v in los2) else min(v for v in los2 if v is not None)
        hi = None if any(v is None for v in his2) else max(v for v in his2 if v is not None)
        return lo, hi
    if op == "not":
        return None, None
    ((field, value),) = body.items()
    if field != "timestamp":
        return None, None
    if op == "in":
        return min(value), max(value)
    if op == "=":
        return value, value
    if op in (">", ">="):
        return value, None
    if op in ("<", "<=", "=<"):
        return None, value
    if op == "=>":
        return value, None
    return None, None
