"""A deterministic generator of realistic Ceilometer clouds.

Same ``CloudSpec`` -> same samples, message ids included. Everything is streamed: nothing builds
the whole sample set in memory, so millions of samples can be written to SQLite in batches.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random
import uuid
from typing import TYPE_CHECKING, Any, NamedTuple

from ceilometer_simulator.timeutil import from_us, to_us

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

# Real meter names of the Pike era with their type, unit and resource kind (spec 7).
METER_CATALOGUE: dict[str, tuple[str, str, str]] = {
    "cpu": ("cumulative", "ns", "instance"),
    "cpu.delta": ("delta", "ns", "instance"),
    "cpu_util": ("gauge", "%", "instance"),
    "cpu_l3_cache": ("gauge", "B", "instance"),
    "vcpus": ("gauge", "vcpu", "instance"),
    "memory": ("gauge", "MB", "instance"),
    "memory.usage": ("gauge", "MB", "instance"),
    "memory.resident": ("gauge", "MB", "instance"),
    "memory.swap.in": ("cumulative", "MB", "instance"),
    "memory.swap.out": ("cumulative", "MB", "instance"),
    "memory.bandwidth.total": ("gauge", "B/s", "instance"),
    "disk.read.bytes": ("cumulative", "B", "instance"),
    "disk.write.bytes": ("cumulative", "B", "instance"),
    "disk.read.requests": ("cumulative", "request", "instance"),
    "disk.write.requests": ("cumulative", "request", "instance"),
    "disk.read.bytes.rate": ("gauge", "B/s", "instance"),
    "disk.write.bytes.rate": ("gauge", "B/s", "instance"),
    "disk.read.requests.rate": ("gauge", "request/s", "instance"),
    "disk.device.read.bytes": ("cumulative", "B", "disk"),
    "disk.device.write.bytes": ("cumulative", "B", "disk"),
    "disk.root.size": ("gauge", "GB", "instance"),
    "disk.ephemeral.size": ("gauge", "GB", "instance"),
    "disk.capacity": ("gauge", "B", "instance"),
    "disk.allocation": ("gauge", "B", "instance"),
    "disk.usage": ("gauge", "B", "instance"),
    "disk.latency": ("gauge", "ms", "instance"),
    "disk.iops": ("gauge", "count/s", "instance"),
    "network.incoming.bytes": ("cumulative", "B", "vnic"),
    "network.outgoing.bytes": ("cumulative", "B", "vnic"),
    "network.incoming.packets": ("cumulative", "packet", "vnic"),
    "network.outgoing.packets": ("cumulative", "packet", "vnic"),
    "network.incoming.bytes.rate": ("gauge", "B/s", "vnic"),
    "network.outgoing.bytes.rate": ("gauge", "B/s", "vnic"),
    "network.incoming.packets.drop": ("cumulative", "packet", "vnic"),
    "instance": ("gauge", "instance", "instance"),
    "instance:m1.tiny": ("gauge", "instance", "instance"),
    "instance:m1.small": ("gauge", "instance", "instance"),
    "image": ("gauge", "image", "image"),
    "image.size": ("gauge", "B", "image"),
    "image.download": ("delta", "B", "image"),
    "image.serve": ("delta", "B", "image"),
    "volume": ("gauge", "volume", "volume"),
    "volume.size": ("gauge", "GB", "volume"),
    "volume.create.end": ("delta", "volume", "volume"),
    "snapshot.size": ("gauge", "GB", "volume"),
    "storage.objects": ("gauge", "object", "swift"),
    "storage.objects.size": ("gauge", "B", "swift"),
    "storage.objects.containers": ("gauge", "container", "swift"),
    "storage.containers.objects": ("gauge", "object", "container"),
    "ip.floating": ("gauge", "ip", "fip"),
    "bandwidth": ("delta", "B", "label"),
    "compute.instance.booting.time": ("gauge", "sec", "instance"),
    "hardware.cpu.util": ("gauge", "%", "host"),
}

DEFAULT_METERS: tuple[str, ...] = (
    "cpu",
    "cpu_util",
    "memory.usage",
    "disk.read.bytes",
    "disk.device.write.bytes",
    "network.incoming.bytes",
    "image.size",
    "instance:m1.tiny",
    "storage.objects",
)

EXTREME_VOLUMES: tuple[float, ...] = (9.2e18, 1e-9, 0.0, 1.7976931348623157e308)

_DEFAULT_START = dt.datetime(2017, 6, 1, tzinfo=dt.UTC)

# Display names with non-ASCII characters: exporters must keep them intact end to end.
_DISPLAY_NAMES: tuple[str, ...] = (
    "web-01",
    "wébserveur-ü",
    "数据库-主",
    "Ωmega-worker",
    "build agent #3",
    "db-réplica-ß",
    "кэш-узел",
    "batch",
)
_FLAVORS: tuple[tuple[str, int, int, int, int], ...] = (
    ("m1.tiny", 1, 512, 1, 1),
    ("m1.small", 2, 2048, 20, 2),
    ("m1.medium", 2, 4096, 40, 3),
    ("m1.large", 4, 8192, 80, 4),
)


def project_id(index: int) -> str:
    """The Keystone-shaped (32 hex digits) id of generated project ``index``.

    Independent of the seed, so the simulator's default ``demo`` identity always owns project 0.
    """
    return hashlib.md5(f"tap-ceilometer-project-{index}".encode()).hexdigest()  # noqa: S324


def user_id(project_index: int, index: int) -> str:
    """The Keystone-shaped id of generated user ``index`` of project ``project_index``."""
    return hashlib.md5(f"tap-ceilometer-user-{project_index}-{index}".encode()).hexdigest()  # noqa: S324


def _parse_dt(value: Any) -> dt.datetime:
    result = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if result.tzinfo is None:
        result = result.replace(tzinfo=dt.UTC)
    return result


@dataclasses.dataclass(frozen=True)
class CloudSpec:
    """What cloud to generate. Every field has a default; equal specs give equal samples."""

    seed: int = 0
    samples: int = 1_000
    meters: Sequence[str] = DEFAULT_METERS
    projects: int = 3
    resources_per_project: int = 4
    users_per_project: int = 2
    start: dt.datetime = _DEFAULT_START
    end: dt.datetime = _DEFAULT_START + dt.timedelta(days=1)
    tie_fraction: float = 0.05
    """Share of samples that belong to a tie group (samples of one meter with one timestamp)."""
    tie_size: int = 25
    whole_second_fraction: float = 0.2
    """Share of timestamps with zero microseconds (printed without a fraction)."""
    late_fraction: float = 0.01
    """Share of samples whose recorded_at is ``late_delay`` seconds (x0.5..1.5) after timestamp."""
    late_delay: float = 7_200.0
    extreme_volumes: bool = False
    null_recorded_fraction: float = 0.0
    """Share of legacy rows whose recorded_at is null (spec 5)."""
    source: str = "openstack"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _parse_dt(self.start))
        object.__setattr__(self, "end", _parse_dt(self.end))
        object.__setattr__(self, "meters", tuple(self.meters))
        if self.end <= self.start:
            raise ValueError("CloudSpec.end must be after start")
        if self.samples < 0 or self.projects < 1 or self.resources_per_project < 1:
            raise ValueError("CloudSpec needs samples >= 0, projects >= 1, resources >= 1")
        if self.tie_size < 1 or self.users_per_project < 1 or not self.meters:
            raise ValueError("CloudSpec needs tie_size >= 1, users >= 1 and at least one meter")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CloudSpec:
        """Build from a JSON object (ISO strings for start/end), rejecting unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown CloudSpec fields: {unknown}")
        return cls(**dict(data))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict that ``from_json`` turns back into an equal spec."""
        out = dataclasses.asdict(self)
        out["start"] = self.start.isoformat()
        out["end"] = self.end.isoformat()
        out["meters"] = list(self.meters)
        return out


class Resource(NamedTuple):
    """One generated resource: its ids and the (nested) metadata every sample of it carries."""

    resource_id: str
    project_id: str
    user_id: str
    metadata: dict[str, Any]


class RawSample(NamedTuple):
    """The generator's compact sample: times in epoch microseconds, resource by reference."""

    counter_name: str
    counter_type: str
    counter_unit: str
    counter_volume: float
    message_id: str
    resource: Resource
    source: str
    timestamp_us: int
    recorded_at_us: int | None


