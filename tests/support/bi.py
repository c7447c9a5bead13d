"""The BI SQL (sql/, docs/bi.md) for tests: a hand-made cloud, the reports' answers computed
here in plain Python, and runners for the documented commands and the report files.

The cloud (`bi_samples`) is small and built so that each definition in docs/bi.md matters:
several projects (one that Keystone does not know), three UTC days and a month end, samples on
both sides of midnight, cumulative counters with resets and equal timestamps, flavors from
`flavor.name` and from `instance_type` (and a resize inside an hour), and a volume resized
inside an hour. The oracle (`expected_report`) reads only these dicts, never the database.
"""

from __future__ import annotations

import math
import re
import subprocess
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ceilometer_simulator import project_id as generated_project_id
from tests.support.tap import sample
from tests.support.targets import REPO_ROOT, mysql_connect, pg_connect

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

    from tests.support.targets import Target

SQL_DIR = REPO_ROOT / "sql"
BI_DOC = REPO_ROOT / "docs" / "bi.md"
DIALECTS: dict[Target, str] = {"target-postgres": "postgres", "target-mysql": "mysql"}
REPORTS = (
    "gauge_daily",
    "delta_daily",
    "cumulative_daily",
    "cpu_hours_daily",
    "flavor_hours_daily",
    "volume_gb_months",
)
VIEWS = ("all_samples", "samples_named", "cumulative_increase")
# The schema/database name the documented commands use (the demo's); tests put theirs instead.
DOC_NAMESPACE = "ceilometer"

T0 = datetime(2024, 3, 30, 20, 0, tzinfo=UTC)  # three UTC days: Mar 30, Mar 31, Apr 1
UNKNOWN_PROJECT = uuid.uuid5(uuid.NAMESPACE_OID, "bi-project-keystone-does-not-know").hex
CPU_NS_PER_HOUR = 3.6e12
HOURS_PER_MONTH = 730


def bi_project_ids(known: Iterable[str]) -> list[str]:
    """The cloud's four projects: three that Keystone knows (`known`, its project ids: the
    generator's projects first, then the others, in id order) and one it does not. With fewer
    than three known, the rest are unknown too."""
    ids = set(known)
    generated = [generated_project_id(i) for i in range(20) if generated_project_id(i) in ids]
    named = [*generated, *sorted(ids - set(generated))][:3]
    spare = [uuid.uuid5(uuid.NAMESPACE_OID, f"bi-spare-{i}").hex for i in range(3 - len(named))]
    return [*named, *spare, UNKNOWN_PROJECT]


# -- the cloud ------------------------------------------------------------------------------


def _message_id(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, "bi-" + "-".join(str(p) for p in parts)))


def _sample(
    meter: str, kind: str, unit: str, moment: datetime, volume: float, **rest: Any
) -> dict[str, Any]:
    resource = rest.pop("resource_id")
    return sample(
        meter,
        moment,
        0,
        counter_type=kind,
        counter_unit=unit,
        counter_volume=volume,
        message_id=rest.pop("message_id", None)
        or _message_id(meter, resource, moment.isoformat(), volume),
        resource_id=resource,
        user_id="bi-user",
        **rest,
    )


