"""The real Keystone 30 + Ceilometer 9.0.7 (API v2) stack, started from the dev virtualenv.

Both servers run as subprocesses with the pythons of the virtualenvs that
``.ci/conformance/setup.sh`` builds; their launchers live in ``.ci/conformance/launcher/``.

    with RealStack() as stack:
        stack.seed(samples)                      # storage-form dicts, see seed()
        session = stack.session(stack.admin)     # a keystoneauth1 Session
        session.get(f"{stack.ceilometer_url}/v2/samples")

Ceilometer stores into PostgreSQL (127.0.0.1:5432, user postgres), in a database created fresh for
each stack: ``ceilometer_conformance``, or ``ceilometer_conformance_<pid>`` while another stack on
this machine holds that name. Keystone keeps SQLite and its keys in the stack's temporary workdir.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import psycopg
import requests
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR = REPO / ".ci" / "conformance"
LAUNCHERS = CONFORMANCE_DIR / "launcher"
SETUP_COMMAND = "bash .ci/conformance/setup.sh"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_DB = "ceilometer_conformance"
REGION = "RegionOne"
STORAGE_TABLES = (
    "sample",
    "metadata_text",
    "metadata_int",
    "metadata_float",
    "metadata_bool",
    "resource",
    "meter",
)


class RealStackError(RuntimeError):
    """The stack could not be built, started or used; the message says what to do."""


@dataclass(frozen=True)
class Credentials:
    """A Keystone v3 password login, scoped to a project; all in the ``default`` domain."""

    username: str
    password: str
    project_name: str
    user_domain_id: str = "default"
    project_domain_id: str = "default"


ADMIN = Credentials("admin", "admin-secret", "admin")
DEMO = Credentials("demo", "demo-secret", "demo")


def cache_root() -> Path:
    env = os.environ.get("TAP_CEILOMETER_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "tap-ceilometer"
    return base / "conformance"


def venv_python(name: str) -> Path:
    """The python of the cached venv for ``requirements-<name>.txt`` (the rule of setup.sh).

    ``TAP_CEILOMETER_<NAME>_VENV`` points at another venv instead.
    """
    override = os.environ.get(f"TAP_CEILOMETER_{name.upper()}_VENV")
    if override:
        venv = Path(override)
    else:
        requirements = CONFORMANCE_DIR / f"requirements-{name}.txt"
        digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
        venv = cache_root() / f"{name}-{digest}"
    python = venv / "bin" / "python"
    if not (venv / ".tap-ceilometer-complete").is_file() or not python.exists():
        raise RealStackError(
            f"The conformance tier needs the {name} virtualenv at {venv}, which is missing or "
            f"out of date. Build it with `{SETUP_COMMAND}` (from the repository root; about a "
            "minute the first time, seconds when cached), then run the tests again."
        )
    return python


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} to the seeder")


class RealStack:
    """Starts the real Keystone and Ceilometer on free loopback ports; stop() ends both."""

    def __init__(
        self,
        *,
        workdir: Path | None = None,
        keep_workdir: bool | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="tap-ceilometer-conformance-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._keep = (
            keep_workdir
            if keep_workdir is not None
            else os.environ.get("TAP_CEILOMETER_KEEP_STACK") == "1"
        )
        self._startup_timeout = startup_timeout
        self.keystone_port = free_port()
        self.ceilometer_port = free_port()
        self.keystone_url = f"http://127.0.0.1:{self.keystone_port}"
        self.auth_url = f"{self.keystone_url}/v3"
        self.ceilometer_url = f"http://127.0.0.1:{self.ceilometer_port}"
        self.region = REGION
        self.admin = ADMIN
        self.demo = DEMO
        self.keystone_log = self.workdir / "keystone.log"
        self.ceilometer_log = self.workdir / "ceilometer.log"
        self.seeder_log = self.workdir / "seeder.log"
        self.db_name = DEFAULT_DB
        self._db_lock: IO[str] | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._log_files: list[IO[bytes]] = []
        self._seeder: subprocess.Popen[str] | None = None
        self._sessions: dict[Credentials, ks_session.Session] = {}

    # -- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> RealStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def db_url(self) -> str:
        return f"{PG_SERVER}/{self.db_name}"

    def start(self) -> RealStack:
        try:
            keystone_python = venv_python("keystone")
            ceilometer_python = venv_python("ceilometer")
            self._claim_database()
            self._spawn(
                name="keystone",
                python=keystone_python,
                script="keystone_serve.py",
                args=[
                    *("--port", str(self.keystone_port)),
                    *("--workdir", str(self.workdir / "keystone")),
                    *("--ceilometer-url", self.ceilometer_url),
                ],
                log=self.keystone_log,
            )
            self._spawn(
                name="ceilometer",
                python=ceilometer_python,
                script="ceilometer_api.py",
                args=[
                    *("--port", str(self.ceilometer_port)),
                    *("--workdir", str(self.workdir / "ceilometer")),
                    *("--keystone-url", self.keystone_url),
                    *("--db-url", f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.db_name}"),
                    "--fresh-db",
                ],
                log=self.ceilometer_log,
            )
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the servers and the seeder; remove the workdir unless asked to keep it."""
        if self._seeder is not None:
            with contextlib.suppress(OSError):
                if self._seeder.stdin:
                    self._seeder.stdin.close()
            self._end(self._seeder)
            self._seeder = None
        for proc in self._procs.values():
            self._end(proc)
        self._procs.clear()
        for handle in self._log_files:
            handle.close()
        self._log_files.clear()
        for session in self._sessions.values():
            session.session.close()
        self._sessions.clear()
        self._release_database()
        if self._own_workdir and not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    def _end(proc: subprocess.Popen[Any]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def _claim_database(self) -> None:
        """Use ``ceilometer_conformance`` unless another stack on this machine has it."""
        lock_path = Path(tempfile.gettempdir()) / f"tap-ceilometer-{DEFAULT_DB}.lock"
        handle = lock_path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            self.db_name = f"{DEFAULT_DB}_{os.getpid()}"
            return
        self._db_lock = handle

    def _release_database(self) -> None:
        if self._db_lock is not None:
            self._db_lock.close()  # closing drops the flock; the database stays for inspection
            self._db_lock = None
        elif self.db_name != DEFAULT_DB:
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn,
            ):
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def _spawn(
        self,
        *,
        name: str,
        python: Path,
        script: str,
        args: list[str],
        log: Path,
    ) -> None:
        handle = log.open("wb")
        self._log_files.append(handle)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
        env.pop("PYTHONPATH", None)
        self._procs[name] = subprocess.Popen(
            [str(python), str(LAUNCHERS / script), *args],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
        )

    def _wait_until_ready(self) -> None:
        probes = {"keystone": f"{self.auth_url}", "ceilometer": f"{self.ceilometer_url}/"}
        deadline = time.monotonic() + self._startup_timeout
        pending = dict(probes)
        while pending:
            for name, url in list(pending.items()):
                proc = self._procs[name]
                if proc.poll() is not None:
                    raise RealStackError(
                        f"{name} exited with status {proc.returncode} while starting.\n"
                        + self.log_report()
                    )
                try:
                    requests.get(url, timeout=2)
                except requests.RequestException:
                    continue
                del pending[name]  # any HTTP answer (Ceilometer's is a 401) means it serves
            if pending and time.monotonic() > deadline:
                raise RealStackError(
                    f"{', '.join(pending)} did not answer within {self._startup_timeout:.0f} s.\n"
                    + self.log_report()
                )
            if pending:
                time.sleep(0.1)

    # -- using the stack --------------------------------------------------------------------

    def log_report(self, lines: int = 60) -> str:
        parts = []
        for title, path in (
            ("keystone", self.keystone_log),
            ("ceilometer", self.ceilometer_log),
            ("seeder", self.seeder_log),
        ):
            if path.exists():
                parts.append(f"----- {title} log ({path}), last {lines} lines -----")
                parts.append(_tail(path, lines))
        return "\n".join(parts)

    def session(self, credentials: Credentials) -> ks_session.Session:
        """A keystoneauth1 Session logged in as ``credentials`` (cached per credentials)."""
        if credentials not in self._sessions:
            auth = v3.Password(
                auth_url=self.auth_url,
                username=credentials.username,
                password=credentials.password,
                project_name=credentials.project_name,
                user_domain_id=credentials.user_domain_id,
                project_domain_id=credentials.project_domain_id,
            )
            self._sessions[credentials] = ks_session.Session(auth=auth)
        return self._sessions[credentials]

    def token(self, credentials: Credentials) -> str:
        token = self.session(credentials).get_token()
        assert token
        return str(token)

    def project_id(self, credentials: Credentials) -> str:
        project_id = self.session(credentials).get_project_id()
        assert project_id
        return str(project_id)

    def seed(self, samples: Iterable[dict[str, Any]]) -> int:
        """Store samples through Ceilometer's own storage path; return how many were stored.

        Each sample is a storage-form dict: counter_name, counter_type, counter_unit,
        counter_volume, message_id, project_id, user_id, resource_id, source, timestamp (ISO
        8601 string, or a datetime: aware ones are converted to UTC), resource_metadata (a nested
        dict). Ceilometer sets recorded_at itself.
        """
        seeder = self._seeder_process()
        assert seeder.stdin is not None
        assert seeder.stdout is not None
        try:
            for sample in samples:
                seeder.stdin.write(json.dumps(sample, default=_jsonable) + "\n")
            seeder.stdin.write("\n")
            seeder.stdin.flush()
            answer = seeder.stdout.readline()
        except BrokenPipeError as err:
            raise RealStackError("the seeder died.\n" + self.log_report()) from err
        if not answer:
            raise RealStackError("the seeder died.\n" + self.log_report())
        return int(json.loads(answer)["stored"])

    def _seeder_process(self) -> subprocess.Popen[str]:
        if self._seeder is None or self._seeder.poll() is not None:
            handle = self.seeder_log.open("ab")
            self._log_files.append(handle)
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
            env.pop("PYTHONPATH", None)
            self._seeder = subprocess.Popen(
                [
                    str(venv_python("ceilometer")),
                    str(LAUNCHERS / "ceilometer_seed.py"),
                    "--workdir",
                    str(self.workdir / "ceilometer"),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=handle,
                cwd=self.workdir,
                env=env,
                text=True,
            )
        return self._seeder

    def reset_storage(self) -> None:
        """Delete every sample, resource and meter row Ceilometer holds.

        DELETE, not TRUNCATE: the API leaves some of its database sessions idle inside a
        transaction after a read (it drops them unclosed), and their share locks would block
        TRUNCATE's exclusive lock until those connections are reused.
        """
        with psycopg.connect(self.db_url) as conn:
            conn.execute("SET lock_timeout = '30s'")
            for table in STORAGE_TABLES:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed table names)

    def stored_samples(self) -> list[dict[str, Any]]:
        """Every sample row in Ceilometer's storage, joined as the SQL driver joins them.

        Keys: message_id, counter_name, counter_type, counter_unit, counter_volume, resource_id,
        project_id, user_id, source, timestamp, recorded_at (naive UTC datetimes) and
        resource_metadata (the stored nested dict). Ordered by timestamp, then message_id.
        """
        query = """
            SELECT s.message_id, m.name, m.type, m.unit, s.volume, r.resource_id, r.project_id,
                   r.user_id, r.source_id, s.timestamp, s.recorded_at, r.resource_metadata
            FROM sample s JOIN meter m ON m.id = s.meter_id
                          JOIN resource r ON r.internal_id = s.resource_id
            ORDER BY s.timestamp, s.message_id
        """
        keys = (
            "message_id",
            "counter_name",
            "counter_type",
            "counter_unit",
            "counter_volume",
            "resource_id",
            "project_id",
            "user_id",
            "source",
            "timestamp",
            "recorded_at",
            "resource_metadata",
        )
        with psycopg.connect(self.db_url) as conn:
            rows = conn.execute(query).fetchall()
        samples = [dict(zip(keys, row, strict=True)) for row in rows]
        for sample in samples:
            sample["resource_metadata"] = json.loads(sample["resource_metadata"] or "{}")
        return samples


def main() -> None:
    """Run the stack in the foreground to poke at it by hand: python -m tests.conformance.stack"""
    with RealStack() as stack:
        print(f"keystone   {stack.auth_url}  admin/admin-secret (project admin)")
        print(f"ceilometer {stack.ceilometer_url}  demo/demo-secret (project demo)")
        print(f"workdir    {stack.workdir}  database {stack.db_name}")
        print(f"export OS_TOKEN={stack.token(stack.admin)}")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
