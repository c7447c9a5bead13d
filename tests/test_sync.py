"""The tap against the simulator, in process: records, bookmarks and requests, exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from ceilometer_simulator import project_id as generated_project_id
from tap_ceilometer.errors import ConfigError
from tap_ceilometer.v2.streams import MESSAGE_ID_KEY
from tests.support.tap import comparable, expected_records, run_tap, sample, tap_config

if TYPE_CHECKING:
    from ceilometer_simulator import Simulator

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def _by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {record["message_id"]: comparable(record) for record in records}


def _bookmark(state: dict[str, Any], stream: str) -> dict[str, Any]:
    return state["bookmarks"][stream]


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return [record["message_id"] for record in records]


@pytest.mark.parametrize("query_method", ["complex", "simple"])
def test_every_sample_once_with_ties_and_mixed_precision(sim: Simulator, query_method: str):
    samples = [sample("disk.read.bytes", T0 + timedelta(seconds=i // 3), i) for i in range(700)]
    samples += [sample("disk.read.bytes", T0 + timedelta(minutes=5), 1000 + i) for i in range(2500)]
    samples += [
        sample("disk.read.bytes", T0 + timedelta(minutes=6, microseconds=i * 7), 5000 + i)
        for i in range(300)
    ]
    sim.store.add_samples(samples)
    output = run_tap(tap_config(sim, page_size=250, query_method=query_method))
    records = output.records["disk_read_bytes"]
    assert len(records) == len(samples)
    assert _by_id(records) == expected_records(sim, "disk.read.bytes")
    positions = [(r["timestamp"], r["message_id"]) for r in records]
    assert positions == sorted(positions)
    bookmark = _bookmark(output.state, "disk_read_bytes")
    assert bookmark["replication_key_value"] == records[-1]["timestamp"]
    assert bookmark[MESSAGE_ID_KEY] == records[-1]["message_id"]


def test_complex_path_makes_one_request_per_page(sim: Simulator):
    sim.store.add_samples(sample("cpu_util", T0 + timedelta(seconds=i), i) for i in range(1000))
    sim.reset_requests()
    run_tap(tap_config(sim, page_size=100, meters=["cpu_util"], query_method="complex"))
    queries = [r for r in sim.requests if r.path == "/v2/query/samples"]
    assert len(queries) == 11  # ten full pages and the short one that ends the meter


def test_second_run_emits_only_new_samples(sim: Simulator):
    sim.store.add_samples(sample("image.size", T0 + timedelta(seconds=i), i) for i in range(150))
    first = run_tap(tap_config(sim, page_size=40))
    new = [sample("image.size", T0 + timedelta(minutes=10, seconds=i), 500 + i) for i in range(30)]
    sim.store.add_samples(new)
    second = run_tap(tap_config(sim, page_size=40), state=first.state)
    assert sorted(_ids(second.records["image_size"])) == sorted(s["message_id"] for s in new)


def test_resume_inside_a_tie_repeats_nothing(sim: Simulator):
    sim.store.add_samples(sample("cpu_util", T0, i) for i in range(500))
    everything = run_tap(tap_config(sim, page_size=60)).records["cpu_util"]
    # A bookmark as an interrupted run leaves it: 200 samples into the tie.
    state = {
        "bookmarks": {
            "cpu_util": {
                "replication_key": "timestamp",
                "replication_key_value": everything[199]["timestamp"],
                MESSAGE_ID_KEY: everything[199]["message_id"],
            }
        }
    }
    rest = run_tap(tap_config(sim, page_size=60), state=state).records["cpu_util"]
    assert sorted(_ids(everything[:200] + rest)) == sorted(_ids(everything))
    assert len(rest) == 300


def test_lookback_window_catches_samples_recorded_late(sim: Simulator):
    sim.store.add_samples(sample("cpu_util", T0 + timedelta(seconds=i), i) for i in range(100))
    first = run_tap(tap_config(sim))
    late = [
        sample(
            "cpu_util",
            T0 + timedelta(seconds=50, microseconds=5),
            900,
            recorded_at=T0 + timedelta(hours=1),
        )
    ]
    sim.store.add_samples(late)
    missed = run_tap(tap_config(sim), state=first.state)
    assert "cpu_util" not in missed.records  # beyond the bookmark: the documented trade-off
    caught = run_tap(tap_config(sim, lookback_window=3600, page_size=10), state=first.state)
    assert late[0]["message_id"] in _ids(caught.records["cpu_util"])
    # The re-read never moves the bookmark back, not even in the states sent while re-reading.
    before = _bookmark(first.state, "cpu_util")["replication_key_value"]
    for state in caught.states:
        assert _bookmark(state, "cpu_util")["replication_key_value"] == before


def test_selections_filter_by_project_and_resource_with_their_own_bookmarks(sim: Simulator):
    samples = [
        sample("volume.size", T0 + timedelta(seconds=i), i, project_id=f"project-{i % 3}")
        for i in range(90)
    ]
    sim.store.add_samples(samples)
    selections = [
        {"name": "p1", "query": [{"field": "project_id", "op": "eq", "value": "project-1"}]},
        {"name": "r2", "query": [{"field": "resource", "value": "resource-2"}]},
    ]
    output = run_tap(tap_config(sim, selections=selections, page_size=7))
    got = set(_ids(output.records["volume_size"]))
    wanted = {
        s["message_id"]
        for s in samples
        if s["project_id"] == "project-1" or s["resource_id"] == "resource-2"
    }
    assert got == wanted
    partitions = output.state["bookmarks"]["volume_size"]["partitions"]
    assert sorted(p["context"]["selection"] for p in partitions) == ["p1", "r2"]
    assert all("selection" not in r for r in output.records["volume_size"])


def test_extreme_values_and_metadata_survive_exactly(sim: Simulator):
    odd = [
        sample("network.incoming.bytes", T0, 1, counter_volume=9.2e18),
        sample("network.incoming.bytes", T0 + timedelta(microseconds=1), 2, counter_volume=1e-9),
        sample(
            "network.incoming.bytes",
            T0 + timedelta(seconds=1),
            3,
            resource_metadata={"display_name": "Ünïcode ☃ 雪", "flavor": {"vcpus": 2, "ram": 512}},
        ),
    ]
    sim.store.add_samples(odd)
    records = run_tap(tap_config(sim)).records["network_incoming_bytes"]
    assert _by_id(records) == expected_records(sim, "network.incoming.bytes")
    volumes = sorted(r["counter_volume"] for r in records)
    assert volumes[0] == 1e-9
    assert volumes[-1] == 9.2e18
    nested = next(
        r for r in records if r["resource_metadata"].get("display_name", "").startswith("Ü")
    )
    assert nested["resource_metadata"]["flavor.vcpus"] == "2"  # flattened to strings, spec 5


def test_timestamps_are_emitted_in_utc_with_an_offset(sim: Simulator):
    sim.store.add_samples(
        [sample("cpu_util", T0, 1), sample("cpu_util", T0 + timedelta(microseconds=850718), 2)]
    )
    records = run_tap(tap_config(sim)).records["cpu_util"]
    assert [r["timestamp"] for r in records] == [
        "2024-03-01T12:00:00.000000+00:00",
        "2024-03-01T12:00:00.850718+00:00",
    ]


def _demo(sim: Simulator, **overrides: Any) -> dict[str, Any]:
    config = tap_config(sim, username="demo", password="demo-secret", project_name="demo")
    return {**config, **overrides}


def test_a_non_admin_user_gets_meters_whose_newest_sample_is_another_projects(sim: Simulator):
    """/v2/meters scopes to the user's project only after picking each meter's newest sample
    (spec 1.1; pinned against the real server in tests/conformance)."""
    demo = generated_project_id(0)
    meters = ["disk.read.bytes", "image.size"]
    sim.store.add_samples(
        sample(m, T0 + timedelta(seconds=i), i, project_id=demo) for m in meters for i in range(40)
    )
    # The newest image.size sample belongs to another project, on another resource.
    sim.store.add_samples([sample("image.size", T0 + timedelta(hours=1), 99, resource_id="x")])
    sim.reset_requests()
    output = run_tap(_demo(sim))
    assert {m: len(r) for m, r in output.records.items()} == {
        "disk_read_bytes": 40,
        "image_size": 40,
    }
    assert all(r["project_id"] == demo for rs in output.records.values() for r in rs)
    listed = [r for r in sim.requests if r.path == "/v2/meters"]
    assert sorted("unique=True" in r.query for r in listed) == [False, True]


def test_a_named_meter_left_out_of_the_meter_list_is_exported(sim: Simulator):
    demo = generated_project_id(0)
    sim.store.add_samples(
        sample("image.size", T0 + timedelta(seconds=i), i, project_id=demo, resource_id="img")
        for i in range(30)
    )
    # The newest sample of image.size on the same resource belongs to another project.
    sim.store.add_samples([sample("image.size", T0 + timedelta(hours=1), 99, resource_id="img")])
    output = run_tap(_demo(sim, meters=["image.size"]))
    assert len(output.records["image_size"]) == 30


def test_a_named_meter_nobody_has_samples_of_is_refused(sim: Simulator):
    sim.store.add_samples([sample("image.size", T0, 1)])
    with pytest.raises(ConfigError, match=r"'image\.sise' \(did you mean image\.size"):
        run_tap(tap_config(sim, meters=["image.sise"]))
