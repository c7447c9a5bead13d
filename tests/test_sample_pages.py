"""decode_sample_page: the typed path gives exactly the records, repairs and errors of the
checked path (plain JSON into RecordBuilder), on any page of either API shape."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tap_ceilometer.errors import MalformedApiDataError
from tap_ceilometer.v2.records import NEW_TO_OLD, RecordBuilder, WireSample, decode_sample_page

if TYPE_CHECKING:
    from collections import Counter

METER = "cpu_util"
OLD_NAMES = [
    "counter_name",
    "counter_type",
    "counter_unit",
    "counter_volume",
    "message_id",
    "timestamp",
    "recorded_at",
    "resource_metadata",
    "project_id",
    "resource_id",
    "source",
    "user_id",
]
NEW_NAMES = {old: new for new, old in NEW_TO_OLD.items()}

# JSON values of the wrong kind for any field.
odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
# Each field's values as Ceilometer writes them.
valid: dict[str, st.SearchStrategy[Any]] = {
    "counter_name": st.just(METER),
    "counter_type": st.sampled_from(["gauge", "delta", "cumulative"]),
    "counter_unit": st.sampled_from(["%", "", "B/s"]),
    "counter_volume": st.one_of(
        st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**70), 2**70)
    ),
    "message_id": st.uuids().map(str),
    "timestamp": st.sampled_from(["2015-09-22T14:52:54", "2015-09-22T14:52:54.850718"]),
    "recorded_at": st.sampled_from(["2015-09-22T14:52:55.000001", "2015-09-22T14:52:55"]),
    "resource_metadata": st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3),
    "project_id": st.text(max_size=4),
    "resource_id": st.text(max_size=4),
    "source": st.just("openstack"),
    "user_id": st.text(max_size=4),
}
# Near misses of the same JSON type, which the checks must catch or repair.
NEAR_VALUES: dict[str, list[Any]] = {
    "counter_name": ["cpu"],
    "counter_type": ["Gauge", ""],
    "counter_volume": [0, -0.0, 1e308, 2**53 + 1],
    "message_id": ["", "m" * 129, "m" * 128],
    "timestamp": ["2015-09-22T16:52:54+02:00", "2015-09-22T24:00:00", "2015-13-22T14:52:54", "now"],
    "recorded_at": ["2015-09-22", "no"],
}
near = {field: st.sampled_from(values) for field, values in NEAR_VALUES.items()}
# Values of other JSON types, which send the whole page to the checked path.
other: dict[str, st.SearchStrategy[Any]] = {
    "counter_volume": st.sampled_from(["1.5", "x", True, 10**400]),
    "resource_metadata": st.dictionaries(st.text(max_size=3), odd, min_size=1, max_size=2),
}


@st.composite
def samples(draw: st.DrawFn, *, other_types: bool) -> dict[str, Any]:
    sample = {}
    for name in OLD_NAMES:
        kind = draw(st.sampled_from(["valid"] * 30 + ["near", "absent", "null", "other"]))
        if kind == "near" and name in near:
            sample[name] = draw(near[name])
        elif kind == "absent":
            continue
        elif kind == "null":
            sample[name] = None
        elif kind == "other" and other_types:
            sample[name] = draw(other.get(name, odd))
        else:
            sample[name] = draw(valid[name])
    if other_types and draw(st.integers(0, 5)) == 0:
        sample[draw(st.sampled_from(["message_signature", "id", "counter_name"]))] = "x"
    return sample


pages = st.booleans().flatmap(lambda other: st.lists(samples(other_types=other), max_size=6))


def _outcome(page: Any, new_format: bool) -> tuple[bytes | str, Counter[str]]:
    """What building a page gives: its records as JSON bytes (key order and -0.0 shown), or
    the error's sentence; and the repairs counted."""
    builder = RecordBuilder(METER, logging.getLogger("test"))
    try:
        records = [builder.build(sample, new_format=new_format) for sample in page]
    except MalformedApiDataError as error:
        return str(error), builder.repairs
    return msgspec.json.encode(records), builder.repairs


def _as_sent(page: list[dict[str, Any]], new_format: bool) -> bytes:
    if new_format:
        page = [
            {NEW_NAMES.get(k, k) if k in NEW_NAMES else k: v for k, v in s.items()} for s in page
        ]
    return json.dumps(page).encode()  # json, not msgspec: integers beyond 64 bits too


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page=pages, new_format=st.booleans())
def test_typed_pages_build_exactly_what_the_checked_path_builds(
    page: list[dict[str, Any]], new_format: bool
):
    content = _as_sent(page, new_format)
    try:
        checked = _outcome(msgspec.json.decode(content), new_format)
    except msgspec.DecodeError as error:  # e.g. 1e400: not JSON to either path
        with pytest.raises(type(error)):
            decode_sample_page(content, new_format=new_format)
        return
    typed = decode_sample_page(content, new_format=new_format)
    event(f"typed page: {bool(typed) and isinstance(typed[0], WireSample)}")
    event(f"outcome: {'error' if isinstance(checked[0], str) else 'records'}")
    assert _outcome(typed, new_format) == checked


PLAIN_SAMPLE = {
    "counter_name": METER,
    "counter_type": "gauge",
    "counter_unit": "%",
    "counter_volume": 1.0,
    "message_id": "9b23b398-6139-11e5-97e9-bc764e045bf6",
    "timestamp": "2015-09-22T14:52:54.850718",
    "recorded_at": None,
    "resource_metadata": {"display_name": "web-01", "flavor.vcpus": "2"},
    "project_id": "p",
    "resource_id": "r",
    "source": "openstack",
    "user_id": None,
}
NEAR_MISSES = [
    *[(field, value) for field, values in NEAR_VALUES.items() for value in values],
    *[(field, None) for field in OLD_NAMES],
]


@pytest.mark.parametrize("new_format", [False, True], ids=["OldSample", "Sample"])
@pytest.mark.parametrize(("field", "value"), NEAR_MISSES)
def test_each_near_miss_in_a_typed_page_meets_the_checks(field: str, value: Any, new_format: bool):
    content = _as_sent([PLAIN_SAMPLE, {**PLAIN_SAMPLE, field: value}], new_format)
    typed = decode_sample_page(content, new_format=new_format)
    assert all(isinstance(sample, WireSample) for sample in typed)
    assert _outcome(typed, new_format) == _outcome(msgspec.json.decode(content), new_format)


@pytest.mark.parametrize("new_format", [False, True], ids=["OldSample", "Sample"])
def test_a_page_as_ceilometer_writes_it_is_typed(new_format: bool):
    page = [
        PLAIN_SAMPLE,
        {"counter_name": METER, "message_id": "m", "timestamp": "2015-09-22T14:52:54"},
    ]
    content = _as_sent(page, new_format)
    typed = decode_sample_page(content, new_format=new_format)
    assert all(isinstance(sample, WireSample) for sample in typed)
    assert _outcome(typed, new_format) == _outcome(msgspec.json.decode(content), new_format)
    assert isinstance(_outcome(typed, new_format)[0], bytes)


@pytest.mark.parametrize(
    "content",
    [b'{"error_message": "x"}', b'[{"volume": 1, "extra": 2}]', b'[{"id": 1}]', b"[1]"],
)
def test_any_other_page_is_plain_json(content: bytes):
    assert decode_sample_page(content, new_format=True) == msgspec.json.decode(content)


def test_what_is_not_json_stays_a_decode_error():
    with pytest.raises(msgspec.DecodeError):
        decode_sample_page(b'[{"id": 1},', new_format=True)
