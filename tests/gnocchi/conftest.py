"""The Gnocchi tier: tests against a real Gnocchi 4.7.1 (API + metricd) on loopback.

Every test in this directory is marked ``gnocchi``. Gnocchi runs from the virtualenv that
``.ci/gnocchi/setup.sh`` builds (Keystone, for ``gnocchi_keystone``, from the conformance tier's);
without it the fixtures fail (they never skip) and say which script to run. When a test that used
a stack fails, the report shows the tail of the servers' logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.gnocchi.stack import GnocchiKeystoneStack, GnocchiStack, GnocchiStackError

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

_HERE = Path(__file__).resolve().parent
_running: dict[str, GnocchiStack | GnocchiKeystoneStack] = {}


@pytest.hookimpl(tryfirst=True)  # before -m deselects, so `-m "not gnocchi"` works
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.gnocchi)


def _ceilometer_shaped_gnocchi(key: str) -> Iterator[GnocchiStack]:
    problem = ""
    try:
        stack = GnocchiStack().start()
        try:
            stack.create_ceilometer_archive_policies()
            stack.create_ceilometer_resource_types()
        except BaseException:
            stack.stop()
            raise
    except GnocchiStackError as err:
        problem = str(err)
    if problem:
        pytest.fail(problem, pytrace=False)
    _running[key] = stack
    try:
        yield stack
    finally:
        del _running[key]
        stack.stop()


@pytest.fixture(scope="session")
def gnocchi() -> Iterator[GnocchiStack]:
    """A real Gnocchi (basic auth; helpers call as ``admin``) for the test session, with
    Ceilometer's four archive policies and its resource types created, metric_processing_delay 1.
    """
    yield from _ceilometer_shaped_gnocchi("gnocchi")


@pytest.fixture(scope="module")
def own_gnocchi() -> Iterator[GnocchiStack]:
    """The same, for one test module alone: its tests compare whole tables with all Gnocchi
    holds, which the session's shared Gnocchi would not allow."""
    yield from _ceilometer_shaped_gnocchi("own_gnocchi")  # one module at a time


@pytest.fixture(scope="session")
def gnocchi_keystone() -> Iterator[GnocchiKeystoneStack]:
    """A real Keystone and a Gnocchi in ``auth_mode=keystone`` behind it, for the test session.

    ``.gnocchi`` is the GnocchiStack (its helpers call with an admin token; Ceilometer's policies
    and resource types are created), ``.auth_url`` is Keystone v3, ``.admin`` / ``.demo`` /
    ``.service`` the Credentials, ``.session(creds)`` a keystoneauth1 Session.
    """
    problem = ""
    try:
        both = GnocchiKeystoneStack().start()
        try:
            both.gnocchi.create_ceilometer_archive_policies()
            both.gnocchi.create_ceilometer_resource_types()
        except BaseException:
            both.stop()
            raise
    except GnocchiStackError as err:
        problem = str(err)
    if problem:
        pytest.fail(problem, pytrace=False)
    _running["gnocchi_keystone"] = both
    try:
        yield both
    finally:
        del _running["gnocchi_keystone"]
        both.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for name, stack in _running.items():
            if name in getattr(item, "fixturenames", ()):
                report.sections.append((f"{name} logs", stack.log_report()))
    return report
