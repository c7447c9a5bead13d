"""Faults injected by the simulator while the tap pipes into a real target: the tables afterwards.

tests/test_faults.py checks each failure mode on the tap's own output; here the same faults hit a
whole pipeline (tap process | target-postgres or target-mysql) with real backoff waits, and the
assertions are on the rows in the database: every sample exactly once, every value exact.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from ceilometer_simulator import FaultRule
from tap_ceilometer.timestamps import utc_iso
from tap_ceilometer.v2.schema import SAMPLE_SCHEMA
from tests.support.pipeline import run_pipeline
from tests.support.tap import expected_records, sample, tap_config
from tests.support.targets import TARGETS, fresh_namespace, prepare_tables, read_table

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from ceilometer_simulator import Simulator

pytestmark = pytest.mark.e2e
T0 = datetime(2024, 7, 1, tzinfo=UTC)
METER = STREAM = "cpu_util"
QUERY = r"^/v2/query/samples"


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def namespace(target: str) -> Iterator[str]:
    with fresh_namespace(target, prefix="fault") as name:  # type: ignore[arg-type]
        prepare_tables(target, name, [STREAM])  # type: ignore[arg-type]
        yield name


@pytest.fixture
def cloud(sim: Simulator) -> Simulator:
    """1,500 samples: one a second, then a tie of 300 at one instant, then more."""
    times = [T0 + timedelta(seconds=i) for i in range(600)]
    times += [T0 + timedelta(minutes=20, microseconds=250)] * 300
    times += [T0 + timedelta(minutes=30, seconds=i) for i in range(600)]
    sim.store.add_samples(sample(METER, t, i) for i, t in enumerate(times))
    return sim


def _pipeline(
    target: str, namespace: str, config: dict[str, Any], workdir: Path, state: Any = None
) -> tuple[int, dict[str, Any] | None, str]:
    """The tap's exit code, the state the target confirmed, and the tap's log."""
    run = run_pipeline(config, {target: namespace}, workdir, state=state)
    return run.tap_returncode, run.confirmed_state, run.tap_log


def _stored(target: str, namespace: str) -> dict[str, dict[str, Any]]:
    rows = read_table(target, namespace, STREAM)  # type: ignore[arg-type]
    stored = {r["message_id"]: {c: r[c] for c in SAMPLE_SCHEMA["properties"]} for r in rows}
    assert len(stored) == len(rows), "a sample is stored twice"
    return stored


def _revoke_tokens_after(sim: Simulator, queries: int) -> threading.Thread:
    """Revokes every token once the tap has made `queries` sample queries (mid-run)."""

    def revoke() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if sum(r.path == "/v2/query/samples" for r in sim.requests) >= queries:
                sim.revoke_tokens()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=revoke, daemon=True)
    thread.start()
    return thread


def test_every_transient_fault_at_once_and_the_tables_are_exact(
    cloud: Simulator, target: str, namespace: str, tmp_path: Path
):
    # At rates, not on the next N requests: stacked on one request they would only test backoff.
    for rule in (
        FaultRule(method="POST", path=QUERY, action="status", status=503, rate=0.1),
        FaultRule(method="POST", path=QUERY, action="status", status=500, rate=0.05),
        FaultRule(method="POST", path=QUERY, action="drop", rate=0.05),
        FaultRule(method="POST", path=QUERY, action="truncate", rate=0.05),
        FaultRule(method="POST", path=QUERY, action="garbage", rate=0.05),
        FaultRule(method="POST", path=QUERY, action="slow", delay=1.5, rate=0.05),
    ):
        cloud.faults.add(rule)
    revoker = _revoke_tokens_after(cloud, queries=6)
    config = tap_config(cloud, page_size=100, max_retries=12, request_timeout=1)
    code, state, log = _pipeline(target, namespace, config, tmp_path)
    revoker.join(timeout=1)
    assert code == 0, log
    assert state is not None
    statuses = [r.status for r in cloud.requests if r.path == "/v2/query/samples"]
    assert 401 in statuses, "the token was revoked mid-run and renewed"
    assert _stored(target, namespace) == expected_records(cloud, METER)


def test_a_server_that_goes_down_midway_loses_nothing_on_the_rerun(
    cloud: Simulator, target: str, namespace: str, tmp_path: Path
):
    def outage() -> None:
        while sum(r.path == "/v2/query/samples" for r in cloud.requests) < 7:
            time.sleep(0.005)
        cloud.faults.add(FaultRule(method="POST", path=QUERY, action="status", status=503))

    threading.Thread(target=outage, daemon=True).start()
    config = tap_config(cloud, page_size=100, max_retries=1)
    code, state, log = _pipeline(target, namespace, config, tmp_path)
    assert code != 0
    assert "503" in log
    cloud_records = expected_records(cloud, METER)
    stored = _stored(target, namespace)
    # What is stored is exact, and nothing at or below the confirmed bookmark is missing.
    assert stored
    assert all(stored[k] == cloud_records[k] for k in stored)
    assert state is not None
    bookmark = state["bookmarks"][STREAM]["replication_key_value"]
    covered = {k for k, v in cloud_records.items() if utc_iso(v["timestamp"]) < bookmark}
    assert covered <= set(stored)
    # The cloud recovers; the rerun from the confirmed state completes the table, once each.
    cloud.faults.clear()
    code, _, log = _pipeline(target, namespace, config, tmp_path, state)
    assert code == 0, log
    assert _stored(target, namespace) == cloud_records
