"""The Gnocchi streams: measures of one metric name, and the resources, metrics and policies.

Plain `singer_sdk.Stream`s (see client.py of the package for why not RESTStreams), handed
their client, read settings and the run's stop flag when they are built.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from tap_ceilometer.errors import ApiError, MalformedApiDataError
from tap_ceilometer.gnocchi.client import epoch_seconds
from tap_ceilometer.gnocchi.policy import parse_timespan
from tap_ceilometer.gnocchi.reader import (
    Batch,
    MetricProgress,
    Point,
    Series,
    Want,
    plan,
    read_series,
    read_start,
    series_key,
)
from tap_ceilometer.gnocchi.schema import (
    ARCHIVE_POLICY_SCHEMA,
    MEASURE_KEYS,
    MEASURE_SCHEMA,
    METRIC_SCHEMA,
)
from tap_ceilometer.streams import QuietStream
from tap_ceilometer.timestamps import parse_api_time, utc_iso

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterable, Mapping, Sequence

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_ceilometer.gnocchi.client import GnocchiClient
    from tap_ceilometer.gnocchi.policy import ArchivePolicy

METRICS_KEY = "metrics"  # the stream's state: metric id -> reader.Bookmark
LAST_SWEEP_KEY = "last_sweep"  # epoch s of the last finished sweep: the run interval
RESOURCE_BOOKMARK = "revision_bookmark"
RESOURCE_OVERLAP = timedelta(minutes=5)  # longer than any indexer transaction (T10)


@dataclass(frozen=True)
class MetricRef:
    """One metric to export, with what the record needs of its resource."""

    id: str
    name: str
    unit: str | None
    policy: ArchivePolicy
    resource_id: str | None = None
    resource_type: str | None = None
    project_id: str | None = None
    user_id: str | None = None


@dataclass(frozen=True)
class MeasureSettings:
    """Which series of each metric to read, and how many per request."""

    granularities: tuple[int, ...] | None = None  # None: each policy's default_granularity
    aggregations: tuple[str, ...] | None = None  # None: mean and rate:mean where present
    per_request: int = 100
    start: int | None = None  # start_date, epoch s
    end: int | None = None  # end_date, epoch s

    def series_of(self, policy: ArchivePolicy) -> list[tuple[int, str]]:
        """(granularity, aggregation) pairs the policy has: never one it lacks (T12)."""
        if self.granularities is None:
            default = policy.default_granularity()
            grains = [default] if default is not None else []
        else:
            grains = [g for g in self.granularities if g in policy.granularities]
        if self.aggregations is None:
            methods: list[str] = [m for m in ("mean", "rate:mean") if m in policy.methods]
            methods = methods or sorted(policy.methods)
        else:
            methods = [m for m in self.aggregations if m in policy.methods]
        return [(g, m) for g in grains for m in methods]


class MeasureStream(QuietStream):
    """Aggregates of every metric of one name (all `cpu` metrics in one stream).

    The stream's state holds one small bookmark per metric (reader.py): the newest period
    seen and, per (granularity, aggregation), the first period that may still change.
    """

    primary_keys = MEASURE_KEYS
    replication_key = "timestamp"
    # Series are read one after another, each oldest first: timestamps do not rise
    # across the stream, and the bookmarks are the reader's, not the SDK's.
    is_sorted = False

    def __init__(
        self,
        tap: Tap,
        *,
        name: str,
        metrics: Sequence[MetricRef],
        client: GnocchiClient,
        settings: MeasureSettings,
        stop: threading.Event,
    ) -> None:
        self.metrics = list(metrics)
        self.client = client
        self.settings = settings
        self.stop = stop
        self._gone: set[str] = set()  # metrics found deleted (404) during this run
        super().__init__(tap, name=name, schema=MEASURE_SCHEMA)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        state = self.get_context_state(context)
        marks: dict[str, dict[str, int]] = state.setdefault(METRICS_KEY, {})
        by_id = {m.id: m for m in self.metrics}
        progress: dict[str, MetricProgress] = {}
        remaining: dict[str, int] = {}
        wants: list[Want] = []
        for metric in self.metrics:
            pairs = self.settings.series_of(metric.policy)
            progress[metric.id] = MetricProgress(metric.policy)
            remaining[metric.id] = len(pairs)
            for grain, method in pairs:
                start = read_start(
                    metric.policy, marks.get(metric.id), grain, method, self.settings.start
                )
                progress[metric.id].read[series_key(grain, method)] = start
                wants.append(Want(Series(metric.id, grain, method), start))
        self._warn_near_retention(marks, state.get(LAST_SWEEP_KEY))
        for batch in plan(wants, self.settings.per_request):
            if self.stop.is_set():
                self.logger.info("Stream %s: stopping on request.", self.name)
                return
            done: list[str] = []
            for want, points in read_series([batch], self._fetch_batch, self._fetch_one):
                metric = by_id[want.series.metric_id]
                track = progress[metric.id]
                track.saw(points)
                line = track.final_until(want.series.granularity)
                for moment, value in points:
                    if self.settings.end is not None and moment >= self.settings.end:
                        continue
                    yield self._record(metric, want.series, moment, value, line)
                remaining[metric.id] -= 1
                if not remaining[metric.id]:
                    done.append(metric.id)
            # Every record of these metrics is written: their bookmarks may move.
            for metric_id in done:
                if metric_id not in self._gone:
                    marks[metric_id] = progress[metric_id].bookmark(
                        marks.get(metric_id), self.settings.end
                    )
        self._forget(marks, set(by_id), self._gone)
        state[LAST_SWEEP_KEY] = int(time.time())

    # --- reading -------------------------------------------------------------------------------

    def _fetch_batch(self, batch: Batch) -> dict[Series, list[Point]] | None:
        refs = [(w.series.metric_id, w.series.aggregation) for w in batch.wants]
        if len(refs) == 1:
            return None  # one series: the plain measures request says more on failure
        try:
            answer = self.client.aggregates(refs, batch.granularity, batch.start)
        except ApiError as exc:
            if exc.status not in (400, 404):
                raise
            self.logger.info(
                "Stream %s: Gnocchi refused %d series in one request (%s); reading them one"
                " by one.",
                self.name,
                len(refs),
                exc,
            )
            return None
        series: dict[Series, list[Point]] = {}
        for want in batch.wants:
            raw = (answer.get(want.series.metric_id) or {}).get(want.series.aggregation) or []
            series[want.series] = self._points(raw, want.series)
        return series

    def _fetch_one(self, want: Want) -> list[Point] | None:
        s = want.series
        raw = self.client.measures(s.metric_id, s.granularity, s.aggregation, want.start)
        if raw is None:
            if s.metric_id not in self._gone:
                self.logger.info(
                    "Metric %s (%s) was deleted in Gnocchi: it is not read any more; its rows"
                    " stay.",
                    s.metric_id,
                    self.name,
                )
            self._gone.add(s.metric_id)
            return None
        return self._points(raw, s)

    def _points(self, raw: Any, series: Series) -> list[Point]:
        points: list[Point] = []
        try:
            for moment, grain, value in raw:
                if float(grain) != series.granularity:
                    continue
                number = None if value is None else float(value)
                points.append(
                    (
                        epoch_seconds(moment),
                        number if number is None or math.isfinite(number) else None,
                    )
                )
        except (TypeError, ValueError) as exc:
            msg = (
                f"Gnocchi sent malformed measures for metric {series.metric_id} "
                f"({series.aggregation} at {series.granularity} s): {exc}. Nothing of it was "
                "exported and its bookmark did not move."
            )
            raise MalformedApiDataError(msg) from None
        return points

    def _record(
        self, metric: MetricRef, series: Series, moment: int, value: float | None, line: int | None
    ) -> dict[str, Any]:
        return {
            "metric_id": metric.id,
            "metric_name": metric.name,
            "resource_id": metric.resource_id,
            "resource_type": metric.resource_type,
            "project_id": metric.project_id,
            "user_id": metric.user_id,
            "unit": metric.unit,
            "aggregation": series.aggregation,
            "granularity": series.granularity,
            "timestamp": utc_iso(datetime.fromtimestamp(moment, tz=UTC)),
            "value": value,
            "final": line is not None and moment < line,
        }

    # --- bookmarks ------------------------------------------------------------------------------

    def _forget(self, marks: dict[str, Any], listed: set[str], gone: set[str]) -> None:
        """Bookmarks of metrics no longer listed or deleted go: state stays small (T8)."""
        stale = [metric_id for metric_id in marks if metric_id not in listed or metric_id in gone]
        for metric_id in stale:
            del marks[metric_id]
        if stale:
            self.logger.info(
                "Stream %s: %d metrics no longer in Gnocchi (or no longer selected); their"
                " rows stay, their bookmarks are dropped.",
                self.name,
                len(stale),
            )

    def _warn_near_retention(self, marks: Mapping[str, Mapping[str, int]], last: Any) -> None:
        """Gnocchi deletes aggregates older than the newest point minus the timespan (T7):
        warn when a bookmark is closer to that edge than one run interval."""
        interval = max(0, int(time.time()) - int(last)) if isinstance(last, int) else 0
        lost = close = 0
        for metric in self.metrics:
            mark = marks.get(metric.id) or {}
            newest = mark.get("newest")
            if newest is None:
                continue
            for grain, method in self.settings.series_of(metric.policy):
                span, start = metric.policy.timespan(grain), mark.get(series_key(grain, method))
                if span is None or start is None:
                    continue
                edge = newest - span
                if start < edge:
                    lost += 1
                elif start - edge < interval:
                    close += 1
        if lost:
            self.logger.warning(
                "Stream %s: %d series were not exported before Gnocchi's retention removed"
                " their oldest periods; run more often than the archive policy's timespan.",
                self.name,
                lost,
            )
        if close:
            self.logger.warning(
                "Stream %s: %d series are less than one run interval (%d s) from Gnocchi's"
                " retention edge; run more often or the oldest periods will be lost.",
                self.name,
                close,
                interval,
            )

    # Private in singer-sdk 0.54.9 (Stream._increment_stream_state): bookmarks are the
    # reader's (get_records), moved only once every record they cover is written.
    @override
    def _increment_stream_state(
        self, latest_record: dict[str, Any], *, context: Context | None = None
    ) -> None:
        return


class MetricStream(QuietStream):
    """Every metric the export covers, read whole each run (Gnocchi has no change time)."""

    primary_keys = ("id",)

    def __init__(self, tap: Tap, *, metrics: Sequence[dict[str, Any]]) -> None:
        self.rows = metrics
        super().__init__(tap, name="metrics", schema=METRIC_SCHEMA)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        for row in self.rows:
            policy = row.get("archive_policy")
            yield {
                "id": row.get("id"),
                "name": row.get("name"),
                "unit": row.get("unit"),
                "resource_id": row.get("resource_id"),
                "archive_policy_name": policy.get("name")
                if isinstance(policy, dict)
                else row.get("archive_policy_name"),
                "creator": row.get("creator"),
            }


class ArchivePolicyStream(QuietStream):
    """The archive policies: what each granularity keeps and for how long, a row each."""

    primary_keys = ("name", "granularity")

    def __init__(self, tap: Tap, *, policies: Sequence[dict[str, Any]]) -> None:
        self.policies = policies  # as the catalog read them: no second request
        super().__init__(tap, name="archive_policies", schema=ARCHIVE_POLICY_SCHEMA)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        for policy in self.policies:
            for item in policy.get("definition") or []:
                yield {
                    "name": policy.get("name"),
                    "granularity": parse_timespan(item.get("granularity")),
                    "points": item.get("points"),
                    "timespan": parse_timespan(item.get("timespan")),
                    "back_window": policy.get("back_window"),
                    "aggregation_methods": sorted(policy.get("aggregation_methods") or []),
                }


class ResourceStream(QuietStream):
    """Resources with their history: one row per revision, read incrementally (2.8).

    Each run searches the revisions that began or ended after the bookmark less an overlap
    (a revision's time is taken before its transaction commits, T10), sorted by id so that
    pages never shift (T3), and the target upserts by (id, revision_start).
    """

    primary_keys = ("id", "revision_start")
    replication_key = "revision_start"
    is_sorted = False

    def __init__(
        self,
        tap: Tap,
        *,
        client: GnocchiClient,
        schema: dict[str, Any],
        search: Any = None,
    ) -> None:
        self.client = client
        self.search = search
        super().__init__(tap, name="resources", schema=schema)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        state = self.get_context_state(context)
        bookmark = state.get(RESOURCE_BOOKMARK)
        condition: Any = self.search
        if bookmark:
            since = utc_iso(parse_api_time(bookmark) - RESOURCE_OVERLAP)
            changed = {"or": [{">=": {"revision_start": since}}, {">=": {"revision_end": since}}]}
            condition = changed if condition is None else {"and": [condition, changed]}
        properties = self.schema["properties"]
        times = {k for k, v in properties.items() if v.get("format") == "date-time"}
        newest = bookmark
        for row in self.client.resources("generic", condition, history=True, details=True):
            record = {key: row.get(key) for key in properties}
            for key in times:
                value = record[key]
                if isinstance(value, str):
                    record[key] = _utc(value)
            for key in ("revision_start", "revision_end"):
                moment = record.get(key)
                if moment and (newest is None or moment > newest):
                    newest = moment
            yield record
        if newest:
            state[RESOURCE_BOOKMARK] = newest

    @override
    def _increment_stream_state(
        self, latest_record: dict[str, Any], *, context: Context | None = None
    ) -> None:
        return


def _utc(value: str) -> str:
    try:
        return utc_iso(parse_api_time(value))
    except ValueError:
        msg = f"Gnocchi sent a resource time {value!r} that is not ISO 8601."
        raise MalformedApiDataError(msg) from None
