"""`partition: {index, count}`: n runs export disjoint shares of the meters that make the whole."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_ceilometer.errors import ConfigError
from tap_ceilometer.settings import Partition
from tap_ceilometer.tap import TapCeilometer
from tests.support.tap import expected_records, run_tap, sample, tap_config

if TYPE_CHECKING:
    from ceilometer_simulator import Simulator

T0 = datetime(2024, 8, 1, tzinfo=UTC)
METERS = [f"meter.{i}" for i in range(12)] + ["cpu_util", "disk.read.bytes", "instance:m1.tiny"]


@given(
    names=st.sets(st.text(min_size=1, max_size=40), max_size=60),
    count=st.integers(min_value=1, max_value=9),
)
def test_each_name_falls_in_exactly_one_partition(names: set[str], count: int) -> None:
    owners = Counter(
        name for index in range(count) for name in names if Partition(index, count).owns(name)
    )
    assert set(owners) == names
    assert set(owners.values()) <= {1}


def test_the_assignment_is_stable_across_releases() -> None:
    """A meter that moved to another partition would be exported again by the other one's
    state: the assignment (a BLAKE2b digest of the name), as first released, is pinned."""
    shares = {name: next(i for i in range(3) if Partition(i, 3).owns(name)) for name in METERS}
    assert shares == {
        "meter.0": 0,
        "meter.1": 2,
        "meter.2": 1,
        "meter.3": 0,
        "meter.4": 0,
        "meter.5": 2,
        "meter.6": 1,
        "meter.7": 1,
        "meter.8": 0,
        "meter.9": 0,
        "meter.10": 2,
        "meter.11": 1,
        "cpu_util": 0,
        "disk.read.bytes": 0,
        "instance:m1.tiny": 1,
    }


def _cloud(sim: Simulator, meters: list[str]) -> set[str]:
    sim.store.add_samples(
        sample(meter, T0 + timedelta(seconds=i), i) for meter in meters for i in range(40)
    )
    return {mid for meter in meters for mid in expected_records(sim, meter)}


def test_partitions_together_export_the_whole_cloud_once(sim: Simulator) -> None:
    everything = _cloud(sim, METERS)
    states, seen = [], Counter[str]()
    for index in range(3):
        output = run_tap(tap_config(sim, partition={"index": index, "count": 3}, page_size=30))
        ids = [r["message_id"] for records in output.records.values() for r in records]
        seen.update(ids)
        states.append(output.state)
    assert set(seen) == everything
    assert set(seen.values()) == {1}
    # A meter that appears between runs is exported by exactly one partition's next run.
    late = _cloud(sim, ["volume.size"]) - everything
    again = Counter[str]()
    for index in range(3):
        config = tap_config(sim, partition={"index": index, "count": 3}, page_size=30)
        output = run_tap(config, states[index])
        again.update(r["message_id"] for records in output.records.values() for r in records)
    assert set(again) == late
    assert set(again.values()) == {1}


@pytest.mark.parametrize(
    ("partition", "complaint"),
    [
        ({"index": 3, "count": 3}, "partition.index must be 0 to 2"),
        ({"index": -1, "count": 2}, "partition.index must be 0 to 1"),
        ({"index": 0, "count": 0}, "partition.count must be a whole number of at least 1"),
    ],
)
def test_a_partition_out_of_range_is_refused(
    sim: Simulator, partition: dict[str, int], complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        TapCeilometer(config=tap_config(sim, partition=partition))


def test_time_slices_of_one_meter_export_it_once(sim: Simulator) -> None:
    """A backfill cut into start_date/end_date slices: start inclusive, end exclusive, so
    samples exactly on a boundary (there are some) go to one slice; a slice's second run,
    from its own state, sends nothing."""
    sim.store.add_samples(
        sample("cpu_util", T0 + timedelta(minutes=10 * i), i, resource_id=f"r{i % 5}")
        for i in range(300)
    )
    everything = set(expected_records(sim, "cpu_util"))
    bounds = ["2024-08-01T00:00:00Z", "2024-08-01T12:00:00Z", "2024-08-02T00:00:00Z", None]
    seen: Counter[str] = Counter()
    for start, end in itertools.pairwise(bounds):
        config = tap_config(sim, start_date=start, page_size=40, meters=["cpu_util"])
        if end is not None:
            config["end_date"] = end
        first = run_tap(config)
        seen.update(r["message_id"] for r in first.records["cpu_util"])
        again = run_tap(config, first.state)
        assert again.records.get("cpu_util", []) == []
    assert set(seen) == everything
    assert set(seen.values()) == {1}
