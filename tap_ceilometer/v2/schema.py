"""The sample schema every meter stream shares: the original request's columns, and more."""

from __future__ import annotations

from typing import Any

from singer_sdk import typing as th

# Ceilometer's own column is String(128); a bounded key keeps MySQL's 3072-byte index limit happy.
MESSAGE_ID_MAX_LENGTH = 128

SAMPLE_SCHEMA: dict[str, Any] = th.PropertiesList(
    th.Property("counter_name", th.StringType, required=True, description="Meter name, as is"),
    th.Property(
        "counter_type",
        th.StringType,
        description="gauge, delta or cumulative",
    ),
    th.Property("counter_unit", th.StringType, description="Unit of the volume; may be empty"),
    th.Property(
        "counter_volume",
        th.NumberType,
        description="Measured value (a double in Ceilometer's storage)",
    ),
    th.Property(
        "message_id",
        th.StringType(max_length=MESSAGE_ID_MAX_LENGTH),
        required=True,
        description="Unique id of the sample (primary key)",
    ),
    th.Property("project_id", th.StringType),
    th.Property("resource_id", th.StringType),
    th.Property("source", th.StringType),
    th.Property(
        "timestamp",
        th.DateTimeType,
        required=True,
        description="When the sample was measured, UTC with an explicit offset (replication key)",
    ),
    th.Property("user_id", th.StringType),
    th.Property(
        "recorded_at",
        th.DateTimeType,
        description="When Ceilometer stored the sample, UTC; null for very old rows",
    ),
    th.Property(
        "resource_metadata",
        th.ObjectType(additional_properties=th.StringType),
        description="Resource metadata as Ceilometer returns it: flattened keys, string values",
    ),
).to_dict()
