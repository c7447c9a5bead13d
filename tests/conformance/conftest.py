"""The conformance tier: tests against the real Keystone 30 and Ceilometer 9.0.7 servers.

Every test in this directory is marked ``conformance``. The servers run from the virtualenvs that
``.ci/conformance/setup.sh`` builds; without them the ``real_stack`` fixture fails (it never skips)
and says to run that script. When a test that used the stack fails, the report shows the tail of
the servers' logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conformance.stack import RealStack, RealStackError

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

_HERE = Path(__file__).resolve().parent
_running: list[RealStack] = []


@pytest.hookimpl(tryfirst=True)  # before -m deselects, so `-m "not conformance"` works
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.conformance)


@pytest.fixture(scope="session")
def real_stack() -> Iterator[RealStack]:
    """The real Keystone + Ceilometer stack, started once for the test session."""
    problem = ""
    try:
        stack = RealStack().start()
    except RealStackError as err:
        problem = str(err)
    if problem:
        pytest.fail(problem, pytrace=False)
    _running.append(stack)
    try:
        yield stack
    finally:
        _running.remove(stack)
        stack.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _running and "real_stack" in getattr(item, "fixturenames", ()):
        report.sections.append(("real stack logs", _running[0].log_report()))
    return report
