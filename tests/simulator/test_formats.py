"""Serialisation rules (spec 5) and query-side timestamp parsing (spec 2.4), as pure functions."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ceilometer_simulator.metadata import dict_to_keyval, flatten_metadata, restore_nesting
from ceilometer_simulator.timeutil import iso_from_us, parse_query_timestamp, to_us


def test_spec5_flatten_metadata_test_metadata_example() -> None:
    """spec 1.2/5: the test_metadata example, values turned into text, lists as repr."""
    stored = {
        "display_name": "test-server",
        "tag": "self.sample",
        "dict_properties": {"key": "value"},
        "not_ignored_list": ["returned"],
    }
    assert flatten_metadata(stored) == {
        "dict_properties.key": "value",
        "display_name": "test-server",
        "not_ignored_list": "['returned']",
        "tag": "self.sample",
    }


def test_spec5_flatten_separators_values_and_sets() -> None:
    """spec 5: first level '.', deeper ':', dotted keys become ':', sets dropped, str() values."""
    meta = {
        "properties": {
            "prop_1": 1,
            "prop_2": {"sub_prop_1": 0.75},
            "prop.3": {"$sub_prop.2": None},
        },
        "OS-EXT-AZ:availability_zone": "nova",
        "flag": True,
        "gone": {1, 2},
    }
    assert flatten_metadata(meta) == {
        "properties.prop_1": "1",
        "properties.prop_2:sub_prop_1": "0.75",
        "properties.prop:3:$sub_prop:2": "None",
        "OS-EXT-AZ.availability_zone": "nova",
        "flag": "True",
    }
    assert flatten_metadata({}) == {}
    assert flatten_metadata(None) == {}


def test_spec23_metadata_side_table_keys() -> None:
    """spec 2.3: metadata queries match dotted keys of nested dicts (and list indexes)."""
    pairs = dict(dict_to_keyval({"a": {"b": {"c": 1}}, "l": ["x", {"y": 2}], "n": None}))
    assert pairs == {"a.b.c": 1, "l[0]": "x", "l[1].y": 2, "n": None}


def test_spec18_restore_nesting() -> None:
    """spec 1.8: POSTed flat metadata is re-nested on the dot before storage."""
    assert restore_nesting({"a.b": "1", "c": "2"}) == {"a": {"b": "1"}, "c": "2"}


def test_spec5_isoformat_microseconds_only_when_non_zero() -> None:
    """spec 5: naive UTC, no offset, fraction only when microseconds are non-zero."""
    whole = to_us(dt.datetime(2012, 7, 2, 10, 43, tzinfo=dt.UTC))
    assert iso_from_us(whole) == "2012-07-02T10:43:00"
    assert iso_from_us(whole + 850_718) == "2012-07-02T10:43:00.850718"
    assert iso_from_us(whole + 1) == "2012-07-02T10:43:00.000001"


@given(
    st.datetimes(
        min_value=dt.datetime(1971, 1, 1),  # noqa: DTZ001 - storage datetimes are naive UTC
        max_value=dt.datetime(2100, 1, 1),  # noqa: DTZ001
    )
)
def test_spec5_timestamps_round_trip_exactly(value: dt.datetime) -> None:
    """spec 5: integer microseconds keep every timestamp exact through storage and printing."""
    us = to_us(value)
    assert iso_from_us(us) == value.isoformat()
    assert to_us(value.replace(tzinfo=dt.UTC)) == us


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2014-01-01", dt.datetime(2014, 1, 1)),  # noqa: DTZ001
        ("2014-01-01T05:00:00", dt.datetime(2014, 1, 1, 5)),  # noqa: DTZ001
        ("2014-01-01T05:00:00.123456", dt.datetime(2014, 1, 1, 5, 0, 0, 123456)),  # noqa: DTZ001
        ("2014-01-01T05:00:00Z", dt.datetime(2014, 1, 1, 5)),  # noqa: DTZ001
        ("2013-12-05T20:38:29+01:00", dt.datetime(2013, 12, 5, 20, 38, 29)),  # noqa: DTZ001
        ("2014-01-01 05:00:00", dt.datetime(2014, 1, 1, 5)),  # noqa: DTZ001
    ],
)
def test_spec24_query_timestamp_offset_dropped_not_converted(
    text: str, expected: dt.datetime
) -> None:
    """spec 2.4: parse_isotime forms; +01:00 is dropped, so 20:38:29+01:00 means 20:38:29 UTC."""
    assert parse_query_timestamp(text) == expected


@pytest.mark.parametrize("bad", ["123", "Remember Remember", "", 5])
def test_spec24_bad_query_timestamps(bad: object) -> None:
    """spec 2.4: values that are no ISO 8601 date are rejected."""
    with pytest.raises(ValueError):  # noqa: PT011
        parse_query_timestamp(bad)
