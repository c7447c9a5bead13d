"""The Gnocchi reader's windowing rules against a model of metricd (gnocchi-api.md 4.3-4.5).

The model keeps what Gnocchi keeps: measures wait unprocessed (T5) until a processing batch
takes them; a batch drops every measure older than the first block of the data already
processed (T2) and overwrites equal timestamps; aggregates are the mean of the accepted
measures of each period. Sweeps, at random moments, read only what is processed, through the
reader's own functions (read_start, plan, read_series, MetricProgress), and upsert by key. Once
everything is processed and one more sweep has run, the table must equal Gnocchi's aggregates,
and no row ever sent as final may differ from its value at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from tap_ceilometer.gnocchi.policy import ArchivePolicy, Level, floor_to, parse_timespan
from tap_ceilometer.gnocchi.reader import (
    Batch,
    MetricProgress,
    Series,
    Want,
    plan,
    read_series,
    read_start,
    series_key,
)


@dataclass
class ModelMetric:
    policy: ArchivePolicy
    pending: list[tuple[int, float]] = field(default_factory=list)
    accepted: dict[int, float] = field(default_factory=dict)

    def process(self) -> None:
        if not self.pending:
            return
        if self.accepted:
            # Gnocchi's rule, written out here rather than taken from policy.py: the coarsest
            # granularity B, back_window (+1 with a rate method) blocks before the newest.
            block = max(int(level.granularity) for level in self.policy.levels)
            back = self.policy.back_window + any(m.startswith("rate:") for m in self.policy.methods)
            newest = max(self.accepted)
            first = newest - newest % block - back * block
            batch = [(t, v) for t, v in self.pending if t >= first]
        else:
            batch = list(self.pending)
        for t, v in batch:  # a later measure at the same time overwrites
            self.accepted[t] = v
        self.pending.clear()

    def aggregates(self, granularity: int) -> dict[int, float]:
        periods: dict[int, list[float]] = {}
        for t, v in self.accepted.items():
            periods.setdefault(floor_to(t, granularity), []).append(v)
        return {p: sum(vs) / len(vs) for p, vs in periods.items()}


POLICIES = [
    ArchivePolicy("low", 0, frozenset({"mean"}), (Level(300, None),)),
    ArchivePolicy("low-rate", 0, frozenset({"mean", "rate:mean"}), (Level(300, None),)),
    ArchivePolicy("medium", 0, frozenset({"mean"}), (Level(60, None), Level(3600, None))),
    ArchivePolicy("bw2", 2, frozenset({"mean"}), (Level(60, None), Level(420, None))),
]

events = st.lists(
    st.one_of(
        st.tuples(
            st.just("measure"),
            st.integers(0, 3),  # metric
            st.integers(-3000, 600),  # seconds relative to the metric's newest accepted point
            st.floats(-1e6, 1e6, allow_nan=False),
        ),
        st.tuples(st.just("process"), st.integers(0, 3), st.just(0), st.just(0.0)),
        st.tuples(st.just("sweep"), st.just(0), st.just(0), st.just(0.0)),
    ),
    max_size=60,
)


def sweep(
    metrics: dict[str, ModelMetric],
    marks: dict[str, dict[str, int]],
    table: dict[tuple[str, int, int], tuple[float, bool]],
    per_request: int,
) -> None:
    progress = {mid: MetricProgress(m.policy) for mid, m in metrics.items()}
    wants = []
    for mid, metric in metrics.items():
        grain = metric.policy.granularities[0]
        start = read_start(metric.policy, marks.get(mid), grain, "mean")
        progress[mid].read[series_key(grain, "mean")] = start
        wants.append(Want(Series(mid, grain, "mean"), start))

    def fetch_batch(batch: Batch) -> dict[Series, list[tuple[int, float | None]]]:
        answer = {}
        for want in batch.wants:
            aggregates = metrics[want.series.metric_id].aggregates(batch.granularity)
            answer[want.series] = [
                (t, v) for t, v in aggregates.items() if batch.start is None or t >= batch.start
            ]
        return answer

    for batch in plan(wants, per_request):
        for want, points in read_series([batch], fetch_batch, lambda w: None):
            track = progress[want.series.metric_id]
            track.saw(points)
            line = track.final_until(want.series.granularity)
            for t, v in points:
                assert v is not None
                table[(want.series.metric_id, want.series.granularity, t)] = (
                    v,
                    line is not None and t < line,
                )
        for want in batch.wants:
            mid = want.series.metric_id
            marks[mid] = progress[mid].bookmark(marks.get(mid))


@settings(max_examples=300, deadline=None)
@given(
    events=events,
    policies=st.lists(st.sampled_from(POLICIES), min_size=4, max_size=4),
    per_request=st.integers(1, 4),
    base=st.integers(1_700_000_000, 1_800_000_000),
)
def test_every_aggregate_ends_exact_and_final_rows_never_change(
    events, policies, per_request, base
):
    metrics = {f"m{i}": ModelMetric(policy) for i, policy in enumerate(policies)}
    marks: dict[str, dict[str, int]] = {}
    table: dict[tuple[str, int, int], tuple[float, bool]] = {}
    sent_final: dict[tuple[str, int, int], float] = {}
    for kind, index, offset, value in events:
        metric = metrics[f"m{index}"]
        if kind == "measure":
            newest = max(metric.accepted, default=base)
            metric.pending.append((newest + offset, value))
        elif kind == "process":
            metric.process()
        else:
            sweep(metrics, marks, table, per_request)
            for key, (v, final) in table.items():
                if final:
                    sent_final.setdefault(key, v)
    for metric in metrics.values():
        metric.process()
    sweep(metrics, marks, table, per_request)
    expected = {
        (mid, m.policy.granularities[0], t): v
        for mid, m in metrics.items()
        for t, v in m.aggregates(m.policy.granularities[0]).items()
    }
    assert {k: v for k, (v, _) in table.items()} == expected
    for key, value in sent_final.items():
        assert expected[key] == value, f"{key} was sent as final, then changed"


@given(st.integers(0, 400 * 86400), st.sampled_from(POLICIES))
def test_the_final_line_is_never_after_the_first_block(newest, policy):
    for grain in policy.granularities:
        line = policy.final_until(newest, grain)
        assert line <= policy.first_block(newest)
        assert line % grain == 0


def test_a_wider_back_window_moves_a_bookmark_back():
    narrow = POLICIES[2]
    wide = ArchivePolicy("medium", 3, narrow.methods, narrow.levels)
    mark = {"newest": 10 * 3600 + 1800, "60:mean": narrow.final_until(10 * 3600 + 1800, 60)}
    assert mark["60:mean"] == 10 * 3600
    assert read_start(wide, mark, 60, "mean") == 7 * 3600


def test_timespans_parse_as_gnocchi_writes_them():
    assert parse_timespan("0:05:00") == 300
    assert parse_timespan("30 days, 0:00:00") == 30 * 86400
    assert parse_timespan("1 day, 0:00:00") == 86400
    assert parse_timespan("0:00:00.500000") == 0.5
    assert parse_timespan(None) is None
    assert parse_timespan(3600) == 3600


def test_batches_group_by_granularity_and_start():
    wants = [Want(Series(f"m{i}", 300, "mean"), None if i < 2 else 1000 * i) for i in range(5)]
    wants.append(Want(Series("x", 60, "mean"), 5))
    batches = plan(wants, 2)
    assert [(b.granularity, b.start, len(b.wants)) for b in batches] == [
        (60, 5, 1),
        (300, None, 2),
        (300, 2000, 2),
        (300, 4000, 1),
    ]
