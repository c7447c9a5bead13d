"""GET /v2/meters/<name>/statistics, computed in SQL (spec 1.7)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ceilometer_simulator.errors import client_error, not_implemented, unknown_argument
from ceilometer_simulator.store import SAMPLE_FROM, Store
from ceilometer_simulator.timeutil import iso_from_us

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ceilometer_simulator.query import SampleFilter, Sql

GROUPBY_FIELDS = (
    "user_id",
    "resource_id",
    "project_id",
    "source",
    "resource_metadata.instance_type",
)
_GROUP_COLUMNS = {
    "user_id": "r.user_id",
    "resource_id": "r.resource_id",
    "project_id": "r.project_id",
    "resource_metadata.instance_type": (
        "(SELECT x.value FROM meta x WHERE x.res_pk = s.res_pk AND x.key = 'instance_type')"
    ),
}
AGGREGATES = ("max", "min", "sum", "avg", "count", "stddev", "cardinality")
_CARDINALITY = {
    "resource_id": "r.resource_id",
    "user_id": "r.user_id",
    "project_id": "r.project_id",
}
_US = 1_000_000


def _aggregate_sql(func: str, param: str | None) -> str:
    if func == "cardinality":
        if param not in _CARDINALITY:
            raise client_error(
                f"Invalid aggregation function parameter {param} for function {func}"
            )
        return f"count(DISTINCT {_CARDINALITY[param]})"
    if func == "stddev":
        # Population standard deviation (MySQL STDDEV), built from moments for SQLite.
        return "avg(s.volume * s.volume) - avg(s.volume) * avg(s.volume)"
    return f"{func}(s.volume)"


def statistics(  # noqa: PLR0912, PLR0915 - one pass from rows to entries
    store: Store, where: Sql, f: SampleFilter, args: Mapping[str, Any]
) -> list[Any]:
    """The statistics list for one meter and filter."""
    period = args.get("period")
    if period is not None and period < 0:
        raise client_error("Period must be positive.")
    groupby: list[str] = args.get("groupby") or []
    invalid = set(groupby) - set(GROUPBY_FIELDS)
    if invalid:
        raise unknown_argument(str(invalid), "Invalid groupby fields")
    groupby = sorted(set(groupby))
    if "source" in groupby:
        raise not_implemented("Unable to group by these fields")
    aggregates: list[tuple[str, str | None]] = args.get("aggregate") or []
    for func, _param in aggregates:
        if func not in AGGREGATES:
            raise client_error(f"Invalid aggregation function: {func}")

    bounds = store.fetch(
        f"SELECT min(s.ts), max(s.ts) FROM {SAMPLE_FROM} WHERE {where.where}",  # noqa: S608
        where.params,
    )
    first, _last = bounds[0]
    if first is None:
        return []
    origin = f.start_timestamp if f.start_timestamp is not None else first
    select = ["min(s.ts)", "max(s.ts)", "max(m.unit)"]
    group_terms: list[str] = [_GROUP_COLUMNS[g] for g in groupby]
    if period:
        group_terms.insert(0, f"((s.ts - {int(origin)}) / {int(period) * _US})")
    if aggregates:
        select += [_aggregate_sql(func, param) for func, param in aggregates]
    else:
        select += ["avg(s.volume)", "sum(s.volume)", "min(s.volume)", "max(s.volume)", "count(*)"]
    select += group_terms
    sql = f"SELECT {', '.join(select)} FROM {SAMPLE_FROM} WHERE {where.where}"  # noqa: S608
    if group_terms:
        sql += f" GROUP BY {', '.join(group_terms)} ORDER BY {', '.join(group_terms)}"
    out = []
    for row in store.fetch(sql, where.params):
        dmin, dmax, unit = row[0], row[1], row[2]
        values = list(row[3 : 3 + (len(aggregates) or 5)])
        groups = row[3 + (len(aggregates) or 5) :]
        if period:
            index = groups[0]
            groups = groups[1:]
            p_start = origin + index * period * _US
            p_end = p_start + period * _US
        else:
            p_start, p_end = dmin, dmax
        if f.start_timestamp is not None and dmin < f.start_timestamp:
            dmin = f.start_timestamp
        if f.end_timestamp is not None and dmax > f.end_timestamp:
            dmax = f.end_timestamp
        entry: dict[str, Any] = {
            "unit": unit,
            "duration_start": iso_from_us(dmin),
            "duration_end": iso_from_us(dmax),
            "duration": (dmax - dmin) / _US,
            "period": int(period or 0),
            "period_start": iso_from_us(p_start),
            "period_end": iso_from_us(p_end),
            "groupby": dict(zip(groupby, groups, strict=True)) if groupby else None,
        }
        if aggregates:
            agg: dict[str, Any] = {}
            for (func, param), value in zip(aggregates, values, strict=True):
                result = value
                if func == "stddev" and value is not None:
                    result = math.sqrt(max(value, 0.0))
                agg[f"{func}/{param}" if param else func] = result
            entry.update(dict.fromkeys(("avg", "sum", "min", "max", "count")))
            entry["aggregate"] = agg
        else:
            avg, total, vmin, vmax, count = values
            entry.update({"avg": avg, "sum": total, "min": vmin, "max": vmax, "count": count})
            entry["aggregate"] = {
                "avg": avg,
                "sum": total,
                "min": vmin,
                "max": vmax,
                "count": count,
            }
        out.append(entry)
    return out
