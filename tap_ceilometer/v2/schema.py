"""The schemas of the API v2 streams: the samples every meter stream shares (the original
request's columns, and more), and the resources and meter catalogue streams."""

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

RESOURCE_SCHEMA: dict[str, Any] = th.PropertiesList(
    th.Property(
        "resource_id",
        th.StringType(max_length=255),
        required=True,
        description="The samples' resource_id (primary key)",
    ),
    th.Property("project_id", th.StringType, description="Project of the latest sample"),
    th.Property("user_id", th.StringType, description="User of the latest sample"),
    th.Property("source", th.StringType, description="Source of the latest sample"),
    th.Property(
        "first_sample_timestamp", th.DateTimeType, description="The resource's first sample, UTC"
    ),
    th.Property(
        "last_sample_timestamp", th.DateTimeType, description="The resource's latest sample, UTC"
    ),
    th.Property(
        "metadata",
        th.ObjectType(additional_properties=th.StringType),
        description="Metadata of the latest sample: flattened keys, string values; may be null",
    ),
    th.Property(
        "display_name", th.StringType, description="metadata display_name (an instance's name)"
    ),
    th.Property(
        "flavor_name",
        th.StringType,
        description="metadata flavor.name, else instance_type (an instance's flavor)",
    ),
    th.Property(
        "meters",
        th.ArrayType(th.StringType),
        description="The meters this resource reports, sorted",
    ),
).to_dict()

METER_SCHEMA: dict[str, Any] = th.PropertiesList(
    th.Property(
        "name", th.StringType(max_length=255), required=True, description="Meter name (key)"
    ),
    th.Property("type", th.StringType, description="gauge, delta or cumulative"),
    th.Property("unit", th.StringType, description="Unit of the volumes"),
    th.Property("resource_count", th.IntegerType, description="Resources reporting it"),
    th.Property("project_count", th.IntegerType, description="Projects reporting it"),
    th.Property(
        "project_ids", th.ArrayType(th.StringType), description="Those projects' ids, sorted"
    ),
    th.Property(
        "stream",
        th.StringType,
        description="The table holding its samples in this export; null if not exported",
    ),
).to_dict()
