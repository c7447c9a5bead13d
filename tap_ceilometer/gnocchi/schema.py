"""The schemas of the Gnocchi streams: measures, resources, metrics, archive policies."""

from __future__ import annotations

from typing import Any

from singer_sdk import typing as th

UUID_LENGTH = 36
# The longest method name is a rate of a percentile ("rate:99pct"); keys stay short for MySQL.
AGGREGATION_MAX_LENGTH = 32
NAME_MAX_LENGTH = 255  # Gnocchi's names, project and user ids, and string attributes by default
ORIGINAL_ID_MAX_LENGTH = 289  # Gnocchi refuses longer resource ids (gnocchi-api.md 2.2)

MEASURE_KEYS = ("metric_id", "aggregation", "granularity", "timestamp")
MEASURE_SCHEMA: dict[str, Any] = th.PropertiesList(
    th.Property(
        "metric_id",
        th.StringType(max_length=UUID_LENGTH),
        required=True,
        description="Gnocchi's id of the metric (one per resource and metric name)",
    ),
    th.Property("metric_name", th.StringType, description="The metric (Ceilometer meter) name"),
    th.Property("resource_id", th.StringType, description="Gnocchi's id of the resource"),
    th.Property("resource_type", th.StringType, description="instance, volume, ..."),
    th.Property("project_id", th.StringType, description="Project of the resource"),
    th.Property("user_id", th.StringType, description="User of the resource"),
    th.Property("unit", th.StringType, description="Unit of the values; may be null"),
    th.Property(
        "aggregation",
        th.StringType(max_length=AGGREGATION_MAX_LENGTH),
        required=True,
        description="How the period's measures were aggregated: mean, rate:mean, max, ...",
    ),
    th.Property(
        "granularity",
        th.NumberType,
        required=True,
        description="Length of the period in seconds",
    ),
    th.Property(
        "timestamp",
        th.DateTimeType,
        required=True,
        description="Start of the period, UTC with an explicit offset",
    ),
    th.Property(
        "value",
        th.NumberType,
        description="The aggregate (a double); null where Gnocchi sent a non-finite value",
    ),
    th.Property(
        "final",
        th.BooleanType,
        description=(
            "False while Gnocchi may still recompute this period (the open period, late"
            " measures within back_window, a processing backlog); a later run re-sends it"
        ),
    ),
).to_dict()

GENERIC_RESOURCE_PROPERTIES = th.PropertiesList(
    th.Property("id", th.StringType(max_length=UUID_LENGTH), required=True),
    th.Property(
        "revision_start",
        th.DateTimeType,
        required=True,
        description="When this revision began (with id, the primary key)",
    ),
    th.Property(
        "revision_end",
        th.DateTimeType,
        description="When the next revision replaced it; null for the current one",
    ),
    th.Property(
        "type",
        th.StringType(max_length=NAME_MAX_LENGTH),
        description="Resource type: instance, volume, ...",
    ),
    th.Property(
        "original_resource_id",
        th.StringType(max_length=ORIGINAL_ID_MAX_LENGTH),
        description="The id Ceilometer sent (Nova's, Cinder's, or a composite for disks and NICs)",
    ),
    th.Property("project_id", th.StringType(max_length=NAME_MAX_LENGTH)),
    th.Property("user_id", th.StringType(max_length=NAME_MAX_LENGTH)),
    th.Property("creator", th.StringType(max_length=NAME_MAX_LENGTH)),
    th.Property(
        "started_at",
        th.DateTimeType,
        description="When Gnocchi first saw the resource (not the launch time, T11)",
    ),
    th.Property(
        "ended_at",
        th.DateTimeType,
        description="Set on a delete event; Gnocchi may reset it to null (T9)",
    ),
    th.Property(
        "metrics",
        th.ObjectType(additional_properties=th.StringType),
        description="Metric name to metric id",
    ),
)

METRIC_SCHEMA: dict[str, Any] = th.PropertiesList(
    th.Property("id", th.StringType(max_length=UUID_LENGTH), required=True),
    th.Property("name", th.StringType),
    th.Property("unit", th.StringType),
    th.Property("resource_id", th.StringType),
    th.Property("archive_policy_name", th.StringType),
    th.Property("creator", th.StringType),
).to_dict()

# One row per policy and granularity: relational for BI, and no nested numbers, which
# target-mysql cannot write inside a JSON column.
ARCHIVE_POLICY_SCHEMA: dict[str, Any] = th.PropertiesList(
    th.Property("name", th.StringType(max_length=NAME_MAX_LENGTH), required=True),
    th.Property("granularity", th.NumberType, required=True, description="Seconds"),
    th.Property("points", th.IntegerType, description="Periods kept at this granularity"),
    th.Property("timespan", th.NumberType, description="Seconds kept; null: forever"),
    th.Property(
        "back_window",
        th.IntegerType,
        description="Coarsest periods back in which late measures are still accepted",
    ),
    th.Property("aggregation_methods", th.ArrayType(th.StringType)),
).to_dict()

# Gnocchi's resource attribute types (entry points of gnocchi.indexer...resource_type_attribute)
ATTRIBUTE_TYPES = {
    "string": th.StringType,
    "uuid": th.StringType,
    "number": th.NumberType,
    "bool": th.BooleanType,
    "datetime": th.DateTimeType,
}


def resource_schema(resource_types: list[dict[str, Any]]) -> dict[str, Any]:
    """The generic columns, and every attribute of every resource type as a nullable column
    (flavor_name, display_name, host, ...); one name with two types becomes a string."""
    generic = GENERIC_RESOURCE_PROPERTIES.to_dict()
    columns: dict[str, str] = {}
    lengths: dict[str, int] = {}
    for resource_type in resource_types:
        for name, spec in (resource_type.get("attributes") or {}).items():
            kind = str((spec or {}).get("type") or "string")
            if name in generic["properties"]:
                continue
            columns[name] = kind if columns.get(name, kind) == kind else "string"
            # A bounded length keeps a MySQL row of many attributes under its 64 KiB limit.
            length = (spec or {}).get("max_length")
            lengths[name] = max(lengths.get(name, 0), int(length or NAME_MAX_LENGTH))
    properties = dict(generic["properties"])
    for name in sorted(columns):
        kind = columns[name]
        wrapper: Any = ATTRIBUTE_TYPES.get(kind, th.StringType)
        if wrapper is th.StringType:
            wrapper = th.StringType(max_length=lengths[name])
        properties[name] = th.Property(name, wrapper).to_dict()[name]
    return {**generic, "properties": properties}
