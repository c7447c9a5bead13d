"""The deterministic cloud generator (spec 5 resource shapes, spec 7 meters)."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import types
import uuid
from collections import Counter

from ceilometer_simulator import CloudSpec, generate_samples, project_id
from ceilometer_simulator.generator import DEFAULT_METERS, METER_CATALOGUE
from ceilometer_simulator.keystone import Identities

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_same_spec_same_samples_and_streaming() -> None:
    """Same spec => same samples, message ids included; the generator is lazy."""
    spec = CloudSpec(seed=5, samples=300)
    gen = generate_samples(spec)
    assert isinstance(gen, types.GeneratorType)
    first = list(gen)
    assert first == list(generate_samples(CloudSpec(seed=5, samples=300)))
    other = list(generate_samples(CloudSpec(seed=6, samples=300)))
    assert [s["message_id"] for s in first] != [s["message_id"] for s in other]
    assert len(first) == 300


def test_spec5_message_ids_are_unique_uuid1_text() -> None:
    """spec 5: message_id is str(uuid1()): 36 chars, version 1, unique; its time is the sample's."""
    samples = list(generate_samples(CloudSpec(samples=2_000, tie_fraction=0.5, tie_size=50)))
    ids = [s["message_id"] for s in samples]
    assert len(set(ids)) == len(ids)
    for s in samples[:50]:
        assert UUID_RE.match(s["message_id"])
        u = uuid.UUID(s["message_id"])
        assert u.version == 1
        when = dt.datetime(1582, 10, 15, tzinfo=dt.UTC) + dt.timedelta(microseconds=u.time // 10)
        assert when == s["timestamp"]


def test_spec7_meter_names_types_units() -> None:
    """spec 7: generated samples carry the catalogue's type and unit for each meter."""
    assert {
        "disk.read.bytes",
        "network.incoming.bytes",
        "image.size",
        "cpu_util",
        "instance:m1.tiny",
    } <= set(DEFAULT_METERS)
    for s in generate_samples(CloudSpec(samples=500)):
        mtype, unit, _kind = METER_CATALOGUE[s["counter_name"]]
        assert (s["counter_type"], s["counter_unit"]) == (mtype, unit)
    assert METER_CATALOGUE["image.size"][:2] == ("gauge", "B")
    assert METER_CATALOGUE["cpu"][:2] == ("cumulative", "ns")


def test_spec5_resource_id_shapes_and_metadata() -> None:
    """spec 5: instance uuid, <uuid>-vda, instance-XXXXXXXX-<uuid>-tap..., swift project id."""
    spec = CloudSpec(
        samples=2_000,
        meters=["cpu", "disk.device.read.bytes", "network.incoming.bytes", "storage.objects"],
    )
    seen: dict[str, set[str]] = {}
    names = set()
    for s in generate_samples(spec):
        seen.setdefault(s["counter_name"], set()).add(s["resource_id"])
        if s["counter_name"] == "cpu":
            meta = s["resource_metadata"]
            assert isinstance(meta["flavor"], dict)  # nested, flattened by the API
            names.add(meta["display_name"])
    assert all(UUID_RE.match(r) for r in seen["cpu"])
    assert all(r.endswith("-vda") and UUID_RE.match(r[:-4]) for r in seen["disk.device.read.bytes"])
    net = re.compile(r"^instance-[0-9a-f]{8}-[0-9a-f-]{36}-tap[0-9a-f]{8}-[0-9a-f]{2}$")
    assert all(net.match(r) for r in seen["network.incoming.bytes"])
    assert seen["storage.objects"] <= {project_id(i) for i in range(spec.projects)}
    assert any(not n.isascii() for n in names)


def test_ties_whole_seconds_late_arrivals_extremes() -> None:
    """Knobs: 2,500 samples on one timestamp, whole seconds mixed in, late recorded_at, extremes."""
    spec = CloudSpec(
        samples=6_000,
        tie_fraction=0.5,
        tie_size=2_500,
        whole_second_fraction=0.5,
        late_fraction=0.1,
        late_delay=3_600,
        extreme_volumes=True,
    )
    samples = list(generate_samples(spec))
    by_ts = Counter(s["timestamp"] for s in samples)
    assert by_ts.most_common(1)[0][1] == 2_500
    tied = max(by_ts, key=lambda t: by_ts[t])
    assert len({s["counter_name"] for s in samples if s["timestamp"] == tied}) == 1
    stamps = [s["timestamp"] for s in samples]
    assert any(t.microsecond == 0 for t in stamps)
    assert any(t.microsecond != 0 for t in stamps)
    assert all(spec.start <= t < spec.end for t in stamps)
    late = [s for s in samples if s["recorded_at"] - s["timestamp"] > dt.timedelta(minutes=20)]
    assert late
    volumes = {s["counter_volume"] for s in samples}
    assert {9.2e18, 1e-9} <= volumes


def test_demo_project_is_generated_by_default() -> None:
    """The default demo identity owns a project the default generator fills."""
    demo = next(p for p in Identities.default().projects.values() if p.name == "demo")
    projects = {s["project_id"] for s in itertools.islice(generate_samples(), 500)}
    assert demo.id in projects


def test_cloudspec_json_round_trip() -> None:
    """A spec survives JSON (the /_sim/load admin endpoint takes this form)."""
    spec = CloudSpec(seed=3, samples=10, meters=["cpu"], late_delay=5.0)
    assert CloudSpec.from_json(spec.to_json()) == spec
