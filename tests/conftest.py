"""Fixtures shared by the tap's tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tap_ceilometer.simulator import Simulator

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """An empty simulated cloud on a free loopback port."""
    with Simulator() as simulator:
        yield simulator
