"""The Gnocchi source through the real Keystone 30: the catalog's metric endpoint, an admin
who sees every project, and a member who sees only its own, with one line saying so (T18)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING, Any

from tests.support.tap import run_tap_process

if TYPE_CHECKING:
    from pathlib import Path

    from tests.gnocchi.stack import Credentials, GnocchiKeystoneStack

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def login(stack: GnocchiKeystoneStack, who: Credentials) -> dict[str, Any]:
    return {
        "auth_url": stack.auth_url,
        "username": who.username,
        "password": who.password,
        "project_name": who.project_name,
    }


def metric_ids(stdout: str) -> set[str]:
    messages = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return {
        m["record"]["metric_id"]
        for m in messages
        if m["type"] == "RECORD" and m["stream"] == "memory_usage"
    }


def test_admin_sees_every_project_and_a_member_only_its_own(
    gnocchi_keystone: GnocchiKeystoneStack, tmp_path: Path
):
    stack = gnocchi_keystone
    gnocchi = stack.gnocchi
    demo_project = stack.session(stack.demo).get_project_id()
    metrics = {}
    for project in (demo_project, uuid.uuid4().hex):
        rid = str(uuid.uuid4())
        gnocchi.create_resource(
            "instance",
            rid,
            project_id=project,
            user_id="u1",
            display_name="vm",
            flavor_id="m1",
            flavor_name="m1",
        )
        metrics[project] = gnocchi.create_metric(rid, "memory.usage", "ceilometer-low", "MB")
        gnocchi.post_measures(
            metrics[project], [(T0, 512.0), (T0 + dt.timedelta(minutes=5), 640.0)]
        )
    gnocchi.wait_until_processed()

    admin = run_tap_process(login(stack, stack.admin) | {"meters": ["memory.usage"]}, tmp_path)
    assert admin.returncode == 0, admin.stderr[-3000:]
    assert "Reading Gnocchi at" in admin.stderr
    assert "the catalog has a metric endpoint and no metering one" in admin.stderr
    assert "no admin role" not in admin.stderr
    assert metric_ids(admin.stdout) == set(metrics.values())

    member = run_tap_process(login(stack, stack.demo), tmp_path)
    assert member.returncode == 0, member.stderr[-3000:]
    assert "The token has no admin role" in member.stderr
    assert metric_ids(member.stdout) == {metrics[demo_project]}
