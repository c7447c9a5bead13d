"""Timestamps the way Ceilometer v2 stores and prints them.

Storage keeps integer microseconds since the epoch (UTC) so that ordering and equality are exact;
the API prints naive UTC through ``datetime.isoformat`` (spec 5), which drops the fraction when the
microseconds are zero.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

_EPOCH = dt.datetime(1970, 1, 1)  # noqa: DTZ001 - Ceilometer's storage datetimes are naive UTC
_US = 1_000_000


def to_us(value: dt.datetime) -> int:
    """Microseconds since the epoch; aware values are converted to UTC, naive ones taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


def from_us(us: int) -> dt.datetime:
    """The aware UTC datetime of ``us`` microseconds since the epoch."""
    return (_EPOCH + dt.timedelta(microseconds=us)).replace(tzinfo=dt.UTC)


@lru_cache(maxsize=65_536)
def iso_from_us(us: int) -> str:
    """Naive UTC isoformat, microseconds only when non-zero (spec 5).

    Cached because polling cycles stamp many samples with one timestamp.
    """
    return (_EPOCH + dt.timedelta(microseconds=us)).isoformat()


def parse_query_timestamp(value: object) -> dt.datetime:
    """Parse a query-side timestamp like oslo's ``parse_isotime`` and then drop the offset.

    The offset is discarded, not converted (spec 2.4): ``20:38:29+01:00`` means 20:38:29 UTC.
    Raises ValueError when the value is no ISO 8601 date or date-time.
    """
    if not isinstance(value, str):
        raise ValueError(f"not a string: {value!r}")
    text = value.strip()
    if not text or not text[0].isdigit():
        raise ValueError(f"invalid timestamp {value!r}")
    parsed = dt.datetime.fromisoformat(text)
    return parsed.replace(tzinfo=None)


def query_timestamp_us(value: object) -> int:
    """Microseconds of a query-side timestamp, offset dropped (spec 2.4)."""
    return to_us(parse_query_timestamp(value))


def parse_storage_timestamp(value: object) -> int:
    """Microseconds of a storage-form timestamp: a datetime or an ISO string (offsets converted)."""
    if isinstance(value, dt.datetime):
        return to_us(value)
    if isinstance(value, str):
        return to_us(dt.datetime.fromisoformat(value.strip()))
    raise TypeError(
        f"timestamp must be a datetime or an ISO 8601 string, not {type(value).__name__}"
    )
