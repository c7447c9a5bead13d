"""Run tap-ceilometer against a simulator, in process or as the real command, for tests."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tap_ceilometer.keystone.streams import KEYSTONE_STREAMS
from tap_ceilometer.naming import stream_names
from tap_ceilometer.tap import TapCeilometer
from tap_ceilometer.timestamps import parse_api_time
from tap_ceilometer.v2.dimensions import V2_DIMENSION_STREAMS

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ceilometer_simulator import Simulator

REPO_ROOT = Path(__file__).resolve().parents[2]
TAP_EXECUTABLE = Path(sys.executable).parent / "tap-ceilometer"


def tap_config(sim: Simulator, **overrides: Any) -> dict[str, Any]:
    """Password auth as the simulator's admin, plus whatever the test sets."""
    config: dict[str, Any] = {
        "auth_url": sim.auth_url,
        "username": "admin",
        "password": "admin-secret",
        "project_name": "admin",
        "start_date": "2000-01-01T00:00:00Z",
        "max_retries": 2,
    }
    config.update(overrides)
    return config


# The v2 API's dimension streams, and Keystone's: every run with an admin sends them too.
DIMENSION_STREAMS = frozenset({*V2_DIMENSION_STREAMS, *KEYSTONE_STREAMS})


@dataclass
class TapOutput:
    """The Singer messages one run wrote, sorted by kind; `records` and `schemas` hold the
    sample streams, `dimensions` the records of the dimension streams."""

    messages: list[dict[str, Any]]
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    states: list[dict[str, Any]] = field(default_factory=list)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    dimensions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dimension_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for message in self.messages:
            kind = message["type"]
            dimension = message.get("stream") in DIMENSION_STREAMS
            if kind == "RECORD":
                into = self.dimensions if dimension else self.records
                into.setdefault(message["stream"], []).append(message["record"])
            elif kind == "STATE":
                self.states.append(message["value"])
            elif kind == "SCHEMA":
                (self.dimension_schemas if dimension else self.schemas)[message["stream"]] = message

    @property
    def sample_messages(self) -> list[dict[str, Any]]:
        """The RECORD and STATE messages of the sample streams, in order."""
        return [
            m
            for m in self.messages
            if m["type"] == "STATE"
            or (m["type"] == "RECORD" and m["stream"] not in DIMENSION_STREAMS)
        ]

    @property
    def state(self) -> dict[str, Any]:
        return self.states[-1] if self.states else {}

    def count(self) -> int:
        return sum(len(records) for records in self.records.values())


def parse_messages(text: str) -> TapOutput:
    return TapOutput([json.loads(line) for line in text.splitlines() if line.strip()])


def run_tap(
    config: Mapping[str, Any],
    state: Mapping[str, Any] | None = None,
    catalog: Mapping[str, Any] | None = None,
) -> TapOutput:
    """Sync in this process (fast; the SDK writes Singer messages to sys.stdout)."""
    buffer = io.StringIO()
    tap = TapCeilometer(
        config=dict(config),
        state=dict(state or {}),
        catalog=dict(catalog) if catalog is not None else None,
    )
    with contextlib.redirect_stdout(buffer):
        tap.sync_all()
    return parse_messages(buffer.getvalue())


def samples_only_catalog(config: Mapping[str, Any]) -> dict[str, Any]:
    """The tap's discovered catalog with the dimension streams deselected (SDK metadata)."""
    catalog = TapCeilometer(config=dict(config)).catalog_dict
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] in DIMENSION_STREAMS:
            for item in entry["metadata"]:
                if not item["breadcrumb"]:
                    item["metadata"]["selected"] = False
    return catalog


def tap_command(config_path: Path, state_path: Path | None = None) -> list[str]:
    command = [str(TAP_EXECUTABLE), "--config", str(config_path)]
    if state_path is not None:
        command += ["--state", str(state_path)]
    return command


def prepared_tap_command(
    workdir: Path,
    config: Mapping[str, Any],
    state: Mapping[str, Any] | None = None,
    catalog: Mapping[str, Any] | None = None,
) -> list[str]:
    """Writes the config (and state, catalog) files into workdir; the command that reads them."""
    config_path = workdir / "tap-config.json"
    config_path.write_text(json.dumps(dict(config)), encoding="utf-8")
    state_path = None
    if state is not None:
        state_path = workdir / "tap-state.json"
        state_path.write_text(json.dumps(dict(state)), encoding="utf-8")
    command = tap_command(config_path, state_path)
    if catalog is not None:
        catalog_path = workdir / "tap-catalog.json"
        catalog_path.write_text(json.dumps(dict(catalog)), encoding="utf-8")
        command += ["--catalog", str(catalog_path)]
    return command


def run_tap_process(
    config: Mapping[str, Any],
    workdir: Path,
    *,
    state: Mapping[str, Any] | None = None,
    args: Iterable[str] = (),
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """The real `tap-ceilometer` command, as an operator runs it."""
    return subprocess.run(
        [*prepared_tap_command(workdir, config, state), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def expected_records(sim: Simulator, meter: str) -> dict[str, dict[str, Any]]:
    """What the simulator holds for a meter, keyed by message_id, as records should carry it."""
    expected = {}
    for sample in sim.store.iter_samples(meter):
        expected[sample["message_id"]] = {
            "counter_name": sample["counter_name"],
            "counter_type": sample["counter_type"],
            "counter_unit": sample["counter_unit"],
            "counter_volume": sample["counter_volume"],
            "message_id": sample["message_id"],
            "project_id": sample["project_id"],
            "resource_id": sample["resource_id"],
            "source": sample["source"],
            "user_id": sample["user_id"],
            "timestamp": parse_api_time(sample["timestamp"]),
            "recorded_at": parse_api_time(sample["recorded_at"]) if sample["recorded_at"] else None,
            "resource_metadata": sample["resource_metadata"],
        }
    return expected


def cloud_samples(sim: Simulator, meters: Iterable[str]) -> dict[str, dict[str, Any]]:
    """expected_records of every meter, by message_id."""
    expected: dict[str, dict[str, Any]] = {}
    for meter in meters:
        expected.update(expected_records(sim, meter))
    return expected


def stream_of(meter: str, meters: Iterable[str]) -> str:
    return stream_names(meters)[meter]


def comparable(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as emitted (or read back), with times parsed, for exact comparison."""
    result = dict(record)
    for key in ("timestamp", "recorded_at"):
        value = result.get(key)
        if isinstance(value, str):
            result[key] = parse_api_time(value)
    return result


def sample(meter: str, moment: Any, index: int, **overrides: Any) -> dict[str, Any]:
    """One storage-form sample for the simulator."""
    base: dict[str, Any] = {
        "counter_name": meter,
        "counter_type": "gauge",
        "counter_unit": "%",
        "counter_volume": float(index) + 0.25,
        "message_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{meter}-{moment}-{index}")),
        "project_id": "project-a",
        "user_id": "user-a",
        "resource_id": f"resource-{index % 3}",
        "source": "openstack",
        "timestamp": moment,
        "recorded_at": moment,
        "resource_metadata": {"display_name": f"vm-{index}"},
    }
    base.update(overrides)
    return base
