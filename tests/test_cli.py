"""The real `tap-ceilometer` command as Singer users run it: --about, --discover, --test, errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ceilometer_simulator import Simulator
from tests.support.tap import (
    DIMENSION_STREAMS,
    REPO_ROOT,
    TAP_EXECUTABLE,
    prepared_tap_command,
    run_tap_process,
    sample,
    tap_config,
)

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_httpserver import HTTPServer

SECRET = "admin-secret"


def _settings_table(markdown: str) -> str:
    table = markdown.split("## Settings", 1)[1].split("\nA full list", 1)[0]
    return "\n".join(line for line in table.strip().splitlines() if line.startswith("|"))


def test_readme_settings_table_is_the_about_output():
    about = subprocess.run(
        [str(TAP_EXECUTABLE), "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    documented = readme.split("<!-- settings:start -->", 1)[1].split("<!-- settings:end -->")[0]
    assert _settings_table(about) in documented


def test_about_json_names_the_capabilities():
    about = json.loads(
        subprocess.run(
            [str(TAP_EXECUTABLE), "--about", "--format=json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert {"catalog", "state", "discover", "about", "stream-maps"} <= set(about["capabilities"])
    secrets = {k for k, v in about["settings"]["properties"].items() if v.get("secret")}
    assert secrets == {"password", "application_credential_secret", "token"}


def _seed(sim: Simulator) -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    sim.store.add_samples(
        sample(meter, moment, i)
        for i, meter in enumerate(["disk.read.bytes", "instance:m1.tiny", "cpu_util"])
    )


def test_discover_lists_one_sql_safe_stream_per_meter(sim: Simulator, tmp_path: Path):
    _seed(sim)
    result = run_tap_process(tap_config(sim), tmp_path, args=["--discover"])
    assert result.returncode == 0, result.stderr
    streams = {s["tap_stream_id"]: s for s in json.loads(result.stdout)["streams"]}
    assert set(streams) == {"disk_read_bytes", "instance_m1_tiny", "cpu_util", *DIMENSION_STREAMS}
    entry = streams["disk_read_bytes"]
    assert entry["key_properties"] == ["message_id"]
    assert entry["replication_key"] == "timestamp"
    keys = {"resources": ["resource_id"], "meters": ["name"]}
    for name in DIMENSION_STREAMS:
        assert streams[name]["key_properties"] == keys.get(name, ["id"])
        assert streams[name]["replication_method"] == "FULL_TABLE"
    assert "password" not in streams["users"]["schema"]["properties"]
    assert SECRET not in result.stdout + result.stderr


def test_test_mode_reads_one_record_per_stream(sim: Simulator, tmp_path: Path):
    _seed(sim)
    result = run_tap_process(tap_config(sim), tmp_path, args=["--test"])
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    per_stream = Counter(m["stream"] for m in records if m["type"] == "RECORD")
    assert per_stream == dict.fromkeys(
        ["disk_read_bytes", "instance_m1_tiny", "cpu_util", *DIMENSION_STREAMS], 1
    )
    assert "ERROR" not in result.stderr, "a successful check logs no error"


def test_a_debug_run_shows_the_traceback_of_an_expected_failure(sim: Simulator, tmp_path: Path):
    config = tap_config(sim, password="wrong-password")
    result = subprocess.run(
        [*prepared_tap_command(tmp_path, config)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TAP_CEILOMETER_LOG_LEVEL": "DEBUG", "LOGLEVEL": "DEBUG"},
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "Keystone rejected the credentials" in result.stderr


def test_a_date_that_is_not_iso_8601_gets_an_example(sim: Simulator, tmp_path: Path):
    config = tap_config(sim, start_date="yesterday")
    _fails_clearly(
        run_tap_process(config, tmp_path), "start_date 'yesterday'", "2024-01-01T00:00:00Z"
    )


def test_about_text_is_not_indented():
    about = subprocess.run(
        [str(TAP_EXECUTABLE), "--about"], capture_output=True, text=True, check=True
    ).stdout
    described = about.split("Description:", 1)[1].split("Version:", 1)[0]
    assert "One stream per meter" in described
    assert not any(line.startswith("    ") for line in described.splitlines())


def test_request_metrics_name_the_request_that_was_sent(sim: Simulator, tmp_path: Path):
    _seed(sim)
    result = run_tap_process(tap_config(sim), tmp_path)
    assert result.returncode == 0, result.stderr
    endpoints = {
        json.loads(line.split("METRIC: ", 1)[1])["tags"]["endpoint"]
        for line in result.stderr.splitlines()
        if "http_request_duration" in line
    }
    assert endpoints == {
        "GET /v2/meters",
        "GET /v2/capabilities",
        "POST /v2/query/samples",
        "GET /v2/resources",
        "GET /projects",  # Keystone's, below its discovered v3 URL
        "GET /domains",
        "GET /users",
    }


def _fails_clearly(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit code 1 and one ERROR line that says it all: no traceback, no secret."""
    assert result.returncode == 1
    output = result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if "| ERROR " in line]
    assert len(errors) == 1, result.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], output[-3000:]
    assert "Traceback" not in output
    assert SECRET not in output
    assert "wrong-password" not in output


def test_wrong_password_is_reported_as_such(sim: Simulator, tmp_path: Path):
    config = tap_config(sim, password="wrong-password")
    _fails_clearly(run_tap_process(config, tmp_path), "Keystone rejected the credentials")


def test_unreachable_keystone_is_reported_as_such(tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nobody listens there
    config = {
        "auth_url": f"http://127.0.0.1:{port}/v3",
        "username": "admin",
        "password": SECRET,
        "project_name": "admin",
    }
    _fails_clearly(run_tap_process(config, tmp_path), "Cannot reach Keystone")


def test_a_meter_that_does_not_exist_is_named(sim: Simulator, tmp_path: Path):
    _seed(sim)
    config = tap_config(sim, meters=["cpu_utl"])
    _fails_clearly(run_tap_process(config, tmp_path), "'cpu_utl'", "did you mean cpu_util")


def test_wrong_endpoint_is_reported(sim: Simulator, tmp_path: Path):
    config = tap_config(sim, endpoint_override=sim.url + "/nothing-here")
    _fails_clearly(run_tap_process(config, tmp_path), "HTTP 404")


def test_gnocchi_clouds_are_explained(tmp_path: Path):
    with Simulator(gnocchi=True) as gnocchi:
        _fails_clearly(run_tap_process(tap_config(gnocchi), tmp_path), "HTTP 410", "Gnocchi")


def test_malformed_api_data_is_one_sentence(httpserver: HTTPServer, tmp_path: Path):
    """A Ceilometer (here a stand-in) that sends a sample without a message_id."""
    httpserver.expect_request("/v2/capabilities").respond_with_json(
        {"api": {"samples:query:complex": True}}
    )
    httpserver.expect_request("/v2/meters").respond_with_json([{"name": "cpu_util"}])
    bad = {"meter": "cpu_util", "timestamp": "2024-01-01T00:00:00", "volume": 1.0}
    httpserver.expect_request("/v2/query/samples", method="POST").respond_with_json([bad])
    config = {
        "token": SECRET,
        "endpoint_override": httpserver.url_for("/").rstrip("/"),
        "start_date": "2000-01-01T00:00:00Z",
    }
    _fails_clearly(run_tap_process(config, tmp_path), "malformed data", "has no message_id")
