"""`bash .ci/demo`, the README's main job, as a new user runs it: twice, and on a busy port."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import uuid
from typing import TYPE_CHECKING

import pytest
from psycopg import sql

from tests.support.targets import REPO_ROOT, pg_connect

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

SUMMARY = re.compile(
    r"^\[demo\] (\d+) meter tables, (\d+) samples, (\d+) new this run$", re.MULTILINE
)


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"demo_{uuid.uuid4().hex[:10]}"
    yield name
    with pg_connect() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _demo(tmp_path: Path, schema: str, **env: str) -> subprocess.CompletedProcess[str]:
    settings = {
        "DEMO_DB": str(tmp_path / "cloud.sqlite"),
        "DEMO_SAMPLES": "3000",
        "DEMO_ADVANCE": "400",
        "DEMO_SCHEMA": schema,
        **env,
    }
    environ = {k: v for k, v in os.environ.items() if k not in ("SIMULATOR_PORT", "DEMO_PORT")}
    return subprocess.run(
        ["bash", str(REPO_ROOT / ".ci" / "demo")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**environ, **settings},
    )


def test_the_demo_seeds_once_and_the_second_run_moves_only_what_is_new(
    tmp_path: Path, schema: str
) -> None:
    with socket.socket() as busy:
        # Ceilometer's own port 8777 busy (if nothing else holds it, this test does).
        with contextlib.suppress(OSError):
            busy.bind(("127.0.0.1", 8777))
            busy.listen()
        first = _demo(tmp_path, schema)
    assert first.returncode == 0, first.stderr[-3000:]
    assert SUMMARY.findall(first.stdout) == [("9", "3000", "3000")], first.stdout
    for dimension in ("projects", "domains", "users", "resources", "meters"):
        assert re.search(rf"^  {dimension} +[1-9]\d* .*dimension$", first.stdout, re.M), dimension
    second = _demo(tmp_path, schema)
    assert second.returncode == 0, second.stderr[-3000:]
    assert SUMMARY.findall(second.stdout) == [("9", "3400", "400")], second.stdout
    assert "samples=3400" in second.stdout  # the cloud moved on; nothing was seeded twice
    assert "admin-secret" not in first.stdout + second.stdout


def test_a_busy_port_is_refused_in_one_line(tmp_path: Path, schema: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _demo(tmp_path, schema, DEMO_PORT=str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in result.stderr
    assert "Traceback" not in result.stderr
