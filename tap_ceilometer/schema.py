"""The sample schema shared by every meter stream, and SQL-safe stream names."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from singer_sdk import typing as th

if TYPE_CHECKING:
    from collections.abc import Iterable

# Ceilometer's own column is String(128); a bounded key keeps MySQL's 3072-byte index limit happy.
MESSAGE_ID_MAX_LENGTH = 128

# PostgreSQL truncates identifiers at 63 bytes, MySQL at 64, and thk-target-mysql loads
# through `<table>_temp`: 64 - 5.
STREAM_NAME_MAX_LENGTH = 59
_HASH_LENGTH = 8

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

_UNSAFE = re.compile(r"[^a-z0-9_]+")


def _sanitize(meter: str) -> str:
    name = _UNSAFE.sub("_", meter.lower()).strip("_") or "meter"
    if name[0].isdigit():
        name = f"m_{name}"
    return name


def _with_hash(base: str, meter: str) -> str:
    digest = hashlib.sha1(meter.encode(), usedforsecurity=False).hexdigest()[:_HASH_LENGTH]
    return f"{base[: STREAM_NAME_MAX_LENGTH - _HASH_LENGTH - 1]}_{digest}"


def is_sql_safe(meter: str) -> bool:
    """Whether a meter name can serve as a stream (and table) name unchanged."""
    return len(meter) <= STREAM_NAME_MAX_LENGTH and _sanitize(meter) == meter


def stream_names(meters: Iterable[str]) -> dict[str, str]:
    """Map each meter name to a distinct SQL-safe stream name.

    `disk.read.bytes` becomes `disk_read_bytes`. Targets choke on dots (target-postgres
    crashes on two or more), dashes (read as a schema separator) and mixed case (target-mysql
    lower-cases), so names keep only [a-z0-9_]. Where two meters would meet on one name, a
    meter that is already safe keeps it and the others take a hash of their exact name, so
    no two meters ever share a table.
    """
    unique = sorted(set(meters))
    by_base: dict[str, list[str]] = {}
    for meter in unique:
        base = _sanitize(meter)
        if len(base) > STREAM_NAME_MAX_LENGTH:
            base = _with_hash(base, meter)
        by_base.setdefault(base, []).append(meter)

    names: dict[str, str] = {}
    for base, group in by_base.items():
        for meter in group:
            keeps_base = meter == base or (len(group) == 1)
            names[meter] = base if keeps_base else _with_hash(base, meter)
    taken = set()
    for meter in unique:
        if names[meter] in taken:  # a hashed name met a real meter of the same spelling
            names[meter] = _with_hash(names[meter], meter)
        taken.add(names[meter])
    return names