def meter_info(name: str) -> tuple[str, str, str]:
    """(type, unit, resource kind) of a meter; unknown names are gauges of instances."""
    return METER_CATALOGUE.get(name, ("gauge", "", "instance"))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def uuid1_like(timestamp_us: int, clock_seq: int, node: int) -> str:
    """A version-1 UUID text for a given time, clock sequence and node (deterministic)."""
    # 100 ns intervals since 1582-10-15, as uuid.uuid1 counts them.
    ticks = timestamp_us * 10 + 0x01B21DD213814000
    time_hi = ((ticks >> 48) & 0x0FFF) | 0x1000
    clock = (clock_seq & 0x3FFF) | 0x8000
    return (
        f"{ticks & 0xFFFFFFFF:08x}-{(ticks >> 32) & 0xFFFF:04x}-{time_hi:04x}-"
        f"{clock:04x}-{node & 0xFFFFFFFFFFFF:012x}"
    )


class _Cloud:
    """Projects, users and resources of every kind the requested meters need."""

    def __init__(self, spec: CloudSpec, rng: random.Random) -> None:
        kinds = {meter_info(m)[2] for m in spec.meters}
        self.by_kind: dict[str, list[Resource]] = {k: [] for k in kinds}
        for p in range(spec.projects):
            pid = project_id(p)
            users = [user_id(p, u) for u in range(spec.users_per_project)]
            for r in range(spec.resources_per_project):
                owner = users[r % len(users)]
                self._add_resources(kinds, pid, owner, (p, r), rng)

    def _add_resources(
        self, kinds: set[str], pid: str, owner: str, index: tuple[int, int], rng: random.Random
    ) -> None:
        p, r = index
        instance_uuid = _uuid(rng)
        libvirt_name = f"instance-{p * 4096 + r + 1:08x}"
        inst_meta = _instance_metadata(instance_uuid, libvirt_name, pid, index, rng)
        for kind in sorted(kinds):
            if kind == "instance":
                res = Resource(instance_uuid, pid, owner, inst_meta)
            elif kind == "disk":
                meta = {**inst_meta, "disk_name": "vda", "device": ["vda"]}
                res = Resource(f"{instance_uuid}-vda", pid, owner, meta)
            elif kind == "vnic":
                tap = f"tap{rng.getrandbits(32):08x}-{rng.getrandbits(8):02x}"
                meta = {
                    **inst_meta,
                    "vnic_name": tap,
                    "mac": "fa:16:3e:" + ":".join(f"{rng.getrandbits(8):02x}" for _ in range(3)),
                    "fref": None,
                    "parameters": {"projmask": None, "ip": f"10.0.{p}.{r + 10}"},
                    "instance_id": instance_uuid,
                }
                res = Resource(f"{libvirt_name}-{instance_uuid}-{tap}", pid, owner, meta)
            elif kind == "image":
                res = Resource(_uuid(rng), pid, owner, _image_metadata(p, r, rng))
            elif kind == "volume":
                meta = {
                    "display_name": f"vol-{r}",
                    "status": "available",
                    "size": 10 * (r + 1),
                    "volume_type": None,
                    "availability_zone": "nova",
                    "event_type": "volume.exists",
                    "host": "volume.cinder-1",
                }
                res = Resource(_uuid(rng), pid, owner, meta)
            elif kind == "swift":
                if r:
                    continue  # one account per project
                res = Resource(pid, pid, owner, {})
            elif kind == "container":
                res = Resource(f"{pid}/container-{r}", pid, owner, {})
            elif kind == "fip":
                meta = {"status": "ACTIVE", "floating_ip_address": f"172.24.4.{r + 10}"}
                res = Resource(_uuid(rng), pid, owner, meta)
            elif kind == "label":
                res = Resource(_uuid(rng), pid, owner, {"label_id": _uuid(rng)})
            else:  # "host"
                res = Resource(f"compute-{r}.example.org", pid, owner, {"resource_url": ""})
            self.by_kind[kind].append(res)


