"""Child processes measured one by one: wall time, CPU seconds and peak RSS from wait4."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ceilometer_simulator.generator import CloudSpec

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
CACHE = REPO / "bench" / ".cache"


@dataclass
class Usage:
    """What one child used: wall seconds, CPU seconds (user + system), peak RSS in MB."""

    wall: float
    cpu: float
    user: float
    system: float
    rss_mb: float
    returncode: int

    def as_json(self) -> dict[str, float]:
        return {
            "wall_s": round(self.wall, 3),
            "cpu_s": round(self.cpu, 3),
            "user_s": round(self.user, 3),
            "sys_s": round(self.system, 3),
            "rss_mb": round(self.rss_mb, 1),
        }


MEASURE = Path(__file__).with_name("measure.py")


# The meters bench/run serves (and so the ones pipeline_rows_per_s is measured over).
DEFAULT_METERS = "cpu_util,memory.usage,disk.read.bytes,network.incoming.bytes"


def measured(cmd: list[str], report: Path) -> list[str]:
    """`cmd` run under measure.py, which writes its usage to `report` (see measure.py)."""
    report.unlink(missing_ok=True)
    return [str(BIN / "python"), str(MEASURE), str(report), "--", *cmd]


def reap(proc: subprocess.Popen[Any], started: float, report: Path | None = None) -> Usage:
    """Wait for `proc`; its usage from measure.py's `report` when given, else from wait4."""
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if report is not None and report.exists():
        got = json.loads(report.read_text(encoding="utf-8"))
        return Usage(
            wall=got["wall"],
            cpu=got["user"] + got["system"],
            user=got["user"],
            system=got["system"],
            rss_mb=got["rss_mb"],
            returncode=proc.returncode,
        )
    return Usage(
        wall=wall,
        cpu=ru.ru_utime + ru.ru_stime,
        user=ru.ru_utime,
        system=ru.ru_stime,
        rss_mb=ru.ru_maxrss / 1024,  # kilobytes on Linux; may include the parent's peak
        returncode=proc.returncode,
    )


def run(
    cmd: list[str],
    *,
    stdin: IO[Any] | int | None = None,
    stdout: IO[Any] | int | None = subprocess.DEVNULL,
    log: Path,
    env: dict[str, str] | None = None,
) -> Usage:
    """Run one command to completion and measure it; raise if it fails (log tail shown)."""
    report = log.with_suffix(".usage.json")
    with log.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            measured(cmd, report), stdin=stdin, stdout=stdout, stderr=err, env=env
        )
        usage = reap(proc, started, report)
    check(usage, cmd, log)
    return usage


def check(usage: Usage, cmd: list[str], log: Path) -> None:
    if usage.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        msg = f"{cmd[0]} exited with {usage.returncode}; the end of {log}:\n{tail}"
        raise RuntimeError(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimulatorProcess:
    """`tap-ceilometer-simulator` in its own process, on a SQLite file cached between runs.

    The file is keyed by sample count, seed and meters; a marker written after a complete load
    says it may be reused (the CLI then starts with --samples 0).
    """

    def __init__(self, samples: int, meters: list[str], seed: int, log_dir: Path) -> None:
        self.samples, self.meters, self.seed = samples, meters, seed
        spec = CloudSpec(seed=seed, samples=samples, meters=meters).to_json()
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
        key = f"sim-{samples}-s{seed}-{digest}"
        self.db = CACHE / f"{key}.sqlite"
        self.marker = CACHE / f"{key}.json"
        self.spec = spec
        self.log = log_dir / f"simulator-{samples}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.load_seconds = 0.0
        self.reused = False
        self.url = ""
        self.auth_url = ""

    def start(self) -> SimulatorProcess:
        CACHE.mkdir(parents=True, exist_ok=True)
        self.reused = self.marker.exists() and self.db.exists()
        if not self.reused:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.db}{suffix}").unlink(missing_ok=True)
            self.marker.unlink(missing_ok=True)
        port = free_port()
        cmd = [
            str(BIN / "tap-ceilometer-simulator"),
            "--port",
            str(port),
            "--db",
            str(self.db),
            "--seed",
            str(self.seed),
            "--meters",
            ",".join(self.meters),
            "--samples",
            "0" if self.reused else str(self.samples),
        ]
        started = time.perf_counter()
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ceilometer-simulator"):
            self.stop()
            raise RuntimeError(f"the simulator did not start; see {self.log}")
        self.load_seconds = time.perf_counter() - started
        fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
        self.url, self.auth_url = fields["url"], fields["auth_url"]
        count = int(fields["samples"])
        if count != self.samples:
            self.stop()
            self.marker.unlink(missing_ok=True)
            raise RuntimeError(f"the simulator holds {count} samples, not {self.samples}")
        if not self.reused:
            self.marker.write_text(json.dumps(self.spec, sort_keys=True), encoding="utf-8")
        return self

    def write_tap_config(self, path: Path, **settings: Any) -> Path:
        """A tap config for this simulator's admin, from the first sample on."""
        config = {
            "auth_url": self.auth_url,
            "username": "admin",
            "password": "admin-secret",
            "project_name": "admin",
            "start_date": "2000-01-01T00:00:00Z",
            **settings,
        }
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    def admin(self, method: str, path: str) -> Any:
        req = urllib.request.Request(f"{self.url}/_sim/{path}", method=method)  # noqa: S310
        with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310
            return json.loads(r.read())

    def reset_requests(self) -> None:
        self.admin("POST", "requests/reset")

    def request_counts(self) -> dict[str, int]:
        return dict(self.admin("GET", "stats")["requests"])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
