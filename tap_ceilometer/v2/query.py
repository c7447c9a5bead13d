"""Selections (the operator's filter queries) and the Ceilometer v2 query forms they become."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tap_ceilometer.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

# The simple-query fields Ceilometer accepts for samples besides time (spec 2.3), and the
# model field each one means in a complex query (spec 1.4).
_SAMPLE_FIELDS = {
    "user": "user_id",
    "user_id": "user_id",
    "project": "project_id",
    "project_id": "project_id",
    "resource": "resource_id",
    "resource_id": "resource_id",
    "source": "source",
    "message_id": "message_id",
}
_METADATA_PREFIXES = ("metadata.", "resource_metadata.")
_TAP_CONTROLLED = {
    "timestamp": "the tap sets time bounds itself: use start_date, end_date and lookback_window",
    "search_offset": "it only widens timestamp bounds, which the tap sets itself",
    "meter": "list the meters of a selection in its 'meters' key",
    "counter_name": "list the meters of a selection in its 'meters' key",
}
_TYPES = ("", "integer", "float", "string", "boolean", "datetime")
_EQ_OPS = ("", "eq")


@dataclass(frozen=True)
class Condition:
    """One `field op value` item of a simple query, already validated."""

    field: str
    value: str
    type: str = ""

    @property
    def is_metadata(self) -> bool:
        return self.field.startswith(_METADATA_PREFIXES)

    def as_simple_params(self) -> list[tuple[str, str]]:
        return [
            ("q.field", self.field),
            ("q.op", "eq"),
            ("q.type", self.type),
            ("q.value", self.value),
        ]

    def as_complex_filter(self) -> dict[str, Any]:
        if self.is_metadata:
            key = "metadata." + self.field.split(".", 1)[1]
            return {"=": {key: _typed_metadata_value(self.value, self.type)}}
        return {"=": {_SAMPLE_FIELDS[self.field]: self.value}}


@dataclass(frozen=True)
class Selection:
    """A filter query and the meters it applies to (None: every exported meter)."""

    key: str
    conditions: tuple[Condition, ...]
    meters: tuple[str, ...] | None

    @property
    def complex_query_safe(self) -> bool:
        # SQL storage has no `source` column on its sample view: a complex filter on it is a 500.
        return all(c.field != "source" for c in self.conditions)


_EXPLICIT_TYPES: dict[str, Any] = {
    "string": str,
    "datetime": str,
    "integer": int,
    "float": float,
    "boolean": lambda value: value.lower() == "true",
}


def _typed_metadata_value(value: str, type_: str) -> Any:
    """Mirror the simple query's typing of metadata values (spec 2.3) for a complex filter."""
    if type_:
        return _EXPLICIT_TYPES[type_](value)
    # Untyped: Ceilometer guesses with literal_eval, falling back to the raw string.
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    if value in ("True", "False"):
        return value == "True"
    return value


def _check_typed(value: str, type_: str, where: str) -> None:
    checks = {"integer": int, "float": float}
    if type_ in checks:
        try:
            checks[type_](value)
        except ValueError:
            msg = f"{where}: cannot convert {value!r} to {type_}."
            raise ConfigError(msg) from None
    if type_ == "boolean" and value.lower() not in ("true", "false"):
        msg = f"{where}: a boolean value must be True or False, not {value!r}."
        raise ConfigError(msg)
    if type_ == "datetime":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            msg = f"{where}: {value!r} is not an ISO 8601 date-time."
            raise ConfigError(msg) from None


def _parse_condition(item: Any, where: str) -> Condition:
    if not isinstance(item, dict):
        msg = f"{where} must be an object with field, op and value."
        raise ConfigError(msg)
    unknown = sorted(set(item) - {"field", "op", "value", "type"})
    if unknown:
        msg = f"{where} has unknown keys {unknown}; a condition has field, op, value and type."
        raise ConfigError(msg)
    field = item.get("field")
    if not isinstance(field, str) or not field:
        msg = f"{where} needs a 'field'."
        raise ConfigError(msg)
    if field in _TAP_CONTROLLED:
        msg = f"{where}: field {field!r} is not allowed in a selection: {_TAP_CONTROLLED[field]}."
        raise ConfigError(msg)
    is_metadata = field.startswith(_METADATA_PREFIXES) and len(field.split(".", 1)[1]) > 0
    if field not in _SAMPLE_FIELDS and not is_metadata:
        valid = ", ".join([*sorted(_SAMPLE_FIELDS), "metadata.<key>", "resource_metadata.<key>"])
        msg = f"{where}: Ceilometer does not filter samples on {field!r}. Valid fields: {valid}."
        raise ConfigError(msg)
    op = item.get("op", "") or ""
    if op not in _EQ_OPS:
        msg = (
            f"{where}: operator {op!r} on {field!r} is not implemented by Ceilometer's "
            "query API; only eq is (one selection per value covers several values)."
        )
        raise ConfigError(msg)
    value = item.get("value")
    if isinstance(value, bool | int | float):
        value = str(value)
    if not isinstance(value, str):
        msg = f"{where} needs a 'value' (a string)."
        raise ConfigError(msg)
    type_ = item.get("type", "") or ""
    if type_ not in _TYPES:
        msg = f"{where}: type {type_!r} is not one of {', '.join(t for t in _TYPES if t)}."
        raise ConfigError(msg)
    if type_ and not is_metadata:
        msg = f"{where}: 'type' applies to metadata fields only."
        raise ConfigError(msg)
    _check_typed(value, type_, where)
    return Condition(field=field, value=value, type=type_)


def _selection_key(raw: Mapping[str, Any], conditions: Sequence[Condition]) -> str:
    if raw.get("name"):
        return str(raw["name"])
    canonical = json.dumps([[c.field, c.value, c.type] for c in conditions], sort_keys=True)
    return "q-" + hashlib.sha1(canonical.encode(), usedforsecurity=False).hexdigest()[:12]


def parse_selections(raw_selections: Iterable[Any]) -> list[Selection]:
    """Validate the `selections` setting, naming the first problem precisely."""
    selections: list[Selection] = []
    for index, raw in enumerate(raw_selections):
        where = f"selections[{index}]"
        if not isinstance(raw, dict):
            msg = f"{where} must be an object with 'query' and optionally 'meters' and 'name'."
            raise ConfigError(msg)
        unknown = sorted(set(raw) - {"name", "query", "meters"})
        if unknown:
            msg = f"{where} has unknown keys {unknown}; expected query, meters and name."
            raise ConfigError(msg)
        query = raw.get("query", [])
        if not isinstance(query, list):
            msg = f"{where}.query must be a list of conditions."
            raise ConfigError(msg)
        conditions = tuple(
            _parse_condition(item, f"{where}.query[{i}]") for i, item in enumerate(query)
        )
        meters = raw.get("meters")
        if meters is not None and (
            not isinstance(meters, list)
            or not meters
            or not all(isinstance(m, str) and m for m in meters)
        ):
            msg = f"{where}.meters must be a non-empty list of meter names."
            raise ConfigError(msg)
        selections.append(
            Selection(
                key=_selection_key(raw, conditions),
                conditions=conditions,
                meters=tuple(meters) if meters is not None else None,
            )
        )
    keys = [s.key for s in selections]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        msg = f"Two selections share the name or query {duplicates}; give each a distinct name."
        raise ConfigError(msg)
    return selections