def _instance_metadata(
    instance_uuid: str, name: str, pid: str, index: tuple[int, int], rng: random.Random
) -> dict[str, Any]:
    p, r = index
    flavor = _FLAVORS[(p + r) % len(_FLAVORS)]
    image_id = _uuid(rng)
    meta: dict[str, Any] = {
        "display_name": _DISPLAY_NAMES[(p * 7 + r) % len(_DISPLAY_NAMES)],
        "name": name,
        "instance_id": instance_uuid,
        "instance_type": flavor[0],
        "host": hashlib.sha224(f"compute-{r % 3}{pid}".encode()).hexdigest(),
        "instance_host": f"compute-{r % 3}",
        "flavor": {
            "name": flavor[0],
            "vcpus": flavor[1],
            "ram": flavor[2],
            "disk": flavor[3],
            "ephemeral": 0,
            "id": str(flavor[4]),
        },
        "status": "active",
        "state": "running",
        "task_state": None,
        "image": {"id": image_id},
        "image_ref": image_id,
        "image_ref_url": None,
        "vcpus": flavor[1],
        "memory_mb": flavor[2],
        "disk_gb": flavor[3],
        "root_gb": flavor[3],
        "ephemeral_gb": 0,
        "architecture": "x86_64",
        "os_type": "linux",
        "kernel_id": None,
        "ramdisk_id": None,
        "OS-EXT-AZ:availability_zone": "nova",
    }
    if r % 2 == 0:
        meta["user_metadata"] = {"stack": f"stack-{p}", "server_group": "web.tier"}
        meta["tags"] = ["prod", f"team-{p}"]
    return meta


