"""Which aggregates to ask for, in how many requests, and where each bookmark moves: pure.

A metric's aggregates keep changing after they are first read (T1): the open period, every
period of the current block and `back_window` blocks back, and whatever a processing backlog
(T5) or a late measure will recompute. All of these lie at or after the metric's first block
(policy.py), measured from the newest measure Gnocchi has processed, which only ever grows.
So each (metric, granularity, aggregation) keeps one bookmark, `final_until`: the first period
that could still change when it was last read. Every run reads again from there and the target
upserts by the primary key; a period before it can never change again, so nothing is lost and
no stale value stays. Measures still waiting for metricd are simply read by a later run: when
processed they change periods after the line, never before it.

Requests scale with data, not with metrics (T6): the series of many metrics that share a
granularity go in one `POST /v1/aggregates`, from the earliest of their starts; a series'
points before its own start are dropped here. The I/O is injected, as in v2/reader.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tap_ceilometer.gnocchi.policy import floor_to

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from tap_ceilometer.gnocchi.policy import ArchivePolicy

# The state of one metric: {"newest": epoch s, "<granularity>:<aggregation>": final_until}.
NEWEST = "newest"
Bookmark = dict[str, int]
Point = tuple[int, float | None]  # period start (epoch s), value


def series_key(granularity: int, aggregation: str) -> str:
    return f"{granularity}:{aggregation}"


@dataclass(frozen=True)
class Series:
    """The aggregates of one metric at one granularity and aggregation method."""

    metric_id: str
    granularity: int
    aggregation: str


@dataclass(frozen=True)
class Want:
    """One series to read, from `start` (None: everything the metric retains)."""

    series: Series
    start: int | None


@dataclass(frozen=True)
class Batch:
    """Series of one granularity read in one request, from the earliest of their starts."""

    granularity: int
    start: int | None
    wants: tuple[Want, ...]


def read_start(
    policy: ArchivePolicy,
    bookmark: Mapping[str, int] | None,
    granularity: int,
    aggregation: str,
    floor: int | None = None,
) -> int | None:
    """Where a series is read from: its final line, moved back if the policy's window grew.

    An operator may raise `back_window` at any time (4.4), which makes periods mutable again
    that were final under the old policy: the line is recomputed from the newest point seen
    with today's policy, and the earlier of the two is kept.
    """
    stored = (bookmark or {}).get(series_key(granularity, aggregation))
    newest = (bookmark or {}).get(NEWEST)
    start: int | None = stored
    if stored is not None and newest is not None:
        start = min(stored, policy.final_until(newest, granularity))
    if floor is not None:
        start = floor if start is None else max(start, floor_to(floor, granularity))
    return start


def plan(wants: Sequence[Want], per_request: int) -> list[Batch]:
    """Group series by granularity, then by start, at most `per_request` to a request.

    Sorting by start keeps a new metric (whole history) from dragging idle ones, whose
    window is a period or two, into a long read.
    """
    by_grain: dict[int, list[Want]] = {}
    for want in wants:
        by_grain.setdefault(want.series.granularity, []).append(want)
    batches = []
    for grain in sorted(by_grain):
        ordered = sorted(
            by_grain[grain],
            key=lambda w: (w.start is not None, w.start or 0, w.series.metric_id),
        )
        for i in range(0, len(ordered), per_request):
            chunk = tuple(ordered[i : i + per_request])
            starts = [w.start for w in chunk]
            start = None if None in starts else min(s for s in starts if s is not None)
            batches.append(Batch(grain, start, chunk))
    return batches


@dataclass
class MetricProgress:
    """What one run learned of a metric: the newest period seen and the series read."""

    policy: ArchivePolicy
    newest: int | None = None
    read: dict[str, int | None] = field(default_factory=dict)  # series key -> its start

    def saw(self, points: Sequence[Point]) -> None:
        if points:
            last = max(p[0] for p in points)
            self.newest = last if self.newest is None else max(self.newest, last)

    def bookmark(self, previous: Mapping[str, int] | None, end: int | None = None) -> Bookmark:
        """The metric's next state: each series read moves to the final line of what was
        seen (never past `end`, the end_date); a series not read keeps its bookmark."""
        mark: Bookmark = dict(previous or {})
        newest = self.newest
        if newest is None:  # nothing seen this run: nothing learned
            return mark
        if mark.get(NEWEST) is not None:
            newest = max(newest, mark[NEWEST])
        mark[NEWEST] = newest
        for key, start in self.read.items():
            grain = int(key.split(":", 1)[0])
            line = self.policy.final_until(newest, grain)
            if end is not None:
                line = min(line, floor_to(end, grain))
            # Never before `start`: newest only grows, and `start` came from an earlier
            # newest under today's policy (read_start), so the line is at or after it.
            mark[key] = line if start is None else max(line, start)
        return mark

    def final_until(self, granularity: int) -> int | None:
        if self.newest is None:
            return None
        return self.policy.final_until(self.newest, granularity)


def read_series(
    batches: Sequence[Batch],
    fetch_batch: Callable[[Batch], Mapping[Series, list[Point]] | None],
    fetch_one: Callable[[Want], list[Point] | None],
) -> Iterator[tuple[Want, list[Point]]]:
    """Each wanted series with its points from its own start, oldest first.

    `fetch_batch` answers a batch, or None when Gnocchi refused it as a whole (a metric
    deleted meanwhile, a policy that changed): its series are then read one by one.
    `fetch_one` answers None for a series that is gone (the metric was deleted: T8).
    """
    for batch in batches:
        answer = fetch_batch(batch)
        for want in batch.wants:
            if answer is None:
                points = fetch_one(want)
                if points is None:
                    continue
            else:
                points = answer.get(want.series, [])
            start = want.start
            kept = sorted(p for p in points if start is None or p[0] >= start)
            yield want, kept
