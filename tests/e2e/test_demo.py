"""`bash .ci/demo`, the README's main job, as a new user runs it: twice, and on a busy port."""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import subprocess
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING

import pytest
from psycopg import sql

from ceilometer_simulator.keystone import Identities
from tests.support.bi import increases
from tests.support.targets import REPO_ROOT, pg_connect, read_table

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


def _readme_block(name: str) -> list[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- {name} -->\s*```bash\n(.*?)```", text, re.DOTALL)
    assert found, f"README.md has no block <!-- {name} -->"
    return [line for line in found.group(1).splitlines() if line.strip()]


def _psql_rows(output: str) -> list[list[str]]:
    """The rows of psql's aligned output: between the header's rule and `(N rows)`."""
    lines = output.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line.strip()) <= {"-", "+"} and line)
    rows = []
    for line in lines[rule + 1 :]:
        if line.startswith("("):
            break
        rows.append([cell.strip() for cell in line.split("|")])
    return rows


def test_the_readme_first_report_gives_cpu_hours_by_project_name(
    tmp_path: Path, schema: str
) -> None:
    """README "For BI users": the demo, then its two psql commands as written (with the test's
    schema), against CPU hours computed here from the loaded `cpu` samples."""
    demo, create, report = _readme_block("bi-quickstart")
    assert demo == "bash .ci/demo"
    assert _demo(tmp_path, schema).returncode == 0
    outputs = []
    for line in (create, report):
        command = line.replace("SET search_path TO ceilometer", f"SET search_path TO {schema}")
        assert command != line
        done = subprocess.run(
            ["bash", "-c", command], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    names = {p.id: p.name for p in Identities.default().projects.values()}
    cpu = read_table("target-postgres", schema, "cpu")
    expected: dict[tuple[str, str], float] = defaultdict(float)
    increase_of = increases(cpu)
    for sample in cpu:
        increase = increase_of.get(sample["message_id"])
        if increase is not None:
            day = sample["timestamp"].date().isoformat()
            expected[day, sample["project_id"]] += increase / 3.6e12
    rows = _psql_rows(outputs[1])
    got = {(day, pid): (project, float(hours)) for day, pid, project, hours in rows}
    assert set(got) == set(expected)
    for key, (project, hours) in got.items():
        assert project == names.get(key[1], key[1])
        assert math.isclose(hours, expected[key], rel_tol=1e-9)
    assert any(project == "acme-prod" for project, _ in got.values())


def test_a_busy_port_is_refused_in_one_line(tmp_path: Path, schema: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _demo(tmp_path, schema, DEMO_PORT=str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in result.stderr
    assert "Traceback" not in result.stderr
