"""What the tap emits, message for message, against runs recorded before the restructuring.

Each scenario runs the tap in process against a simulated cloud generated from a fixed seed
(ties, whole-second and microsecond timestamps, late and null `recorded_at`, extreme volumes)
and compares every SCHEMA, RECORD and STATE message, in order, with tests/golden/<name>.jsonl.gz.
Only the wall clock (`time_extracted`, the run's `replication_key_signpost`) is left out.
The golden files were written by the tap of commit 65b9f2d, before issue 10;
`REGENERATE_GOLDEN=1 pytest tests/test_emitted_unchanged.py` writes them again, which only a
change that means to alter the output may do.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ceilometer_simulator import CloudSpec, project_id
from tap_ceilometer.naming import stream_names
from tests.support.tap import run_tap, samples_only_catalog, tap_config

if TYPE_CHECKING:
    from ceilometer_simulator import Simulator

GOLDEN = Path(__file__).parent / "golden"
METERS = ("cpu_util", "disk.read.bytes", "network.incoming.bytes", "instance:m1.tiny")
SPEC = CloudSpec(
    seed=7,
    samples=1_500,
    meters=METERS,
    tie_fraction=0.2,
    tie_size=40,
    extreme_volumes=True,
    null_recorded_fraction=0.05,
)

SCENARIOS: dict[str, dict[str, Any]] = {
    "complex": {"page_size": 97},
    "simple": {"page_size": 97, "query_method": "simple"},
    "selections": {
        "page_size": 50,
        "selections": [
            {
                "name": "project-0",
                "query": [{"field": "project_id", "op": "eq", "value": project_id(0)}],
                "meters": ["cpu_util", "disk.read.bytes"],
            },
            {"query": [{"field": "project", "value": project_id(1)}]},
        ],
    },
    "resume-in-tie": {"page_size": 64},
    "lookback": {"page_size": 64, "lookback_window": 3600},
}


def _without_clock(value: Any) -> Any:
    """The message with the wall clock (time_extracted, the run's signpost) taken out."""
    if isinstance(value, dict):
        return {
            key: "<now>" if key == "replication_key_signpost" else _without_clock(item)
            for key, item in value.items()
            if key != "time_extracted"
        }
    if isinstance(value, list):
        return [_without_clock(item) for item in value]
    return value


def _state_for(name: str, sim: Simulator) -> dict[str, Any] | None:
    """For the resume scenarios: a bookmark inside the largest tie, as a run killed there
    leaves it."""
    if name not in ("resume-in-tie", "lookback"):
        return None
    ties = Counter((s["counter_name"], s["timestamp"]) for s in sim.store.iter_samples())
    (meter, instant), size = ties.most_common(1)[0]
    assert size > 5
    tied = sorted(
        s["message_id"] for s in sim.store.iter_samples(meter) if s["timestamp"] == instant
    )
    stamp = instant if "." in instant else f"{instant}.000000"
    bookmark = {
        "replication_key": "timestamp",
        "replication_key_value": f"{stamp}+00:00",
        "replication_key_message_id": tied[size // 2],
    }
    return {"bookmarks": {stream_names(METERS)[meter]: bookmark}}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_tap_emits_what_it_emitted_before(sim: Simulator, name: str) -> None:
    sim.store.load(SPEC)
    config = tap_config(sim, **SCENARIOS[name])
    # The dimension streams came later; deselected, they leave the rest as it was.
    catalog = samples_only_catalog(config)
    emitted = _without_clock(run_tap(config, _state_for(name, sim), catalog).messages)
    assert sum(m["type"] == "RECORD" for m in emitted) > 100
    path = GOLDEN / f"{name}.jsonl.gz"
    if os.environ.get("REGENERATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        lines = "".join(json.dumps(m, sort_keys=True) + "\n" for m in emitted)
        path.write_bytes(gzip.compress(lines.encode(), mtime=0))
    recorded = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    assert len(emitted) == len(recorded)
    for index, (now, before) in enumerate(zip(emitted, recorded, strict=True)):
        assert now == before, f"message {index} differs"