def bi_samples(projects: Sequence[str]) -> list[dict[str, Any]]:
    """The hand-made cloud, in the simulator's storage form (`Store.add_samples`)."""
    p0, p1, p2, p3 = projects
    out: list[dict[str, Any]] = []
    midnight = datetime(2024, 3, 31, tzinfo=UTC)

    # memory.usage (gauge, MB): four VMs every 50 minutes over 30 hours, all at the same
    # instants (equal timestamps across resources), plus one just before and one at midnight.
    vms = {"vm-a": p0, "vm-b": p0, "vm-c": p1, "vm-d": p3}
    for n, (vm, project) in enumerate(vms.items()):
        moments = [T0 + timedelta(minutes=50 * i) for i in range(37)]
        levels = [512.0 + 37.5 * n + (i * 7919 % 101) / 4 for i in range(37)]
        moments += [midnight - timedelta(microseconds=1), midnight]
        levels += [4096.0 + n, 4096.0 + n]
        out.extend(
            _sample(
                "memory.usage", "gauge", "MB", moment, volume, resource_id=vm, project_id=project
            )
            for moment, volume in zip(moments, levels, strict=True)
        )

    # image.download (delta, B): per project, irregular, on both sides of two midnights.
    deltas = [
        (p0, T0 + timedelta(minutes=5), 1_000_000.0),
        (p0, midnight - timedelta(seconds=1), 2_500_000.5),
        (p0, midnight, 3_000_000.0),
        (p0, midnight, 7.0),  # an equal timestamp
        (p1, midnight + timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999), 123.25),
        (p1, midnight + timedelta(days=1), 456.5),
        (p3, midnight + timedelta(hours=12), 1e9),
        (p2, midnight + timedelta(days=1, hours=1), 42.0),
    ]
    for n, (project, moment, volume) in enumerate(deltas):
        out.append(
            _sample(
                "image.download",
                "delta",
                "B",
                moment,
                volume,
                resource_id=f"image-{n % 3}",
                project_id=project,
                message_id=_message_id("image.download", n),
            )
        )

    # cpu (cumulative, ns) every 20 minutes, with flavors in the metadata. vm-a: flavor.name
    # (nested, which the API flattens to the key "flavor.name"), resized to m1.medium at
    # 10:10 on Mar 31 (that hour has both); vm-b: instance_type; vm-c: flavor.name, a
    # three-hour gap and a reset (reboot); vm-d: no flavor at all, in the unknown project.
    def cpu_meta(vm: str, moment: datetime) -> dict[str, Any]:
        if vm == "vm-a":
            size = (
                "m1.medium" if moment >= midnight + timedelta(hours=10, minutes=10) else "m1.small"
            )
            return {"display_name": vm, "flavor": {"name": size, "vcpus": "1"}}
        if vm == "vm-b":
            return {"display_name": vm, "instance_type": "m1.large"}
        if vm == "vm-c":
            return {"display_name": vm, "flavor": {"name": "m1.small"}}
        return {"display_name": vm}

    gap = (midnight + timedelta(hours=3), midnight + timedelta(hours=6))
    for n, (vm, project) in enumerate(vms.items()):
        value = 1e12 * (n + 1)
        for i in range(90):
            moment = T0 + timedelta(minutes=20 * i, seconds=n)
            if vm == "vm-c" and gap[0] <= moment < gap[1]:
                continue
            value += 6e11 + 1e9 * ((i * 31 + n) % 17)
            if vm == "vm-c" and i == 40:
                value = 2e10  # reset: the counter starts again from about zero
            if vm == "vm-a" and i == 70:
                value = 5e9
            out.append(
                _sample(
                    "cpu",
                    "cumulative",
                    "ns",
                    moment,
                    value,
                    resource_id=vm,
                    project_id=project,
                    resource_metadata=cpu_meta(vm, moment),
                )
            )
    # Two cpu samples of vm-b at one instant: in message_id order (byte order: "-" before "a",
    # which a locale's collation that skips punctuation would invert) the second is a reset.
    tie = midnight + timedelta(hours=15, minutes=7)
    for prefix, volume in (("tie-1-b", 9.9e13), ("tie-1a-", 1.5e12)):
        out.append(
            _sample(
                "cpu",
                "cumulative",
                "ns",
                tie,
                volume,
                resource_id="vm-b",
                project_id=p0,
                resource_metadata=cpu_meta("vm-b", tie),
                message_id=f"{prefix}-{_message_id('cpu', prefix)}",
            )
        )

    # network.incoming.bytes (cumulative, B): one interface, across midnight, with a reset.
    values = [100.0, 250.0, 250.0, 900.5, 40.0, 1040.0, 5000.0]
    for i, volume in enumerate(values):
        moment = midnight - timedelta(hours=2) + timedelta(minutes=45 * i)
        out.append(
            _sample(
                "network.incoming.bytes",
                "cumulative",
                "B",
                moment,
                volume,
                resource_id="vm-c-tap0",
                project_id=p1,
            )
        )

    # volume.size (gauge, GB), across the end of March: vol-1 resized 10 -> 20 inside the
    # 23:00 hour of Mar 31, samples twice in some hours, none in others; vol-2 in another project.
    volumes = [
        ("vol-1", p0, midnight + timedelta(hours=20, minutes=5), 10.0),
        ("vol-1", p0, midnight + timedelta(hours=21, minutes=5), 10.0),
        ("vol-1", p0, midnight + timedelta(hours=23, minutes=5), 10.0),
        ("vol-1", p0, midnight + timedelta(hours=23, minutes=40), 20.0),
        ("vol-1", p0, midnight + timedelta(hours=24, minutes=5), 20.0),
        ("vol-1", p0, midnight + timedelta(hours=24, minutes=59, seconds=59), 20.0),
        ("vol-1", p0, midnight + timedelta(hours=26, minutes=30), 20.0),
        ("vol-2", p1, midnight + timedelta(hours=22), 5.5),
        ("vol-2", p1, midnight + timedelta(hours=22, minutes=30), 5.5),
        ("vol-2", p1, midnight + timedelta(hours=25), 5.5),
        ("vol-3", p3, midnight + timedelta(hours=2), 1.0),
    ]
    for n, (vol, project, moment, size) in enumerate(volumes):
        out.append(
            _sample(
                "volume.size",
                "gauge",
                "GB",
                moment,
                size,
                resource_id=vol,
                project_id=project,
                message_id=_message_id("volume.size", n),
            )
        )
    return out


