"""The Gnocchi source's selections and its answers to bad input, on a real Gnocchi 4.7.1.

Every expected failure is one ERROR line with a sentence to act on and exit code 1, nothing
exported past it; what retrying can fix is retried.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.tap import run_tap, run_tap_process

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_httpserver import HTTPServer

    from tests.gnocchi.stack import GnocchiStack

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def stack(own_gnocchi: GnocchiStack) -> GnocchiStack:
    return own_gnocchi


@pytest.fixture(scope="module")
def cloud(stack: GnocchiStack) -> dict[str, dict[str, str]]:
    """Three instances (one with a Nova-style non-UUID id) and a volume, with measures."""
    made: dict[str, dict[str, str]] = {}
    for key, project, flavor in (
        ("a", "p1", "m1.small"),
        ("b", "p2", "m1.tiny"),
        ("c", "p1", "m1.tiny"),
    ):
        given = f"instance-000{key}-{uuid.uuid4()}" if key == "c" else str(uuid.uuid4())
        resource = stack.create_resource(
            "instance",
            given,
            project_id=project,
            user_id="u1",
            display_name=f"vm-{key}",
            flavor_id=flavor,
            flavor_name=flavor,
        )
        rid = str(resource["id"])
        made[key] = {"resource": rid, "original": given}
        for name, policy in (("cpu", "ceilometer-low-rate"), ("vcpus", "ceilometer-low")):
            metric = stack.create_metric(rid, name, policy)
            made[key][name] = metric
            stack.post_measures(
                metric, [(T0 + i * dt.timedelta(minutes=5), float(i)) for i in range(6)]
            )
    volume = str(uuid.uuid4())
    stack.create_resource("volume", volume, project_id="p2", user_id="u1", display_name="data")
    made["v"] = {
        "resource": volume,
        "volume.size": stack.create_metric(volume, "volume.size", "ceilometer-low"),
    }
    stack.post_measures(made["v"]["volume.size"], [(T0, 20.0)])
    stack.wait_until_processed()
    return made


def config(stack: GnocchiStack, **settings: Any) -> dict[str, Any]:
    return {"gnocchi_basic_user": "admin", "endpoint_override": stack.url, **settings}


def exported_metrics(output: Any) -> set[str]:
    return {
        record["metric_id"]
        for stream, records in output.records.items()
        if stream not in ("resources", "metrics", "archive_policies")
        for record in records
    }


def test_selections_export_exactly_the_metrics_they_name(stack, cloud):
    selections = [
        {"name": "p1-cpu", "search": {"=": {"project_id": "p1"}}, "meters": ["cpu"]},
        {"name": "tiny", "resource_type": "instance", "search": 'flavor_name="m1.tiny"'},
    ]
    out = run_tap(config(stack, selections=selections))
    expected = {cloud["a"]["cpu"], cloud["c"]["cpu"], cloud["b"]["cpu"], cloud["b"]["vcpus"]}
    expected.add(cloud["c"]["vcpus"])
    assert exported_metrics(out) == expected
    # A Nova-style id is exported under Gnocchi's UUID, the id Ceilometer sent kept beside it.
    rows = {r["id"]: r for r in out.dimensions["resources"]}
    assert rows[cloud["c"]["resource"]]["original_resource_id"] == cloud["c"]["original"]


def test_a_metric_name_filter_and_every_record_field(stack, cloud):
    out = run_tap(config(stack, meters=["volume.size"]))
    assert set(out.records) >= {"volume_size"}
    (record,) = out.records["volume_size"]
    assert record == {
        "metric_id": cloud["v"]["volume.size"],
        "metric_name": "volume.size",
        "resource_id": cloud["v"]["resource"],
        "resource_type": "volume",
        "project_id": "p2",
        "user_id": "u1",
        "unit": None,
        "aggregation": "mean",
        "granularity": 300,
        "timestamp": "2026-12-01T00:00:00.000000+00:00",
        "value": 20.0,
        "final": False,  # the newest period of a ceilometer-low metric can still change
    }


@pytest.mark.parametrize(
    ("settings", "sentence"),
    [
        ({"meters": ["cpux"]}, "Gnocchi has no metric named 'cpux' (did you mean cpu, vcpus?)"),
        ({"granularities": [60]}, "No archive policy of the exported metrics has granularity 60 s"),
        ({"aggregations": ["median"]}, "has aggregation 'median'; they have mean, rate:mean"),
        (
            {"selections": [{"name": "s", "search": {"=": {"nope": "x"}}}]},
            "Gnocchi refused the search of selection 's'",
        ),
        (
            {"selections": [{"name": "s", "query": [{"field": "project_id", "value": "p"}]}]},
            "with Gnocchi write a resource `search` instead",
        ),
    ],
)
def test_bad_settings_are_one_sentence(stack, cloud, tmp_path: Path, settings, sentence):
    done = run_tap_process(config(stack, **settings), tmp_path)
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line or "| ERROR" in line]
    assert done.returncode == 1, done.stderr[-2000:]
    assert len(errors) == 1, errors
    assert sentence in errors[0]
    assert "Traceback" not in done.stderr
    assert '"type":"RECORD"' not in done.stdout.replace(" ", "")


def test_auto_tells_gnocchi_from_its_root_and_says_so(stack, cloud, tmp_path: Path):
    done = run_tap_process(config(stack, meters=["vcpus"]), tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Reading Gnocchi at {stack.url} (gnocchi_basic_user is set)" in done.stderr
    token = {k: v for k, v in config(stack).items() if k != "gnocchi_basic_user"}
    token.update(token="not-checked-by-basic-mode", meters=["vcpus"])
    done = run_tap_process(token, tmp_path)
    assert "endpoint_override answers as Gnocchi" in done.stderr


def test_an_endpoint_that_is_not_gnocchi_is_one_sentence(httpserver: HTTPServer, tmp_path: Path):
    httpserver.expect_request("/").respond_with_data("<html><h1>Welcome to nginx</h1></html>")
    httpserver.expect_request("/v1/archive_policy").respond_with_data(
        "<html>Not Found</html>", status=404
    )
    done = run_tap_process(
        {
            "api": "gnocchi",
            "gnocchi_basic_user": "admin",
            "endpoint_override": httpserver.url_for("/"),
        },
        tmp_path,
    )
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert done.returncode == 1
    assert len(errors) == 1, errors
    assert "GET /v1/archive_policy failed with HTTP 404: Not Found." in errors[0]
    assert "metric endpoint" in errors[0]


def test_nan_in_an_answer_becomes_null_and_503_is_retried(
    httpserver: HTTPServer, backoff_waits: list[float]
):
    """T16 and T5: Gnocchi's bare NaN is read as null; a refresh lock's 503 is retried."""
    metric_id = _one_metric_gnocchi(httpserver, "30 days, 0:00:00", measures=False)
    path = f"/v1/metric/{metric_id}/measures"
    httpserver.expect_oneshot_request(path).respond_with_json(
        {"code": 503, "description": "Unable to refresh metric. Metric is locked."}, status=503
    )
    httpserver.expect_request(path).respond_with_data(
        '[["2026-12-01T00:00:00+00:00", 300.0, NaN], ["2026-12-01T00:05:00+00:00", 300.0, 2.5]]',
        content_type="application/json",
    )
    out = run_tap(
        {
            "api": "gnocchi",
            "gnocchi_basic_user": "admin",
            "endpoint_override": httpserver.url_for("/"),
        }
    )
    values = [(r["timestamp"][11:16], r["value"]) for r in out.records["vcpus"]]
    assert values == [("00:00", None), ("00:05", 2.5)]
    assert len(backoff_waits) == 1


def _one_metric_gnocchi(httpserver: HTTPServer, timespan: str, *, measures: bool = True) -> str:
    """A fake Gnocchi of one `vcpus` metric, 5-minute periods kept `timespan`; with `measures`,
    the metric answers no points."""
    policy = {
        "name": "short",
        "back_window": 0,
        "aggregation_methods": ["mean"],
        "definition": [{"granularity": "0:05:00", "points": 12, "timespan": timespan}],
    }
    metric_id = str(uuid.uuid4())
    metric = {
        "id": metric_id,
        "name": "vcpus",
        "unit": None,
        "resource_id": None,
        "archive_policy": policy,
        "creator": "admin",
    }
    httpserver.expect_request("/v1/archive_policy").respond_with_json([policy])
    httpserver.expect_request("/v1/resource_type").respond_with_json([])
    httpserver.expect_request("/v1/search/resource/generic").respond_with_json([])
    httpserver.expect_request("/v1/metric").respond_with_json([metric])
    if measures:
        httpserver.expect_request(f"/v1/metric/{metric_id}/measures").respond_with_json([])
    return metric_id


@pytest.mark.parametrize(
    ("behind", "last_sweep_ago", "warning"),
    [
        (2 * 3600, 60, "were not exported before Gnocchi's retention removed"),
        (3600 - 600, 3600, "less than one run interval"),
        (600, 60, None),
    ],
)
def test_a_bookmark_near_the_retention_edge_is_warned_of(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture, behind, last_sweep_ago, warning
):
    """T7: Gnocchi deletes what is older than the newest point minus the timespan (1 h)."""
    metric_id = _one_metric_gnocchi(httpserver, "1:00:00")
    newest = 1_796_000_000
    now = int(dt.datetime.now(tz=dt.UTC).timestamp())
    state = {
        "bookmarks": {
            "vcpus": {
                "metrics": {metric_id: {"newest": newest, "300:mean": newest - behind}},
                "last_sweep": now - last_sweep_ago,
            }
        }
    }
    with caplog.at_level("WARNING"):
        run_tap(
            {
                "api": "gnocchi",
                "gnocchi_basic_user": "admin",
                "endpoint_override": httpserver.url_for("/"),
            },
            state=state,
        )
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    if warning is None:
        assert not [s for s in said if "retention" in s], said
    else:
        assert [s for s in said if warning in s], said


def test_partitions_share_the_metric_names_once(stack, cloud):
    every = exported_metrics(run_tap(config(stack)))
    outputs = [run_tap(config(stack, partition={"index": i, "count": 3})) for i in range(3)]
    shares = [exported_metrics(output) for output in outputs]
    assert set().union(*shares) == every
    assert sum(len(share) for share in shares) == len(every)
    # The rows every partition would send alike come from partition 0 alone.
    assert ["resources" in o.dimensions for o in outputs] == [True, False, False]
    assert ["archive_policies" in o.records for o in outputs] == [True, False, False]


def test_start_and_end_dates_bound_a_gnocchi_backfill(stack, cloud):
    window = {"start_date": "2026-12-01T00:10:00Z", "end_date": "2026-12-01T00:20:00Z"}
    out = run_tap(config(stack, meters=["vcpus"], **window))
    times = {r["timestamp"][11:16] for r in out.records["vcpus"]}
    assert times == {"00:10", "00:15"}
    end = int(dt.datetime(2026, 12, 1, 0, 20, tzinfo=dt.UTC).timestamp())
    marks = out.state["bookmarks"]["vcpus"]["metrics"]
    assert marks
    assert all(mark["300:mean"] <= end for mark in marks.values())
    # The next run, without end_date, goes on from there: nothing before start_date, all after.
    rest = run_tap(config(stack, meters=["vcpus"]), state=out.state)
    assert {r["timestamp"][11:16] for r in rest.records["vcpus"]} == {"00:20", "00:25"}
