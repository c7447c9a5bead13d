"""The two read paths against an in-memory API with Ceilometer's traps (spec 3, 4, 8).

The fake answers newest first with ties in random order when no orderby is given, cuts
every answer at the limit without a sign of it, and evaluates the complex filter tree.
"""

from __future__ import annotations

import logging
import math
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tap_ceilometer.timestamps import parse_api_time
from tap_ceilometer.v2.query import parse_selections
from tap_ceilometer.v2.reader import Cursor, keyset_pages, window_pages
from tap_ceilometer.v2.records import RecordBuilder

BASE = datetime(2024, 1, 1, tzinfo=UTC)
END = BASE + timedelta(days=30)


def _naive(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat()


class FakeApi:
    def __init__(self, samples: list[dict[str, Any]], seed: int = 0) -> None:
        self.samples = samples
        self.random = random.Random(seed)
        self.requests = 0
        self.limits: list[int] = []

    def _value(self, sample: dict[str, Any], field: str) -> Any:
        if field == "timestamp":
            return parse_api_time(sample["timestamp"])
        if field == "counter_name":
            return sample["meter"]
        if field == "message_id":
            return sample["id"]
        return sample[field]

    def _match(self, node: dict[str, Any], sample: dict[str, Any]) -> bool:
        ((op, arg),) = node.items()
        if op == "and":
            return all(self._match(child, sample) for child in arg)
        if op == "or":
            return any(self._match(child, sample) for child in arg)
        ((field, value),) = arg.items()
        if field == "timestamp":
            value = parse_api_time(value)  # offsets would be dropped by the real one
        have = self._value(sample, field)
        return {
            "=": have == value,
            ">": have > value,
            ">=": have >= value,
            "<": have < value,
            "<=": have <= value,
        }[op]

    def complex(self, filter_: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        self.requests += 1
        found = [s for s in self.samples if self._match(filter_, s)]
        found.sort(key=lambda s: (parse_api_time(s["timestamp"]), s["id"]))
        return found[:limit]

    def simple(self, params: list[tuple[str, str]], limit: int) -> list[dict[str, Any]]:
        self.requests += 1
        self.limits.append(limit)
        fields = [v for k, v in params if k == "q.field"]
        ops = [v for k, v in params if k == "q.op"]
        values = [v for k, v in params if k == "q.value"]
        found = []
        for sample in self.samples:
            keep = True
            for field, op, value in zip(fields, ops, values, strict=True):
                if field == "timestamp":
                    have, bound = parse_api_time(sample["timestamp"]), parse_api_time(value)
                    keep &= {"ge": have >= bound, "lt": have < bound}[op]
                else:
                    keep &= sample[field] == value
            if keep:
                found.append(sample)
        # Newest first, ties in no stable order, cut at the limit.
        self.random.shuffle(found)
        found.sort(key=lambda s: parse_api_time(s["timestamp"]), reverse=True)
        return [
            {
                "counter_name": s["meter"],
                "counter_type": s["type"],
                "counter_unit": s["unit"],
                "counter_volume": s["volume"],
                "message_id": s["id"],
                "timestamp": s["timestamp"],
                "recorded_at": s["recorded_at"],
                "resource_metadata": s["metadata"],
                "project_id": s["project_id"],
                "resource_id": s["resource_id"],
                "source": s["source"],
                "user_id": s["user_id"],
            }
            for s in found[:limit]
        ]


def make_samples(offsets: list[int], seed: int = 0) -> list[dict[str, Any]]:
    """Samples at the given microsecond offsets from BASE (repeats make ties)."""
    rng = random.Random(seed)
    samples = []
    for index, offset in enumerate(offsets):
        moment = BASE + timedelta(microseconds=offset)
        samples.append(
            {
                "id": f"{rng.getrandbits(128):032x}-{index}",
                "meter": "cpu_util",
                "type": "gauge",
                "unit": "%",
                "volume": float(index),
                "timestamp": _naive(moment),
                "recorded_at": _naive(moment),
                "metadata": {},
                "project_id": f"p{index % 2}",
                "resource_id": "r",
                "source": "openstack",
                "user_id": None,
            }
        )
    return samples


def _builder(*, new_format: bool) -> Any:
    builder = RecordBuilder("cpu_util", logging.getLogger("test"))
    return lambda sample: builder.build(sample, new_format=new_format)


def read_keyset(
    api: FakeApi,
    start: Cursor,
    page_size: int,
    selection: Any = None,
    end: datetime = END,
    *,
    prefetch: bool = False,
) -> list[Any]:
    """All records; with `prefetch`, the next page is asked for in a worker, as streams.py does."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        pages = keyset_pages(
            api.complex,
            _builder(new_format=True),
            meter="cpu_util",
            selection=selection,
            start=start,
            end=end,
            page_size=page_size,
            submit=reader.submit if prefetch else None,
        )
        return [record for page in pages for record in page]


def read_windows(
    api: FakeApi, start: Cursor, page_size: int, selection: Any = None, end: datetime = END
) -> list[Any]:
    pages = window_pages(
        api.simple,
        _builder(new_format=False),
        selection=selection,
        start=start,
        end=end,
        page_size=page_size,
    )
    return [record for page in pages for record in page]


def _position(record: dict[str, Any]) -> tuple[str, str]:
    return record["timestamp"], record["message_id"]


offsets_strategy = st.lists(
    st.one_of(
        st.integers(0, 10**6),  # within one second: many near-ties
        st.integers(0, 10 * 86_400 * 10**6),  # spread over ten days
        st.sampled_from([0, 5 * 10**6, 5 * 10**6 + 1]),  # exact ties, whole and fractional
    ),
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(
    offsets=offsets_strategy,
    page_size=st.integers(1, 40),
    seed=st.integers(0, 10),
    prefetch=st.booleans(),
)
def test_keyset_reads_every_sample_once_in_order(offsets, page_size, seed, prefetch):
    samples = make_samples(offsets, seed)
    api = FakeApi(samples, seed)
    start = Cursor.at(BASE - timedelta(days=1))
    records = read_keyset(api, start, page_size, prefetch=prefetch)
    assert sorted(r["message_id"] for r in records) == sorted(s["id"] for s in samples)
    assert [_position(r) for r in records] == sorted(_position(r) for r in records)
    # one request per page, plus the final short one
    assert api.requests <= math.floor(len(samples) / page_size) + 1


@settings(max_examples=60, deadline=None)
@given(offsets=offsets_strategy, page_size=st.integers(1, 40), seed=st.integers(0, 10))
def test_windows_read_every_sample_once_in_order(offsets, page_size, seed):
    samples = make_samples(offsets, seed)
    api = FakeApi(samples, seed)
    records = read_windows(api, Cursor.at(BASE - timedelta(days=1)), page_size)
    assert sorted(r["message_id"] for r in records) == sorted(s["id"] for s in samples)
    assert [_position(r) for r in records] == sorted(_position(r) for r in records)
    # A larger limit only for an instant that holds a page or more: windows narrow instead.
    largest_tie = max((offsets.count(o) for o in offsets), default=0)
    if largest_tie < page_size:
        assert set(api.limits) == {page_size}


@settings(max_examples=40, deadline=None)
@given(offsets=offsets_strategy, page_size=st.integers(1, 30), cut=st.integers(0, 300))
def test_resuming_from_any_bookmark_loses_and_repeats_nothing(offsets, page_size, cut):
    samples = make_samples(offsets)
    api = FakeApi(samples)
    everything = read_keyset(api, Cursor.at(BASE - timedelta(days=1)), page_size)
    cut = min(cut, len(everything))
    done = everything[:cut]
    start = (
        Cursor(done[-1]["timestamp"], done[-1]["message_id"])
        if done
        else Cursor.at(BASE - timedelta(days=1))
    )
    for read in (read_keyset, read_windows):
        rest = read(FakeApi(samples, seed=cut), start, page_size)
        assert [r["message_id"] for r in done + rest] == [r["message_id"] for r in everything]


def test_a_tie_larger_than_any_page_is_read_whole():
    samples = make_samples([7_000_000] * 2_500)
    for read in (read_keyset, read_windows):
        api = FakeApi(samples)
        records = read(api, Cursor.at(BASE), 100)
        assert len({r["message_id"] for r in records}) == 2_500
        assert len(records) == 2_500


def test_keyset_request_count_is_pages_plus_one():
    samples = make_samples(list(range(0, 10_000_000, 1000)))  # 10,000 samples
    api = FakeApi(samples)
    assert len(read_keyset(api, Cursor.at(BASE), 1000)) == 10_000
    assert api.requests == 11


def test_selection_filters_both_paths():
    samples = make_samples(list(range(0, 200_000, 1000)))
    (selection,) = parse_selections([{"query": [{"field": "project_id", "value": "p1"}]}])
    expected = sorted(s["id"] for s in samples if s["project_id"] == "p1")
    for read in (read_keyset, read_windows):
        records = read(FakeApi(samples), Cursor.at(BASE), 7, selection)
        assert sorted(r["message_id"] for r in records) == expected


def test_end_bound_is_exclusive_and_start_inclusive():
    samples = make_samples([0, 1, 2, 3])
    start = Cursor.at(BASE + timedelta(microseconds=1))
    end = BASE + timedelta(microseconds=3)
    for read in (read_keyset, read_windows):
        records = read(FakeApi(samples), start, 10, end=end)
        assert [r["counter_volume"] for r in records] == [1.0, 2.0]


def test_windows_narrow_rather_than_raise_the_limit():
    samples = make_samples([i * 1000 for i in range(100)])  # 100 samples within 0.1 s
    api = FakeApi(samples)
    records = read_windows(api, Cursor.at(BASE - timedelta(days=1)), 10)
    assert len(records) == 100
    assert set(api.limits) == {10}