def late_meter_samples(project: str) -> list[dict[str, Any]]:
    """Samples of a meter the first load does not have (`disk.read.bytes`)."""
    return [
        _sample(
            "disk.read.bytes",
            "cumulative",
            "B",
            T0 + timedelta(hours=i),
            1000.0 * i,
            resource_id="vm-late",
            project_id=project,
        )
        for i in range(5)
    ]


# -- the answers, from the samples alone -----------------------------------------------------

Row = tuple[Any, ...]


def project_label(names: Mapping[str, str], project: str) -> str:
    """What the views show as `project`: Keystone's name, or the id when it has none."""
    return names.get(project, project)


def _flavor(metadata: Mapping[str, Any]) -> str | None:
    flavor = metadata.get("flavor")
    if isinstance(flavor, dict) and "name" in flavor:
        return str(flavor["name"])
    if "instance_type" in metadata:
        return str(metadata["instance_type"])
    return None


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _of(samples: Iterable[Mapping[str, Any]], meter: str) -> list[Mapping[str, Any]]:
    return [s for s in samples if s["counter_name"] == meter]


def increases(samples: Iterable[Mapping[str, Any]]) -> dict[str, float | None]:
    """message_id -> increase over the previous sample of its resource and cumulative meter
    (in timestamp, then message_id order); the value itself after a reset; None first."""
    series: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for s in samples:
        if s["counter_type"] == "cumulative":
            series[s["resource_id"], s["counter_name"]].append(s)
    out: dict[str, float | None] = {}
    for points in series.values():
        points.sort(key=lambda s: (s["timestamp"], s["message_id"]))
        previous: float | None = None
        for s in points:
            value = float(s["counter_volume"])
            if previous is None:
                out[s["message_id"]] = None
            else:
                out[s["message_id"]] = value if value < previous else value - previous
            previous = value
    return out


def expected_report(
    report: str, samples: Sequence[Mapping[str, Any]], names: Mapping[str, str]
) -> list[Row]:
    """The rows a report must give, in the report's column order (docs/bi.md)."""

    def label(project: str) -> str:
        return project_label(names, project)

    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    if report in ("gauge_daily", "delta_daily"):
        meter = "memory.usage" if report == "gauge_daily" else "image.download"
        for s in _of(samples, meter):
            groups[s["timestamp"].date(), s["project_id"]].append(float(s["counter_volume"]))
        if report == "gauge_daily":
            return [
                (d, p, label(p), sum(v) / len(v), max(v), len(v)) for (d, p), v in groups.items()
            ]
        return [(d, p, label(p), math.fsum(v), len(v)) for (d, p), v in groups.items()]
    if report in ("cumulative_daily", "cpu_hours_daily"):
        rises = increases(samples)
        for s in samples:
            rise = rises.get(s["message_id"])
            if rise is not None:
                groups[
                    s["timestamp"].date(), s["project_id"], s["counter_name"], s["counter_unit"]
                ].append(rise)
        if report == "cumulative_daily":
            return [
                (d, p, label(p), m, u, math.fsum(v), len(v)) for (d, p, m, u), v in groups.items()
            ]
        return [
            (d, p, label(p), math.fsum(v) / CPU_NS_PER_HOUR)
            for (d, p, m, _), v in groups.items()
            if m == "cpu"
        ]
    if report == "flavor_hours_daily":
        hours: dict[tuple[Any, ...], set[tuple[str, datetime]]] = defaultdict(set)
        for s in _of(samples, "cpu"):
            hour = _hour(s["timestamp"])
            hours[hour.date(), s["project_id"], _flavor(s["resource_metadata"])].add(
                (s["resource_id"], hour)
            )
        return [(d, p, label(p), f, len(h)) for (d, p, f), h in hours.items()]
    if report == "volume_gb_months":
        biggest: dict[tuple[Any, ...], float] = {}
        for s in _of(samples, "volume.size"):
            key = (s["project_id"], s["resource_id"], _hour(s["timestamp"]))
            biggest[key] = max(biggest.get(key, -math.inf), float(s["counter_volume"]))
        for (project, _, hour), size in biggest.items():
            groups[hour.date().replace(day=1), project].append(size)
        return [
            (m, p, label(p), math.fsum(v), math.fsum(v) / HOURS_PER_MONTH)
            for (m, p), v in groups.items()
        ]
    msg = f"no such report {report!r}"
    raise ValueError(msg)


