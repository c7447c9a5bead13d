"""Faults survived with nothing lost: the simulator's fault injection, token expiry, bad data."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from singer_sdk.exceptions import FatalAPIError

from ceilometer_simulator import FaultRule
from tap_ceilometer.errors import ApiError, CredentialsError, MalformedApiDataError
from tap_ceilometer.tap import TapCeilometer
from tests.support.tap import expected_records, parse_messages, run_tap, sample, tap_config

if TYPE_CHECKING:
    from pytest_httpserver import HTTPServer

    from ceilometer_simulator import Simulator

pytestmark = pytest.mark.usefixtures("backoff_waits")

T0 = datetime(2024, 6, 1, tzinfo=UTC)
QUERY = r"^/v2/query/samples"
METER = "disk.write.bytes"
STREAM = "disk_write_bytes"


@pytest.fixture
def cloud(sim: Simulator) -> Simulator:
    sim.store.add_samples(sample(METER, T0 + timedelta(seconds=i // 4), i) for i in range(1_200))
    return sim


def _exported(config: dict[str, Any], state: dict[str, Any] | None = None) -> dict[str, Any]:
    output = run_tap(config, state)
    return {record["message_id"]: record for record in output.records.get(STREAM, [])}


def _assert_complete(sim: Simulator, records: dict[str, Any]) -> None:
    assert set(records) == set(expected_records(sim, METER))


@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(method="POST", path=QUERY, action="status", status=503, rate=0.4),
        FaultRule(method="POST", path=QUERY, action="status", status=500, times=3),
        FaultRule(method="POST", path=QUERY, action="drop", rate=0.3),
        FaultRule(method="POST", path=QUERY, action="truncate", times=3),
        FaultRule(method="POST", path=QUERY, action="garbage", times=2),
    ],
    ids=["503-at-random", "500-three-times", "dropped-connections", "truncated", "not-json"],
)
def test_transient_faults_are_retried_and_nothing_is_lost(cloud: Simulator, fault: FaultRule):
    cloud.faults.add(fault)
    records = _exported(tap_config(cloud, page_size=100, max_retries=8))
    _assert_complete(cloud, records)


def test_a_page_too_slow_to_answer_is_split(cloud: Simulator):
    cloud.faults.add(FaultRule(method="POST", path=QUERY, action="slow", delay=1.5, times=4))
    records = _exported(tap_config(cloud, page_size=400, max_retries=1, request_timeout=0.5))
    _assert_complete(cloud, records)
    limits = [r.json["limit"] for r in cloud.requests if r.path == "/v2/query/samples"]
    assert limits[0] == 400
    assert min(limits) < 400


def test_a_token_revoked_mid_run_is_renewed_and_the_run_completes(cloud: Simulator):
    tap = TapCeilometer(config=tap_config(cloud, page_size=300))
    tap.keystone_session.get_token()  # authenticated before the run, as a long run would be
    cloud.revoke_tokens()
    cloud.reset_requests()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        tap.sync_all()
    statuses = [r.status for r in cloud.requests if r.path.startswith("/v2/")]
    assert statuses.count(401) == 1
    assert statuses[-1] == 200
    assert len(parse_messages(out.getvalue()).records[STREAM]) == 1_200


def test_a_token_refused_by_a_sample_query_is_renewed_and_used_at_once(
    cloud: Simulator, backoff_waits: list[float]
):
    cloud.faults.add(FaultRule(method="POST", path=QUERY, action="status", status=401, times=1))
    records = _exported(tap_config(cloud, page_size=300))
    _assert_complete(cloud, records)
    queries = [r for r in cloud.requests if r.path == "/v2/query/samples"]
    assert [r.status for r in queries[:2]] == [401, 200]
    assert backoff_waits == [], "a renewed token is used at once, not after a backoff wait"


def test_a_token_refused_even_after_renewal_stops_the_run(cloud: Simulator):
    cloud.faults.add(FaultRule(method="POST", path=QUERY, action="status", status=401))
    with pytest.raises(CredentialsError, match="401"):
        run_tap(tap_config(cloud, page_size=300))


def test_client_errors_are_not_retried(cloud: Simulator):
    cloud.faults.add(FaultRule(method="POST", path=QUERY, action="status", status=400))
    cloud.reset_requests()
    with pytest.raises(ApiError, match="HTTP 400"):
        run_tap(tap_config(cloud, page_size=300))
    assert len([r for r in cloud.requests if r.path == "/v2/query/samples"]) == 1


def test_a_server_that_never_recovers_stops_with_its_error(cloud: Simulator):
    cloud.faults.add(FaultRule(method="POST", path=QUERY, action="status", status=503))
    with pytest.raises(FatalAPIError, match="503"):
        run_tap(tap_config(cloud, page_size=40, max_retries=1))


# --- data that is not what Ceilometer sends (a stand-in server, token auth) -------------------


def _good(index: int, **overrides: Any) -> dict[str, Any]:
    item = {
        "id": f"id-{index:04d}",
        "meter": "cpu_util",
        "type": "gauge",
        "unit": "%",
        "volume": 1.5,
        "user_id": "u",
        "project_id": "p",
        "resource_id": "r",
        "source": "openstack",
        "timestamp": f"2024-01-01T00:00:{index:02d}",
        "recorded_at": f"2024-01-01T00:00:{index:02d}.5",
        "metadata": {"display_name": "vm"},
    }
    item.update(overrides)
    return item


def _serve(httpserver: HTTPServer, samples: list[dict[str, Any]]) -> dict[str, Any]:
    httpserver.expect_request("/v2/capabilities").respond_with_json(
        {"api": {"samples:query:complex": True}, "storage": {}}
    )
    httpserver.expect_request("/v2/meters").respond_with_json(
        [{"name": "cpu_util", "type": "gauge", "unit": "%"}]
    )
    httpserver.expect_request("/v2/query/samples", method="POST").respond_with_json(samples)
    return {
        "token": "a-pre-issued-token",
        "endpoint_override": httpserver.url_for("/").rstrip("/"),
        "start_date": "2000-01-01T00:00:00Z",
        "max_retries": 0,
    }


@pytest.mark.parametrize(
    ("bad", "complaint"),
    [
        ({"id": None}, "has no message_id"),
        ({"timestamp": "yesterday"}, "does not parse as ISO 8601"),
        ({"timestamp": None}, "not a timestamp"),
        ({"meter": "memory"}, "belongs to meter 'memory'"),
        ({"volume": "lots"}, "is not a number"),
        ({"metadata": ["a"]}, "resource_metadata is not an object"),
    ],
)
def test_malformed_samples_stop_the_run_with_a_clear_error(
    httpserver: HTTPServer, bad: dict[str, Any], complaint: str
):
    config = _serve(httpserver, [_good(1), _good(2, **bad)])
    with pytest.raises(MalformedApiDataError, match=complaint) as caught:
        run_tap(config)
    assert "bookmark did not move" in str(caught.value)


def test_repairable_oddities_are_kept_and_counted(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
):
    config = _serve(
        httpserver,
        [
            _good(1, volume=None),
            _good(2, type="weird"),
            _good(3, metadata={"vcpus": 2}),
            _good(4, volume=3),
            _good(5, volume="1e999"),  # a volume JSON cannot carry: infinite
            _good(6, type=["gauge"], unit=5),  # not strings: converted (a list raised TypeError)
        ],
    )
    records = run_tap(config).records["cpu_util"]
    assert [r["counter_volume"] for r in records] == [None, 1.5, 1.5, 3.0, None, 1.5]
    assert records[1]["counter_type"] == "weird"
    assert (records[5]["counter_type"], records[5]["counter_unit"]) == ("['gauge']", "5")
    assert records[2]["resource_metadata"] == {"vcpus": "2"}
    assert "repairs made" in caplog.text
    assert "not finite" in caplog.text
