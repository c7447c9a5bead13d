"""Which metrics to export, and the Gnocchi streams that read them.

Metrics are rediscovered every run (T20): a new instance's `cpu` joins its stream with no
bookmark and its whole retained history is read; a deleted one is simply not listed (T8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tap_ceilometer.errors import ApiError, ConfigError
from tap_ceilometer.gnocchi.policy import ArchivePolicy
from tap_ceilometer.gnocchi.schema import resource_schema
from tap_ceilometer.gnocchi.streams import (
    ArchivePolicyStream,
    MeasureSettings,
    MeasureStream,
    MetricRef,
    MetricStream,
    ResourceStream,
)
from tap_ceilometer.naming import stream_names, with_close_matches
from tap_ceilometer.settings import Partition

if TYPE_CHECKING:
    import threading
    from collections.abc import Sequence

    from singer_sdk import Stream, Tap

    from tap_ceilometer.gnocchi.client import GnocchiClient

DIMENSION_STREAMS = ("resources", "metrics", "archive_policies")
RESOURCE_ATTRS = ("id", "type", "project_id", "user_id")
ANY_NAME = "*"  # a selection without `meters`: every metric of its resources


@dataclass(frozen=True)
class GnocchiSelection:
    """A resource search (Gnocchi's filter language, 2.7) and the metric names it exports."""

    name: str
    resource_type: str
    search: Any
    meters: tuple[str, ...] | None

    @classmethod
    def parse(cls, items: Sequence[Any]) -> list[GnocchiSelection]:
        selections, names = [], set()
        for i, item in enumerate(items):
            name = str(item.get("name") or f"selection-{i + 1}")
            if item.get("query"):
                msg = (
                    f"Selection {name!r} has a Ceilometer `query`; with Gnocchi write a resource"
                    ' `search` instead, e.g. {"=": {"project_id": "<id>"}}.'
                )
                raise ConfigError(msg)
            search = item.get("search")
            if not isinstance(search, dict | str) or not search:
                msg = (
                    f"Selection {name!r} needs a `search`: a Gnocchi resource filter, e.g."
                    ' {"=": {"project_id": "<id>"}} or the string project_id="<id>".'
                )
                raise ConfigError(msg)
            if name in names:
                msg = f"Two selections are named {name!r}; give each its own name."
                raise ConfigError(msg)
            names.add(name)
            meters = item.get("meters")
            selections.append(
                cls(
                    name,
                    str(item.get("resource_type") or "generic"),
                    search,
                    tuple(meters) if meters is not None else None,
                )
            )
        return selections


@dataclass
class GnocchiCatalog:
    """The `meters`, `selections` and `partition` settings, resolved against Gnocchi."""

    client: GnocchiClient
    meters: Sequence[str] | None
    selections: Sequence[GnocchiSelection]
    settings: MeasureSettings
    partition: Partition = field(default_factory=Partition)

    @cached_property
    def policy_bodies(self) -> list[dict[str, Any]]:
        """The archive policies as Gnocchi sends them (read once, for two uses)."""
        return self.client.archive_policies()

    def policies(self) -> dict[str, ArchivePolicy]:
        return {p.name: p for p in map(ArchivePolicy.from_api, self.policy_bodies)}

    def _wanted(self, row: dict[str, Any], matched: dict[str, set[str]] | None) -> bool:
        name = row.get("name")
        if not isinstance(name, str) or not name:
            return False  # a metric without a name belongs to no meter stream
        if self.meters is not None and name not in self.meters:
            return False
        if matched is None:
            return True
        names = matched.get(str(row.get("resource_id")), set())
        return name in names or ANY_NAME in names

    def metric_refs(self) -> tuple[list[MetricRef], list[dict[str, Any]]]:
        """The metrics to export (refs for the measure streams, rows for `metrics`)."""
        policies = self.policies()
        resources = {
            str(r["id"]): r
            for r in self.client.resources("generic", None, details=False, attrs=RESOURCE_ATTRS)
        }
        matched = self._metric_names_by_resource()
        every = list(self.client.metrics())
        self._check_names(every)
        rows = [row for row in every if self._wanted(row, matched)]
        if self.partition.count > 1:
            rows = [row for row in rows if self.partition.owns(str(row["name"]))]
        refs = []
        for row in rows:
            policy_body = row.get("archive_policy")
            policy_name = (
                policy_body.get("name")
                if isinstance(policy_body, dict)
                else row.get("archive_policy_name")
            )
            policy = policies.get(str(policy_name))
            if policy is None and isinstance(policy_body, dict):
                policy = ArchivePolicy.from_api(policy_body)
            if policy is None:
                continue
            resource = resources.get(str(row.get("resource_id")), {})
            refs.append(
                MetricRef(
                    id=str(row["id"]),
                    name=str(row["name"]),
                    unit=row.get("unit"),
                    policy=policy,
                    resource_id=row.get("resource_id"),
                    resource_type=resource.get("type"),
                    project_id=resource.get("project_id"),
                    user_id=resource.get("user_id"),
                )
            )
        self._check_series(refs)
        return refs, rows

    def _metric_names_by_resource(self) -> dict[str, set[str]] | None:
        """Resource id -> the metric names its selections export (ANY_NAME: all)."""
        if not self.selections:
            return None
        every = set(self.meters) if self.meters is not None else None
        names: dict[str, set[str]] = {}
        for selection in self.selections:
            try:
                rows = list(
                    self.client.resources(
                        selection.resource_type, selection.search, details=False, attrs=("id",)
                    )
                )
            except ApiError as exc:
                if exc.status not in (400, 404):
                    raise
                msg = f"Gnocchi refused the search of selection {selection.name!r}: {exc}"
                raise ConfigError(msg) from None
            wanted = set(selection.meters) if selection.meters is not None else every
            for row in rows:
                bucket = names.setdefault(str(row["id"]), set())
                bucket.update(wanted if wanted is not None else {ANY_NAME})
        return names

    def _check_names(self, rows: list[dict[str, Any]]) -> None:
        named = set(self.meters or [])
        for selection in self.selections:
            named.update(selection.meters or [])
        if not named:
            return
        listed = {str(row.get("name")) for row in rows}
        unknown = sorted(named - listed)
        if unknown:
            msg = (
                f"Gnocchi has no metric named {with_close_matches(unknown, listed)} visible to"
                " this user. Check the"
                " names (GET /v1/metric) and that the user may see the project."
            )
            raise ConfigError(msg)

    def _check_series(self, refs: list[MetricRef]) -> None:
        """A granularity or aggregation asked for that no exported metric's policy has is a
        mistake worth stopping for; one some policies lack is read where it exists (T12)."""
        policies = {ref.policy for ref in refs}
        if not policies:
            return
        grains = {str(g) for p in policies for g in p.granularities}
        methods = {m for p in policies for m in p.methods}
        asked = [
            ("granularity", f"{g} s", str(g), grains) for g in self.settings.granularities or ()
        ] + [("aggregation", repr(m), m, methods) for m in self.settings.aggregations or ()]
        for what, shown, value, have in asked:
            if value not in have:
                msg = (
                    f"No archive policy of the exported metrics has {what} {shown};"
                    f" they have {', '.join(sorted(have, key=_natural))}."
                )
                raise ConfigError(msg)

    def streams(
        self, tap: Tap, *, stop: threading.Event, reserved: Sequence[str] = ()
    ) -> list[Stream]:
        """A stream per metric name, then the metrics, resources and archive policies (the
        last two in partition 0 only); `reserved`: the names of the tap's other streams."""
        refs, rows = self.metric_refs()
        by_name: dict[str, list[MetricRef]] = {}
        for ref in refs:
            by_name.setdefault(ref.name, []).append(ref)
        names = stream_names(by_name, reserved=(*DIMENSION_STREAMS, *reserved))
        streams: list[Stream] = [
            MeasureStream(
                tap,
                name=names[name],
                metrics=by_name[name],
                client=self.client,
                settings=self.settings,
                stop=stop,
            )
            for name in sorted(by_name)
        ]
        # Each partition's own metrics; the resources and policies, the same rows for every
        # partition, from the first only (parallel targets upserting one row collide).
        streams.append(MetricStream(tap, metrics=rows))
        if self.partition.index == 0:
            streams.append(
                ResourceStream(
                    tap,
                    client=self.client,
                    schema=resource_schema(self.client.resource_types()),
                )
            )
            streams.append(ArchivePolicyStream(tap, policies=self.policy_bodies))
        return streams


def _natural(text: str) -> tuple[int, str]:
    return (int(text), "") if text.isdigit() else (0, text)