# -- comparing ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.date() if value.time() == datetime.min.time() else value
    return value


def _sort_key(row: Row) -> tuple[Any, ...]:
    return tuple((v is not None, 0 if isinstance(v, float) else v) for v in row)


def assert_rows_equal(actual: Iterable[Sequence[Any]], expected: Iterable[Sequence[Any]]) -> None:
    """Equal row for row, floats within a relative 1e-9, in any order (sorted on the other
    columns)."""
    got = sorted((tuple(_plain(v) for v in row) for row in actual), key=_sort_key)
    want = sorted((tuple(_plain(v) for v in row) for row in expected), key=_sort_key)
    assert len(got) == len(want), f"{len(got)} rows, expected {len(want)}:\n{got}\n{want}"
    for g, w in zip(got, want, strict=True):
        assert len(g) == len(w), (g, w)
        for a, b in zip(g, w, strict=True):
            if isinstance(b, float) or isinstance(a, float):
                assert a is not None, (g, w)
                assert b is not None, (g, w)
                assert math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12), (g, w)
            else:
                assert a == b, (g, w)


# -- the documented commands and the SQL files -------------------------------------------------


def sql_files() -> list[Path]:
    """Every .sql file under sql/, sorted."""
    return sorted(SQL_DIR.rglob("*.sql"))


def report_path(target: Target, report: str) -> Path:
    return SQL_DIR / DIALECTS[target] / "reports" / f"{report}.sql"


def documented_commands(block: str) -> list[str]:
    """The command lines of the fenced block that follows `<!-- block -->` in docs/bi.md."""
    text = BI_DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {re.escape(block)} -->\s*```bash\n(.*?)```", text, re.DOTALL)
    assert found, f"docs/bi.md has no block <!-- {block} -->"
    return [
        line for line in found.group(1).splitlines() if line.strip() and not line.startswith("#")
    ]


def run_documented(block: str, namespace: str) -> list[subprocess.CompletedProcess[str]]:
    """Run a documented block's commands from the repository root, with the test's schema or
    database instead of the docs' `ceilometer`; each must succeed."""
    done = []
    for line in documented_commands(block):
        command = re.sub(rf"\b{DOC_NAMESPACE}\b", namespace, line)
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, (
            f"{command}\nexited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
        done.append(proc)
    return done


def query(target: Target, namespace: str, text: str) -> tuple[list[str], list[Row]]:
    """Run one SQL statement (a report file's text, as is) in the schema/database; returns the
    column names and the rows."""
    if target == "target-postgres":
        with pg_connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT set_config('search_path', %s, false)", (namespace,))
            cur.execute(text.encode())
            assert cur.description is not None
            return [c.name for c in cur.description], [tuple(r) for r in cur.fetchall()]
    with mysql_connect(namespace) as link, link.cursor() as mysql_cursor:
        mysql_cursor.execute(text)
        description = mysql_cursor.description or ()
        return [c[0] for c in description], [tuple(r) for r in mysql_cursor.fetchall()]


def run_report(target: Target, namespace: str, report: str) -> tuple[list[str], list[Row]]:
    return query(target, namespace, report_path(target, report).read_text(encoding="utf-8"))


def refresh_call(target: Target) -> str:
    """The statement that refreshes the views later (docs/bi.md)."""
    return (
        "SELECT refresh_ceilometer_views()"
        if target == "target-postgres"
        else "CALL refresh_ceilometer_views()"
    )


@dataclass(frozen=True)
class Warehouse:
    """One loaded schema/database with the views made by the documented command."""

    target: Target
    layout: str
    namespace: str
    projects: list[str]
    samples: list[dict[str, Any]]
    names: dict[str, str]

    def query(self, text: str) -> tuple[list[str], list[Row]]:
        return query(self.target, self.namespace, text)
