"""Running continuously (poll_interval), stopping on signals, and secrets kept out of output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ceilometer_simulator import FaultRule
from tap_ceilometer.v2.streams import MESSAGE_ID_KEY
from tests.support.tap import (
    DIMENSION_STREAMS,
    expected_records,
    run_tap,
    sample,
    tap_command,
    tap_config,
)

if TYPE_CHECKING:
    from pathlib import Path

    from ceilometer_simulator import Simulator

T0 = datetime(2024, 7, 1, tzinfo=UTC)


class TapProcess:
    """The real command, its stdout parsed line by line as it arrives."""

    def __init__(self, config: dict[str, Any], workdir: Path, env: dict[str, str] | None = None):
        path = workdir / "tap.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        self.stderr_path = workdir / "tap.log"
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                tap_command(path),
                stdout=subprocess.PIPE,
                stderr=stderr,
                env={**os.environ, **(env or {})},
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.messages.append(json.loads(line))

    def records(self, stream: str | None = None) -> list[dict[str, Any]]:
        """The records of `stream`, or of every sample stream."""
        with self._lock:
            return [
                m["record"]
                for m in self.messages
                if m["type"] == "RECORD"
                and (
                    m["stream"] == stream
                    or (stream is None and m["stream"] not in DIMENSION_STREAMS)
                )
            ]

    def last_state(self) -> dict[str, Any]:
        with self._lock:
            return next(m["value"] for m in reversed(self.messages) if m["type"] == "STATE")

    def wait_for(self, condition: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, self.stderr_path.read_text()
            assert time.monotonic() < deadline, "timed out waiting"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        return code

    def output(self) -> str:
        with self._lock:
            messages = json.dumps(self.messages)
        return messages + self.stderr_path.read_text()


def _bookmark_matches_last_record(state: dict[str, Any], records: list[dict[str, Any]]) -> None:
    streams = {r["counter_name"] for r in records}
    for meter in streams:
        stream = meter.replace(".", "_")
        last = [r for r in records if r["counter_name"] == meter][-1]
        bookmark = state["bookmarks"][stream]
        assert bookmark["replication_key_value"] == last["timestamp"]
        assert bookmark[MESSAGE_ID_KEY] == last["message_id"]


def test_polling_keeps_exporting_new_samples_and_meters(sim: Simulator, tmp_path: Path):
    sim.store.add_samples(sample("cpu_util", T0 + timedelta(seconds=i), i) for i in range(100))
    tap = TapProcess(tap_config(sim, poll_interval=1, page_size=30), tmp_path)
    tap.wait_for(lambda: len(tap.records()) == 100)
    # While it sleeps: more samples of the meter, and a meter that did not exist.
    sim.store.add_samples(
        sample("cpu_util", T0 + timedelta(hours=1, seconds=i), 500 + i) for i in range(40)
    )
    sim.store.add_samples(
        sample("image.size", T0 + timedelta(seconds=i), 900 + i) for i in range(25)
    )
    tap.wait_for(lambda: len(tap.records()) == 165)
    # Each sweep reads the dimensions again: the meter catalogue now has the new meter.
    tap.wait_for(lambda: "image.size" in {r["name"] for r in tap.records("meters")})
    assert tap.stop() == 0
    records = tap.records()
    assert len({r["message_id"] for r in records}) == 165  # none sent twice
    assert {r["message_id"] for r in records} == set(expected_records(sim, "cpu_util")) | set(
        expected_records(sim, "image.size")
    )
    _bookmark_matches_last_record(tap.last_state(), records)


def test_sigterm_mid_sweep_leaves_a_state_that_covers_exactly_what_was_sent(
    sim: Simulator, tmp_path: Path
):
    sim.store.add_samples(
        sample("disk.read.bytes", T0 + timedelta(seconds=i // 50), i) for i in range(3_000)
    )
    # Slow pages, so that the signal lands in the middle of the sweep.
    sim.faults.add(FaultRule(method="POST", path="/v2/query/samples", action="slow", delay=0.2))
    tap = TapProcess(tap_config(sim, page_size=100), tmp_path)
    tap.wait_for(lambda: len(tap.records()) >= 500)
    assert tap.stop(signal.SIGTERM) == 0
    sent = tap.records()
    assert 500 <= len(sent) < 3_000
    state = tap.last_state()
    _bookmark_matches_last_record(state, sent)
    sim.faults.clear()
    rest = run_tap(tap_config(sim, page_size=100), state).records["disk_read_bytes"]
    ids = [r["message_id"] for r in sent + rest]
    assert len(ids) == len(set(ids)) == 3_000


def test_secrets_never_appear_in_output_even_when_debugging(sim: Simulator, tmp_path: Path):
    sim.store.add_samples(sample("cpu_util", T0 + timedelta(seconds=i), i) for i in range(30))
    sim.faults.add(
        FaultRule(method="POST", path="/v2/query/samples", action="status", status=401, times=1)
    )
    sim.faults.add(
        FaultRule(method="POST", path="/v2/query/samples", action="status", status=503, times=1)
    )
    debug = {"LOGLEVEL": "DEBUG", "TAP_CEILOMETER_LOGLEVEL": "DEBUG"}
    token = sim.issue_token()
    runs = [
        (tap_config(sim, page_size=10, max_retries=2), ["admin-secret"]),
        (
            tap_config(sim, password="wrong-secret-password", max_retries=0),
            ["wrong-secret-password"],
        ),
        (
            {
                "auth_url": sim.auth_url,
                "application_credential_id": "admin-app-cred",
                "application_credential_secret": "app-cred-secret",
                "start_date": "2000-01-01T00:00:00Z",
            },
            ["app-cred-secret"],
        ),
        (
            {"token": token, "endpoint_override": sim.url, "start_date": "2000-01-01T00:00:00Z"},
            [token],
        ),
    ]
    for index, (config, secrets) in enumerate(runs):
        workdir = tmp_path / str(index)
        workdir.mkdir()
        tap = TapProcess(config, workdir, env=debug)
        tap.process.wait(timeout=120)
        tap._reader.join(timeout=10)
        output = tap.output()
        assert "DEBUG" in output  # the debug logs were on
        for secret in secrets:
            assert secret not in output
