"""python-ceilometerclient 2.9.0 parses the simulator's answers; the CLI serves until signalled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest
import requests
from ceilometerclient import client as ceilo_client
from ceilometerclient import exc as ceilo_exc
from keystoneauth1 import session
from keystoneauth1.identity import v3

if TYPE_CHECKING:
    from ceilometer_simulator import Simulator


def _client(sim: Simulator) -> object:
    auth = v3.Password(
        auth_url=sim.auth_url,
        username="admin",
        password="admin-secret",
        user_domain_name="Default",
        project_name="admin",
        project_domain_name="Default",
    )
    return ceilo_client.Client("2", session=session.Session(auth=auth))


def test_ceilometerclient_v2_managers(sim: Simulator) -> None:
    """samples.list, meters.list, new_samples.list/get, query_samples.query, capabilities."""
    cc: object = _client(sim)
    old = cc.samples.list(
        meter_name="meter.test",
        q=[{"field": "resource_id", "op": "eq", "value": "resource-b"}],
        limit=10,
    )  # type: ignore[attr-defined]
    assert {s.message_id for s in old} == {"m-c", "m-d"}
    assert all(s.counter_name == "meter.test" for s in old)
    meters = cc.meters.list(q=[{"field": "resource", "value": "resource-a"}])  # type: ignore[attr-defined]
    assert [(m.name, m.resource_id) for m in meters] == [("meter.test", "resource-a")]
    assert len(cc.meters.list()) == 100  # type: ignore[attr-defined]
    new = cc.new_samples.list(q=[{"field": "meter", "op": "eq", "value": "meter.test"}], limit=3)  # type: ignore[attr-defined]
    assert [s.id for s in new] == ["m-e", "m-d", "m-c"]
    assert cc.new_samples.get("m-a").metadata == {"display_name": "test-server", "size": "0"}  # type: ignore[attr-defined]
    found = cc.query_samples.query(  # type: ignore[attr-defined]
        filter=json.dumps({"and": [{"=": {"meter": "meter.test"}}, {">": {"volume": 3}}]}),
        orderby=json.dumps([{"timestamp": "asc"}]),
        limit=10,
    )
    assert [s.id for s in found] == ["m-d", "m-e"]
    assert cc.capabilities.get().api["samples:query:complex"] is True  # type: ignore[attr-defined]
    bad = [{"field": "timestamp", "op": "eq", "value": "2012-01-01"}]
    with pytest.raises(ceilo_exc.HTTPBadRequest, match="unimplemented operator for timestamp"):
        cc.new_samples.list(q=bad)  # type: ignore[attr-defined]


def test_cli_prints_urls_and_serves_until_sigterm(tmp_path: object) -> None:
    """The console script loads data, prints one line, answers, and exits on SIGTERM."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ceilometer_simulator.cli",
            "--port",
            "0",
            "--samples",
            "500",
            "--meters",
            "cpu,image.size",
            "--db",
            f"{tmp_path}/cli.sqlite",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        assert fields["samples"] == "500"
        assert fields["username"] == "admin"
        url = fields["url"]
        assert fields["auth_url"] == url + "/identity/v3"
        count = requests.get(url + "/_sim/count", params={"meter": "cpu"}, timeout=10).json()[
            "count"
        ]
        assert 0 < count < 500
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
