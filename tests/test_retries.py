"""One retry policy for every request: each kind of transient failure, at discovery and in reads.

The discovery requests (GET /v2/meters, GET /v2/capabilities) and the sample reads (POST
/v2/query/samples, GET /v2/meters/<name>) all go through the one client (client.py), so each
kind of failure that another try may fix is retried the same way everywhere, and the run
exports every sample.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from ceilometer_simulator import FaultRule
from tap_ceilometer.errors import RetriesExhaustedError, UnreachableError
from tests.support.tap import expected_records, run_tap, sample, tap_config

if TYPE_CHECKING:
    from ceilometer_simulator import Simulator

pytestmark = pytest.mark.usefixtures("backoff_waits")

T0 = datetime(2024, 6, 1, tzinfo=UTC)
METER = "network.outgoing.bytes"
STREAM = "network_outgoing_bytes"

# Which requests: (method, path regex, query_method the run must use to make them).
WHERE = {
    "discovery GET /v2/meters": ("GET", r"^/v2/meters$", "auto"),
    "discovery GET /v2/capabilities": ("GET", r"^/v2/capabilities$", "auto"),
    "reads POST /v2/query/samples": ("POST", r"^/v2/query/samples$", "complex"),
    "reads GET /v2/meters/<name>": ("GET", rf"^/v2/meters/{METER}$", "simple"),
}
# What goes wrong, twice in a row (a token refused: once; keystoneauth1 renews it at once).
KINDS: dict[str, dict[str, Any]] = {
    "HTTP 503": {"action": "status", "status": 503},
    "HTTP 502": {"action": "status", "status": 502},
    "HTTP 429": {"action": "status", "status": 429},
    "connection reset": {"action": "drop"},
    "body cut short": {"action": "truncate"},
    "body not JSON": {"action": "garbage"},
    "timeout": {"action": "slow", "delay": 1.0},
    "token refused": {"action": "status", "status": 401},
}


@pytest.fixture
def cloud(sim: Simulator) -> Simulator:
    sim.store.add_samples(sample(METER, T0 + timedelta(seconds=i), i) for i in range(250))
    return sim


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", WHERE)
def test_every_transient_failure_is_retried_on_every_request(
    cloud: Simulator, backoff_waits: list[float], where: str, kind: str
) -> None:
    method, path, query_method = WHERE[where]
    times = 1 if kind == "token refused" else 2
    cloud.faults.add(FaultRule(method=method, path=path, times=times, **KINDS[kind]))
    cloud.reset_requests()
    config = tap_config(cloud, page_size=100, max_retries=3, request_timeout=0.5)
    output = run_tap({**config, "query_method": query_method})

    records = output.records[STREAM]
    assert {r["message_id"] for r in records} == set(expected_records(cloud, METER))
    assert len(records) == 250
    hit = [r for r in cloud.requests if r.method == method and r.path == path.strip("^$")]
    if kind != "timeout":  # a request the tap gave up on is recorded once the server wakes
        assert len(hit) >= times + 1, "the failed request was made again"
    if kind == "token refused":
        assert [r.status for r in hit[:2]] == [401, 200]
        assert backoff_waits == [], "a renewed token is used at once, not after a wait"
    else:
        assert len(backoff_waits) == times, "each failure waited once before the next try"


@pytest.mark.parametrize("where", ["discovery GET /v2/meters", "discovery GET /v2/capabilities"])
def test_a_discovery_request_that_keeps_failing_stops_with_the_server_s_answer(
    cloud: Simulator, backoff_waits: list[float], where: str
) -> None:
    method, path, _ = WHERE[where]
    cloud.faults.add(FaultRule(method=method, path=path, action="status", status=503))
    with pytest.raises(RetriesExhaustedError, match=r"HTTP 503: Simulated fault"):
        run_tap(tap_config(cloud, max_retries=2))
    assert len(backoff_waits) == 2
    assert 0.5 <= backoff_waits[0] <= 1.5  # 0.5 s, plus up to 1 s of jitter
    assert 1.0 <= backoff_waits[1] <= 2.0


def test_an_unreachable_api_is_retried_then_named(backoff_waits: list[float]) -> None:
    config = {
        "token": "a-pre-issued-token",
        "endpoint_override": "http://127.0.0.1:9",  # discard port: nothing listens
        "max_retries": 1,
    }
    with pytest.raises(UnreachableError, match=r"Cannot reach Ceilometer at http://127\.0\.0\.1:9"):
        run_tap(config)
    assert len(backoff_waits) == 1


def test_an_endpoint_that_never_answers_json_is_named(
    cloud: Simulator, backoff_waits: list[float]
) -> None:
    """Not Ceilometer at all (a proxy's page, another service): after the retries, one
    sentence naming the endpoint."""
    cloud.faults.add(FaultRule(method="GET", path=r"^/v2/meters$", action="garbage"))
    with pytest.raises(RetriesExhaustedError, match="kept answering with a body that is not JSON"):
        run_tap(tap_config(cloud, max_retries=1))
    assert len(backoff_waits) == 1
