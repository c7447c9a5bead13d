"""Fixtures shared by the tap's tests."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING

import backoff._sync
import pytest

from ceilometer_simulator import Simulator

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def backoff_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries happen as in production, without the seconds of waiting between them."""
    waits: list[float] = []
    monkeypatch.setattr(backoff._sync, "time", types.SimpleNamespace(sleep=waits.append))
    return waits


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """An empty simulated cloud on a free loopback port."""
    with Simulator() as simulator:
        yield simulator


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test proves nothing: the run fails if any test skipped (a database that is down,
    a target or a server that is not installed must be set up by .ci/setup, not skipped)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write_line(f"{len(skipped)} test(s) skipped: skipping counts as failing here")