def _image_metadata(p: int, r: int, rng: random.Random) -> dict[str, Any]:
    return {
        "name": f"cirros-0.3.{r}-x86_64",
        "status": "active",
        "is_public": r % 2 == 0,
        "size": 13_267_968 + r,
        "checksum": f"{rng.getrandbits(128):032x}",
        "container_format": "bare",
        "disk_format": "qcow2",
        "min_disk": 0,
        "min_ram": 0,
        "protected": False,
        "properties": {"hw_qemu_guest_agent": "yes", "prop.with.dots": {"sub": 1}},
        "deleted": False,
        "owner": project_id(p),
    }


class _VolumeModel:
    """Plausible volumes: counters grow per (meter, resource), gauges wander in a range."""

    def __init__(self, rng: random.Random, extreme: bool) -> None:
        self.rng = rng
        self.extreme = extreme
        self.counters: dict[tuple[str, str], float] = {}

    def next(  # noqa: PLR0911 - one return per kind of unit
        self, meter: str, mtype: str, unit: str, resource_id: str
    ) -> float:
        rng = self.rng
        if self.extreme and rng.random() < 0.02:
            return EXTREME_VOLUMES[rng.randrange(len(EXTREME_VOLUMES))]
        if mtype == "cumulative":
            if unit == "ns":
                step = 6e11
            elif unit == "B":
                step = 4096.0 * (1 + int(rng.random() * 5000))
            else:
                step = float(int(rng.random() * 100))
            key = (meter, resource_id)
            start = self.counters.get(key)
            if start is None:
                start = float(int(rng.random() * 1_000_000))
            value = start + step * rng.random()
            value = float(round(value))
            self.counters[key] = value
            return value
        if unit == "%":
            return round(rng.uniform(0.0, 100.0), 6)
        if unit in {"instance", "image", "volume", "vcpu", "ip"}:
            return 1.0
        if unit == "B":
            return float(rng.randrange(1, 10**10))
        if unit in {"MB", "GB"}:
            return float(rng.randrange(1, 16_384))
        return round(rng.uniform(0.0, 1000.0), 3)


