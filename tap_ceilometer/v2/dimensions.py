"""The API v2 dimension streams: `resources` (with names and flavors) and `meters`.

Both are read whole each run (FULL_TABLE) and upserted by their key. `/v2/resources` could
be asked for `timestamp >= bookmark`, but Ceilometer then computes a resource's
first_sample_timestamp over the samples that filter keeps (spec 1.5): an incremental row
would overwrite the true first sample time with the bookmark's. One whole list per run is
one request (two where a full answer must be asked again with a larger limit).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tap_ceilometer.streams import DimensionStream
from tap_ceilometer.timestamps import utc_text
from tap_ceilometer.v2.schema import METER_SCHEMA, RESOURCE_SCHEMA

if TYPE_CHECKING:
    import logging
    from collections.abc import Iterable, Iterator, Mapping

    from singer_sdk import Tap

    from tap_ceilometer.v2.client import CeilometerClient

V2_DIMENSION_STREAMS = ("resources", "meters")
# Nova's notifications carry the flavor as `flavor.name`; pollsters before Liberty as
# `instance_type` (Ceilometer flattens nested metadata with dots).
FLAVOR_KEYS = ("flavor.name", "instance_type")


@dataclass
class MeterPairs:
    """GET /v2/meters without `unique`: one entry per meter and resource, read once per
    sweep for both streams, and only when one of them syncs."""

    client: CeilometerClient

    @cached_property
    def entries(self) -> list[dict[str, Any]]:
        return self.client.meter_list()

    def meters_of(self) -> dict[str, list[str]]:
        """resource_id -> the meters it reports."""
        found: dict[str, set[str]] = {}
        for pair in self.entries:
            resource, meter = pair.get("resource_id"), pair.get("name")
            if isinstance(resource, str) and isinstance(meter, str):
                found.setdefault(resource, set()).add(meter)
        return {resource: sorted(meters) for resource, meters in found.items()}


def resource_rows(client: CeilometerClient, pairs: MeterPairs) -> Iterator[dict[str, Any]]:
    """Each resource as a row; an entry without an id is left out, said once."""
    meters_of = pairs.meters_of()
    problems: Counter[str] = Counter()
    entries = client.resources()
    if not entries:
        client.log.info(
            "Ceilometer lists no resources to this user: the resources stream is empty."
        )
    for entry in entries:
        resource_id = entry.get("resource_id")
        if not isinstance(resource_id, str) or not resource_id:
            problems["entries without a resource_id were left out"] += 1
            continue
        metadata = _metadata(entry.get("metadata"), problems)
        yield {
            "resource_id": resource_id,
            "project_id": _text(entry.get("project_id")),
            "user_id": _text(entry.get("user_id")),
            "source": _text(entry.get("source")),
            "first_sample_timestamp": _time(entry.get("first_sample_timestamp"), problems),
            "last_sample_timestamp": _time(entry.get("last_sample_timestamp"), problems),
            "metadata": metadata,
            "display_name": (metadata or {}).get("display_name"),
            "flavor_name": _flavor(metadata),
            "meters": meters_of.get(resource_id, []),
        }
    _report(client.log, "resources", problems)


def meter_rows(pairs: MeterPairs, tables: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """The meter catalogue from the pairs list; `tables` maps exported meters to streams."""
    by_meter: dict[str, list[dict[str, Any]]] = {}
    for pair in pairs.entries:
        name = pair.get("name")
        if isinstance(name, str) and name:
            by_meter.setdefault(name, []).append(pair)
    for name in sorted(by_meter):
        group = by_meter[name]
        projects = sorted({p for p in (e.get("project_id") for e in group) if isinstance(p, str)})
        yield {
            "name": name,
            "type": _most_common(e.get("type") for e in group),
            "unit": _most_common(e.get("unit") for e in group),
            "resource_count": len({e.get("resource_id") for e in group if e.get("resource_id")}),
            "project_count": len(projects),
            "project_ids": projects,
            "stream": tables.get(name),
        }


def v2_dimension_streams(
    tap: Tap, client: CeilometerClient, pairs: MeterPairs, tables: Mapping[str, str]
) -> list[DimensionStream]:
    """resources and meters; `tables` maps each exported meter to its stream's name."""
    return [
        DimensionStream(
            tap,
            name="resources",
            schema=RESOURCE_SCHEMA,
            primary_keys=("resource_id",),
            rows=lambda: resource_rows(client, pairs),
        ),
        DimensionStream(
            tap,
            name="meters",
            schema=METER_SCHEMA,
            primary_keys=("name",),
            rows=lambda: meter_rows(pairs, tables),
        ),
    ]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _metadata(value: Any, problems: Counter[str]) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems["metadata that is not an object was left out"] += 1
        return None
    return {str(key): str(item) for key, item in value.items()}


def _flavor(metadata: Mapping[str, str] | None) -> str | None:
    for key in FLAVOR_KEYS:
        if metadata and metadata.get(key):
            return metadata[key]
    return None


def _time(value: Any, problems: Counter[str]) -> str | None:
    if value is None:
        return None
    try:
        return utc_text(str(value))
    except ValueError:
        problems["times that are not ISO 8601 were left out (null)"] += 1
        return None


def _most_common(values: Iterable[Any]) -> str | None:
    counts = Counter(v for v in values if isinstance(v, str))
    return counts.most_common(1)[0][0] if counts else None


def _report(log: logging.Logger, stream: str, problems: Counter[str]) -> None:
    for problem, count in sorted(problems.items()):
        log.warning("The %s stream: %d %s.", stream, count, problem)
