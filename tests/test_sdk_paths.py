"""The tap's fast record path and the SDK's own path give the same rows for the same input.

With nothing to drop, map or flatten, SampleStream writes records itself (v2/streams.py,
`_write_record_message`); otherwise the SDK's path runs: stream maps, schema flattening, a
deselected property, BATCH files. Each test runs the same cloud both ways and compares the
rows, with the expected difference computed here, and the bookmarks.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pytest
from singer_sdk.streams.core import Stream

from tap_ceilometer.tap import TapCeilometer
from tests.support.tap import (
    DIMENSION_STREAMS,
    TapOutput,
    run_tap,
    run_tap_process,
    sample,
    tap_config,
)

if TYPE_CHECKING:
    from ceilometer_simulator import Simulator

T0 = datetime(2024, 5, 1, tzinfo=UTC)
METERS = ("cpu_util", "memory.usage")
STREAMS = ("cpu_util", "memory_usage")


@pytest.fixture
def cloud(sim: Simulator) -> Simulator:
    for meter in METERS:
        # 60 samples, four to a timestamp: ties cross the 25-sample pages.
        sim.store.add_samples(sample(meter, T0 + timedelta(seconds=i // 4), i) for i in range(60))
    return sim


@pytest.fixture
def sdk_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sample streams whose records went through the SDK's own `_write_record_message`
    (the dimension streams, a few rows each, always do)."""
    seen: list[str] = []
    original = Stream._write_record_message

    def spy(self: Stream, record: dict[str, Any]) -> None:
        if self.name not in DIMENSION_STREAMS:
            seen.append(self.name)
        original(self, record)

    monkeypatch.setattr(Stream, "_write_record_message", spy)
    return seen


def _config(cloud: Simulator, **overrides: Any) -> dict[str, Any]:
    return tap_config(cloud, page_size=25, meters=list(METERS), **overrides)


def _bookmarks(output: TapOutput) -> dict[str, Any]:
    return {
        stream: {k: v for k, v in mark.items() if k != "replication_key_signpost"}
        for stream, mark in output.state["bookmarks"].items()
    }


@pytest.fixture
def plain(cloud: Simulator, sdk_writes: list[str]) -> TapOutput:
    output = run_tap(_config(cloud))
    assert sdk_writes == [], "with nothing to map, the fast path wrote every record"
    assert [len(output.records[s]) for s in STREAMS] == [60, 60]
    sdk_writes.clear()
    return output


def test_a_stream_alias_gives_the_same_rows_under_the_new_name(
    cloud: Simulator, plain: TapOutput, sdk_writes: list[str]
) -> None:
    maps = {"cpu_util": {"__alias__": "cpu"}}
    mapped = run_tap(_config(cloud, stream_maps=maps))
    assert "cpu_util" in sdk_writes
    assert mapped.records["cpu"] == plain.records["cpu_util"]
    assert mapped.records["memory_usage"] == plain.records["memory_usage"]
    assert _bookmarks(mapped) == _bookmarks(plain)  # state keeps the stream's own name


def test_an_identity_map_takes_the_sdk_path_and_changes_nothing(
    cloud: Simulator, plain: TapOutput, sdk_writes: list[str]
) -> None:
    """bench/run.py measures the fast path's gain against exactly this."""
    mapped = run_tap(_config(cloud, stream_maps={stream: {} for stream in STREAMS}))
    assert set(sdk_writes) == set(STREAMS)
    assert mapped.records == plain.records
    assert _bookmarks(mapped) == _bookmarks(plain)


def test_property_maps_change_only_what_they_name(
    cloud: Simulator, plain: TapOutput, sdk_writes: list[str]
) -> None:
    maps = {
        "memory_usage": {
            "resource_metadata": "__NULL__",
            "volume_mb": "counter_volume * 1024",
            "__filter__": "counter_volume > 10",
        }
    }
    mapped = run_tap(_config(cloud, stream_maps=maps))
    assert set(sdk_writes) == {"memory_usage"}
    expected = [
        {
            **{k: v for k, v in record.items() if k != "resource_metadata"},
            "volume_mb": record["counter_volume"] * 1024,
        }
        for record in plain.records["memory_usage"]
        if record["counter_volume"] > 10
    ]
    assert mapped.records["memory_usage"] == expected
    assert mapped.records["cpu_util"] == plain.records["cpu_util"]
    assert _bookmarks(mapped) == _bookmarks(plain)


def test_flattening_spreads_the_metadata_into_columns(
    cloud: Simulator, plain: TapOutput, sdk_writes: list[str]
) -> None:
    flat = run_tap(_config(cloud, flattening_enabled=True, flattening_max_depth=1))
    assert set(sdk_writes) == set(STREAMS)
    for stream in STREAMS:
        expected = []
        for record in plain.records[stream]:
            row = {k: v for k, v in record.items() if k != "resource_metadata"}
            for key, value in record["resource_metadata"].items():
                row[f"resource_metadata__{key}"] = value
            expected.append(row)
        assert flat.records[stream] == expected
    assert _bookmarks(flat) == _bookmarks(plain)


def test_a_deselected_property_is_left_out_and_nothing_else(
    cloud: Simulator, plain: TapOutput, sdk_writes: list[str]
) -> None:
    catalog = TapCeilometer(config=_config(cloud)).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == ["properties", "user_id"]:
                item["metadata"]["selected"] = False
    narrowed = run_tap(_config(cloud), catalog=catalog)
    assert set(sdk_writes) == set(STREAMS)
    for stream in STREAMS:
        expected = [
            {k: v for k, v in record.items() if k != "user_id"} for record in plain.records[stream]
        ]
        assert narrowed.records[stream] == expected
    assert _bookmarks(narrowed) == _bookmarks(plain)


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_batch_files_hold_the_same_rows(
    cloud: Simulator, plain: TapOutput, tmp_path: Path, compression: str
) -> None:
    """The tap's own batch writer (batch_files.py): the records RECORD lines would carry, in
    files of batch_size lines, compressed as asked (the SDK's writer gzips whatever is asked)."""
    batch_config = {
        "encoding": {"format": "jsonl", "compression": compression},
        "storage": {"root": tmp_path.as_uri(), "prefix": "batch-"},
        "batch_size": 40,
    }
    batched = run_tap(_config(cloud, batch_config=batch_config))
    assert batched.records == {}
    for stream in STREAMS:
        rows = []
        for message in batched.messages:
            if message["type"] == "BATCH" and message["stream"] == stream:
                assert message["encoding"] == batch_config["encoding"]
                for url in message["manifest"]:
                    packed = Path(urlparse(url).path).read_bytes()
                    lines = gzip.decompress(packed) if compression == "gzip" else packed
                    chunk = [json.loads(line) for line in lines.splitlines()]
                    assert 0 < len(chunk) <= 40
                    rows += chunk
        assert rows == plain.records[stream]
    assert _bookmarks(batched) == _bookmarks(plain)


def test_batch_files_that_cannot_be_written_end_in_one_sentence(
    cloud: Simulator, tmp_path: Path
) -> None:
    """A storage root under a file: exit 1, one sentence naming the root, no traceback, and
    no BATCH message or state for the file that was not written."""
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": (blocker / "batches").as_uri(), "prefix": "batch-"},
    }
    done = run_tap_process(_config(cloud, batch_config=batch_config), tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, done.stderr[-3000:]
    assert "Cannot write BATCH file" in errors[0]
    assert (blocker / "batches").as_uri() in errors[0]
    assert '"BATCH"' not in done.stdout