def iter_raw_samples(spec: CloudSpec) -> Iterator[RawSample]:
    """Stream the spec's samples, roughly oldest first (ties grouped), deterministically."""
    rng = random.Random(spec.seed)
    cloud = _Cloud(spec, rng)
    volumes = _VolumeModel(rng, spec.extreme_volumes)
    meters = [(m, *meter_info(m)) for m in spec.meters]
    start_us = to_us(spec.start)
    span_us = to_us(spec.end) - start_us
    total = spec.samples
    late_us = int(spec.late_delay * 1_000_000)
    # Probability of starting a tie group at a slot, so that tie_fraction of samples are tied.
    f, size = spec.tie_fraction, spec.tie_size
    group_p = 0.0 if size <= 1 or f <= 0 else min(1.0, f / (size * (1 - f) + f))
    node_mix = (spec.seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFF
    index = 0
    while index < total:
        tie = group_p > 0 and rng.random() < group_p
        count = min(size, total - index) if tie else 1
        offset = int(span_us * (index + rng.random()) / total)
        ts = start_us + min(offset, span_us - 1)
        if rng.random() < spec.whole_second_fraction:
            ts = max(ts - ts % 1_000_000, start_us)
        meter, mtype, unit, kind = meters[int(rng.random() * len(meters))]
        pool = cloud.by_kind[kind]
        first = int(rng.random() * len(pool))
        for k in range(count):
            res = pool[(first + k) % len(pool)]
            volume = volumes.next(meter, mtype, unit, res.resource_id)
            recorded: int | None
            if spec.null_recorded_fraction and rng.random() < spec.null_recorded_fraction:
                recorded = None
            elif spec.late_fraction and rng.random() < spec.late_fraction:
                recorded = ts + int(late_us * rng.uniform(0.5, 1.5))
            else:
                recorded = ts + 1_000 + int(rng.random() * 1_999_000)
            # Odd multiplier: a bijection on the index, so node ids never repeat within a spec.
            node = ((index * 0x5DEECE66D1 + node_mix) | 0x010000000000) & 0xFFFFFFFFFFFF
            message_id = uuid1_like(ts, int(rng.random() * 16384), node)
            yield RawSample(meter, mtype, unit, volume, message_id, res, spec.source, ts, recorded)
            index += 1


def raw_to_storage(raw: RawSample) -> dict[str, Any]:
    """The storage-form dict (the shape ``Store.add_samples`` takes) of a generated sample."""
    res = raw.resource
    return {
        "counter_name": raw.counter_name,
        "counter_type": raw.counter_type,
        "counter_unit": raw.counter_unit,
        "counter_volume": raw.counter_volume,
        "message_id": raw.message_id,
        "project_id": res.project_id,
        "user_id": res.user_id,
        "resource_id": res.resource_id,
        "source": raw.source,
        "timestamp": from_us(raw.timestamp_us),
        "recorded_at": None if raw.recorded_at_us is None else from_us(raw.recorded_at_us),
        "resource_metadata": res.metadata,
    }


def generate_samples(spec: CloudSpec | None = None) -> Iterator[dict[str, Any]]:
    """Stream storage-form sample dicts (aware UTC datetimes) for ``spec``."""
    for raw in iter_raw_samples(spec or CloudSpec()):
        yield raw_to_storage(raw)
