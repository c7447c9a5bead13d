"""records.utc_text: the fast path gives exactly the text of the full conversion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_ceilometer.timestamps import parse_api_time, utc_iso, utc_text

# Naive, as Ceilometer writes them; a day from either end so that any offset stays in range.
FIRST, LAST = datetime.fromisoformat("0001-01-02"), datetime.fromisoformat("9999-12-30")
moments = st.datetimes(FIRST, LAST)


def _full(value: str) -> str:
    return utc_iso(parse_api_time(value))


@given(moment=moments, whole_second=st.booleans())
def test_ceilometer_forms_match_the_full_conversion(moment: datetime, whole_second: bool):
    if whole_second:
        moment = moment.replace(microsecond=0)
    # Ceilometer's serialisation: naive UTC, microseconds only when non-zero (spec 1.0).
    value = moment.isoformat()
    assert utc_text(value) == _full(value)


@given(
    moment=moments,
    offset_minutes=st.integers(-14 * 60, 14 * 60),
    separator=st.sampled_from(["T", " "]),
    timespec=st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)
def test_other_forms_take_the_full_conversion(
    moment: datetime, offset_minutes: int, separator: str, timespec: str
):
    zone = timezone(timedelta(minutes=offset_minutes))
    value = moment.replace(tzinfo=zone).isoformat(sep=separator, timespec=timespec)
    assert utc_text(value) == _full(value)


@pytest.mark.parametrize(
    "value",
    [
        "2015-09-22T14:52:54Z",
        "2015-W39-2T14:52:54",
        "20150922T145254",
        "2015-09-22",
        "2015-09-22T14",
    ],
)
def test_unusual_but_valid_forms(value: str):
    assert utc_text(value) == _full(value)
    assert utc_text(value).endswith("+00:00")


def test_the_output_is_fixed_width_utc():
    assert utc_text("2015-09-22T14:52:54") == "2015-09-22T14:52:54.000000+00:00"
    assert utc_text("2015-09-22T14:52:54.850718") == "2015-09-22T14:52:54.850718+00:00"
    assert utc_text("2015-09-22T16:52:54+02:00") == "2015-09-22T14:52:54.000000+00:00"
    assert datetime.fromisoformat(utc_text("2015-09-22T14:52:54.5")).tzinfo == UTC
