"""`layout: single`: every meter's samples in one stream `samples`, bookmarks still per meter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tap_ceilometer.v2.streams import MESSAGE_ID_KEY
from tests.support.tap import comparable, expected_records, run_tap, sample, tap_config

if TYPE_CHECKING:
    from ceilometer_simulator import Simulator

T0 = datetime(2024, 4, 1, tzinfo=UTC)
METERS = ("cpu_util", "disk.read.bytes", "instance:m1.tiny")


def _cloud(sim: Simulator) -> dict[str, dict[str, Any]]:
    for n, meter in enumerate(METERS):
        # Ties of ten within each meter, and the meters' times interleaved.
        sim.store.add_samples(
            sample(
                meter, T0 + timedelta(seconds=i // 10, microseconds=n), i, project_id=f"p{i % 2}"
            )
            for i in range(230 + 40 * n)
        )
    expected: dict[str, dict[str, Any]] = {}
    for meter in METERS:
        expected.update(expected_records(sim, meter))
    return expected


def _partition(state: dict[str, Any], **context: str) -> dict[str, Any]:
    partitions = state["bookmarks"]["samples"]["partitions"]
    return next(p for p in partitions if p["context"] == context)


def test_every_meter_goes_to_one_stream_once_with_a_bookmark_per_meter(sim: Simulator) -> None:
    expected = _cloud(sim)
    output = run_tap(tap_config(sim, layout="single", page_size=60))
    assert set(output.schemas) == {"samples"}
    records = output.records["samples"]
    assert len(records) == len(expected)
    assert {r["message_id"]: comparable(r) for r in records} == expected
    for meter in METERS:
        mine = [r for r in records if r["counter_name"] == meter]
        last = max(mine, key=lambda r: (r["timestamp"], r["message_id"]))
        bookmark = _partition(output.state, meter=meter)
        assert bookmark["replication_key_value"] == last["timestamp"]
        assert bookmark[MESSAGE_ID_KEY] == last["message_id"]


def test_a_run_resumed_from_any_interim_state_sends_the_rest_exactly_once(
    sim: Simulator,
) -> None:
    """A run killed after an interim STATE (every page_size records) resumes from it: what
    came before that STATE and what the resumed run sends are the whole cloud, no sample in
    both."""
    expected = _cloud(sim)
    config = tap_config(sim, layout="single", page_size=45)
    full = run_tap(config)
    sent: list[str] = []
    resumed_from: list[tuple[int, dict[str, Any]]] = []
    for message in full.sample_messages:
        if message["type"] == "RECORD":
            sent.append(message["record"]["message_id"])
        elif message["type"] == "STATE" and sent:
            resumed_from.append((len(sent), message["value"]))
    assert len(resumed_from) > 10
    for count, state in resumed_from[1::4]:  # inside the first meter, across, in the last
        rest = [r["message_id"] for r in run_tap(config, state).records.get("samples", [])]
        assert not set(sent[:count]) & set(rest), "nothing is sent twice"
        assert set(sent[:count]) | set(rest) == set(expected), "nothing is lost"


def test_selections_keep_a_bookmark_per_meter_and_selection(sim: Simulator) -> None:
    expected = _cloud(sim)
    selections = [
        {"name": "p0", "query": [{"field": "project_id", "value": "p0"}]},
        {
            "name": "p1-cpu",
            "query": [{"field": "project_id", "value": "p1"}],
            "meters": ["cpu_util"],
        },
    ]
    output = run_tap(tap_config(sim, layout="single", page_size=50, selections=selections))
    records = output.records["samples"]
    wanted = {
        mid
        for mid, r in expected.items()
        if r["project_id"] == "p0" or (r["project_id"] == "p1" and r["counter_name"] == "cpu_util")
    }
    assert {r["message_id"] for r in records} == wanted
    assert len(records) == len(wanted)
    contexts = [p["context"] for p in output.state["bookmarks"]["samples"]["partitions"]]
    assert sorted((c["meter"], c["selection"]) for c in contexts) == sorted(
        [(m, "p0") for m in METERS] + [("cpu_util", "p1-cpu")]
    )


def test_per_meter_stays_the_default(sim: Simulator) -> None:
    _cloud(sim)
    output = run_tap(tap_config(sim, page_size=500))
    assert set(output.schemas) == {"cpu_util", "disk_read_bytes", "instance_m1_tiny"}
    assert "partitions" not in output.state["bookmarks"]["cpu_util"]
