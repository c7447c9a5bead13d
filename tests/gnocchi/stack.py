"""A real Gnocchi 4.7.1 (API + metricd) for tests, started from the dev virtualenv.

Gnocchi runs from the virtualenv that ``.ci/gnocchi/setup.sh`` builds, the way
``/work/shared/gnocchi-api.md`` section 7 verified it: PostgreSQL indexer, file storage and
incoming, the API under werkzeug (``.ci/gnocchi/serve.py``; ``gnocchi-api`` needs uwsgi) and one
``gnocchi-metricd`` worker.

    with GnocchiStack() as gnocchi:                       # basic auth, user "admin"
        gnocchi.create_ceilometer_archive_policies()
        gnocchi.create_ceilometer_resource_types()
        gnocchi.create_resource("instance", rid, "p1", "u1", display_name="vm", ...)
        mid = gnocchi.create_metric(rid, "cpu", "ceilometer-low-rate", unit="ns")
        gnocchi.post_measures(mid, [(datetime, 1.0), ...])
        gnocchi.measures(mid, 300, "mean")                # refresh=true: what Gnocchi answers

    with GnocchiKeystoneStack() as both:                  # keystone auth against a real Keystone
        both.session(both.admin).get(f"{both.gnocchi.url}/v1/metric")

Each stack gets its own PostgreSQL database (127.0.0.1:5432, user postgres, trust), named
``gnocchi_tests_<pid>_<n>``, and its own temporary directory (config, data, logs); stop() ends
the processes by PID, drops the database and removes the directory. Everything binds loopback.
Credentials are throwaway ones (the conformance Keystone's), so a log that shows them leaks
nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import psycopg
import requests
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.conformance.stack import (
    ADMIN,
    DEMO,
    LAUNCHERS,
    REGION,
    Credentials,
    RealStackError,
    free_port,
    venv_python,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import TracebackType

REPO = Path(__file__).resolve().parents[2]
GNOCCHI_DIR = REPO / ".ci" / "gnocchi"
REQUIREMENTS = GNOCCHI_DIR / "requirements-gnocchi.txt"
SERVE = GNOCCHI_DIR / "serve.py"
SETUP_COMMAND = "bash .ci/gnocchi/setup.sh"
KEYSTONE_SETUP_COMMAND = "bash .ci/conformance/setup.sh"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
DB_PREFIX = "gnocchi_tests"

#: The conformance Keystone's service account (project ``service``, role ``service``): what
#: keystonemiddleware in Gnocchi's pipeline logs in with to validate users' tokens.
SERVICE = Credentials("ceilometer", "ceilometer-secret", "service")

Measure = tuple[dt.datetime, float]

_FIVE_MIN_30_DAYS = [{"granularity": "5 minutes", "timespan": "30 days"}]
_HIGH = [
    {"granularity": "1 second", "timespan": "1 hour"},
    {"granularity": "1 minute", "timespan": "1 day"},
    {"granularity": "1 hour", "timespan": "365 days"},
]
#: The archive policies Ceilometer's Gnocchi publisher creates (gnocchi-api.md 3.2; Ceilometer's
#: ``publisher/data/gnocchi_resources.yaml``): ``-low`` is every meter's default, ``-low-rate``
#: is for cumulative counters such as ``cpu``; the ``-high`` pair exists since Stein.
CEILOMETER_ARCHIVE_POLICIES: tuple[dict[str, Any], ...] = (
    {
        "name": "ceilometer-low",
        "back_window": 0,
        "aggregation_methods": ["mean"],
        "definition": _FIVE_MIN_30_DAYS,
    },
    {
        "name": "ceilometer-low-rate",
        "back_window": 0,
        "aggregation_methods": ["mean", "rate:mean"],
        "definition": _FIVE_MIN_30_DAYS,
    },
    {
        "name": "ceilometer-high",
        "back_window": 0,
        "aggregation_methods": ["mean"],
        "definition": _HIGH,
    },
    {
        "name": "ceilometer-high-rate",
        "back_window": 0,
        "aggregation_methods": ["mean", "rate:mean"],
        "definition": _HIGH,
    },
)


def _string(*, required: bool = False) -> dict[str, Any]:
    return {"type": "string", "min_length": 0, "max_length": 255, "required": required}


_UUID = {"type": "uuid", "required": False}
_UUID_REQUIRED = {"type": "uuid", "required": True}
_DATETIME = {"type": "datetime", "required": False}

#: The resource types ``ceilometer-upgrade`` leaves in Gnocchi, in their final shape (gnocchi-api.md
#: 2.3, ``ceilometer/gnocchi_client.py``): Ceilometer creates the initial set and then patches it,
#: here each is created at once with the attributes it ends up with. Strings are 0..255 as there.
CEILOMETER_RESOURCE_TYPES: dict[str, dict[str, dict[str, Any]]] = {
    "instance": {
        "flavor_id": _string(required=True),
        "display_name": _string(required=True),
        "flavor_name": _string(required=True),
        "host": _string(),
        "image_ref": _string(),
        "server_group": _string(),
        "launched_at": _DATETIME,
        "created_at": _DATETIME,
        "deleted_at": _DATETIME,
        "availability_zone": _string(),
    },
    "instance_disk": {"name": _string(required=True), "instance_id": _UUID_REQUIRED},
    "instance_network_interface": {
        "name": _string(required=True),
        "instance_id": _UUID_REQUIRED,
    },
    "volume": {
        "display_name": _string(),
        "volume_type": _string(),
        "volume_type_id": _string(),
        "image_id": _UUID,
        "instance_id": _UUID,
    },
    "image": {
        "name": _string(required=True),
        "container_format": _string(),
        "disk_format": _string(),
    },
    "swift_account": {"storage_policy": _string()},
    "network": {},
    "identity": {},
    "stack": {},
}


class GnocchiStackError(RuntimeError):
    """The stack could not be built, started or used; the message says what to do."""


def cache_root() -> Path:
    env = os.environ.get("TAP_CEILOMETER_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "tap-ceilometer"
    return base / "gnocchi"


def gnocchi_venv() -> Path:
    """The cached venv for requirements-gnocchi.txt (the rule of .ci/gnocchi/setup.sh).

    ``TAP_CEILOMETER_GNOCCHI_VENV`` points at another venv instead.
    """
    override = os.environ.get("TAP_CEILOMETER_GNOCCHI_VENV")
    if override:
        venv = Path(override)
    else:
        digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
        venv = cache_root() / f"gnocchi-{digest}"
    if not (venv / ".tap-ceilometer-complete").is_file() or not (venv / "bin/python").exists():
        raise GnocchiStackError(
            f"The Gnocchi tests need the Gnocchi 4.7.1 virtualenv at {venv}, which is missing or "
            f"out of date. Build it with `{SETUP_COMMAND}` (from the repository root; under a "
            "minute the first time, a second when cached), then run the tests again."
        )
    return venv


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _timestamp(value: dt.datetime) -> str:
    """ISO 8601 in UTC with ``Z``: naive means UTC (as in Gnocchi), and no ``+`` to escape."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def _measures_body(measures: Iterable[Measure]) -> list[dict[str, Any]]:
    return [{"timestamp": _timestamp(ts), "value": float(value)} for ts, value in measures]


def _end_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM to the process (metricd's cotyledon master stops its workers), wait, then kill.

    The processes run in their own session, so if the master does not stop in time its whole
    process group (its own workers, nothing else) is killed by that group's id.
    """
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, 0)  # a worker outlived its master: end it too
        os.killpg(proc.pid, signal.SIGKILL)


class _TokenAuth(requests.auth.AuthBase):
    """``X-Auth-Token`` from a keystoneauth1 session (which caches and renews the token)."""

    def __init__(self, session: ks_session.Session) -> None:
        self._session = session

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["X-Auth-Token"] = str(self._session.get_token())
        return request


def _keystone_session(auth_url: str, credentials: Credentials) -> ks_session.Session:
    auth = v3.Password(
        auth_url=auth_url,
        username=credentials.username,
        password=credentials.password,
        project_name=credentials.project_name,
        user_domain_id=credentials.user_domain_id,
        project_domain_id=credentials.project_domain_id,
    )
    return ks_session.Session(auth=auth)


class GnocchiStack:
    """A real Gnocchi on a free loopback port: fresh database, data dir, API and metricd.

    ``auth_mode="basic"`` (default): the helpers call as user ``admin`` (password ignored by
    Gnocchi; role admin), or as any user name given. ``auth_mode="keystone"``: keystonemiddleware
    validates tokens against ``keystone_url`` with ``service_credentials``; the helpers log in as
    ``admin_credentials`` (or the Credentials given).
    """

    _counter = itertools.count(1)

    def __init__(
        self,
        *,
        auth_mode: Literal["basic", "keystone"] = "basic",
        keystone_url: str | None = None,
        service_credentials: Credentials = SERVICE,
        admin_credentials: Credentials = ADMIN,
        metric_processing_delay: float = 1,
        max_limit: int | None = None,
        workdir: Path | None = None,
        keep_workdir: bool | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        if auth_mode not in ("basic", "keystone"):
            raise ValueError(f"auth_mode must be basic or keystone, not {auth_mode!r}")
        if auth_mode == "keystone" and not keystone_url:
            raise ValueError("auth_mode='keystone' needs keystone_url (the Keystone root)")
        self.auth_mode = auth_mode
        self.keystone_url = keystone_url.rstrip("/") if keystone_url else None
        self.service_credentials = service_credentials
        self.admin_credentials = admin_credentials
        self.metric_processing_delay = metric_processing_delay
        self.max_limit = max_limit  # [api] max_limit: Gnocchi's page size cap (T4)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="tap-ceilometer-gnocchi-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._keep = (
            keep_workdir
            if keep_workdir is not None
            else os.environ.get("TAP_CEILOMETER_KEEP_STACK") == "1"
        )
        self._startup_timeout = startup_timeout
        self.port = free_port()
        #: The API root, without ``/v1`` (what Keystone's ``metric`` endpoint holds).
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_name = f"{DB_PREFIX}_{os.getpid()}_{next(self._counter)}"
        self.data_dir = self.workdir / "data"
        self.config_file = self.workdir / "gnocchi.conf"
        self.paste_file = self.workdir / "api-paste.ini"
        self.upgrade_log = self.workdir / "upgrade.log"
        self.api_log = self.workdir / "api.log"
        self.metricd_log = self.workdir / "metricd.log"
        self._venv: Path | None = None
        self._db_created = False
        self._api: subprocess.Popen[bytes] | None = None
        self._metricd: subprocess.Popen[bytes] | None = None
        self._log_files: list[IO[bytes]] = []
        self._http: dict[str | Credentials, requests.Session] = {}
        self._ks_sessions: dict[Credentials, ks_session.Session] = {}

    # -- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> GnocchiStack:
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

    def start(self) -> GnocchiStack:
        """Database, config, gnocchi-upgrade, API (answering) and metricd (processing)."""
        try:
            self._venv = gnocchi_venv()
            self._create_database()
            self.data_dir.mkdir(exist_ok=True)
            self._write_config()
            self._upgrade()
            self._start_api()
            self.start_metricd()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """End metricd and the API by PID, drop the database, remove the workdir."""
        if self._metricd is not None:
            _end_process(self._metricd)
            self._metricd = None
        if self._api is not None:
            _end_process(self._api)
            self._api = None
        for handle in self._log_files:
            handle.close()
        self._log_files.clear()
        for http in self._http.values():
            http.close()
        self._http.clear()
        for session in self._ks_sessions.values():
            session.session.close()
        self._ks_sessions.clear()
        self._drop_database()
        if self._own_workdir and not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _bin(self, name: str) -> str:
        assert self._venv is not None
        return str(self._venv / "bin" / name)

    def _create_database(self) -> None:
        try:
            with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{self.db_name}"')
        except psycopg.OperationalError as err:
            raise GnocchiStackError(
                f"Gnocchi's indexer needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust): "
                f"{err}. Start it with `bash .ci/setup`."
            ) from err
        self._db_created = True

    def _drop_database(self) -> None:
        if not self._db_created:
            return
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn,
        ):
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        self._db_created = False

    def _write_config(self) -> None:
        api = f"auth_mode = {self.auth_mode}\n"
        if self.max_limit is not None:
            api += f"max_limit = {self.max_limit}\n"
        keystone = ""
        if self.auth_mode == "keystone":
            # keystonemiddleware's filter reads its options through oslo.config project
            # "gnocchi", i.e. /etc/gnocchi/gnocchi.conf, not our --config-file: without
            # oslo_config_file every /v1 request is a 500 MissingAuthPlugin (gnocchi-api.md 1.2).
            self._write_paste_config()
            api += f"paste_config = {self.paste_file}\n"
            creds = self.service_credentials
            keystone = textwrap.dedent(
                f"""\
                [keystone_authtoken]
                www_authenticate_uri = {self.keystone_url}/v3
                auth_url = {self.keystone_url}
                auth_type = password
                username = {creds.username}
                password = {creds.password}
                project_name = {creds.project_name}
                user_domain_id = {creds.user_domain_id}
                project_domain_id = {creds.project_domain_id}
                region_name = {REGION}
                interface = public
                """
            )
        self.config_file.write_text(
            textwrap.dedent(
                f"""\
                [DEFAULT]
                debug = false
                verbose = true

                [indexer]
                url = postgresql://postgres@127.0.0.1:5432/{self.db_name}

                [storage]
                driver = file
                file_basepath = {self.data_dir}

                [incoming]
                driver = file
                file_basepath = {self.data_dir}

                [metricd]
                workers = 1
                metric_processing_delay = {self.metric_processing_delay}

                [api]
                """
            )
            + api
            + "\n"
            + keystone
        )

    def _write_paste_config(self) -> None:
        assert self._venv is not None
        stock = next(self._venv.glob("lib/python3*/site-packages/gnocchi/rest/api-paste.ini"))
        text = stock.read_text()
        section = "[filter:keystone_authtoken]\n"
        if section not in text:
            raise GnocchiStackError(f"{stock} has no {section.strip()} section any more")
        text = text.replace(section, f"{section}oslo_config_file = {self.config_file}\n")
        self.paste_file.write_text(text)

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
        env.pop("PYTHONPATH", None)
        return env

    def _upgrade(self) -> None:
        with self.upgrade_log.open("wb") as log:
            done = subprocess.run(
                [self._bin("gnocchi-upgrade"), "--config-file", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self._env(),
                timeout=self._startup_timeout,
                check=False,
            )
        if done.returncode != 0:
            raise GnocchiStackError(
                f"gnocchi-upgrade exited with status {done.returncode}.\n" + self.log_report()
            )

    def _spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("ab")
        self._log_files.append(handle)
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=self._env(),
            start_new_session=True,  # its own process group: see _end_process
        )

    def _start_api(self) -> None:
        self._api = self._spawn(
            [
                self._bin("python"),
                str(SERVE),
                str(self.port),
                "--config-file",
                str(self.config_file),
            ],
            self.api_log,
        )
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if self._api.poll() is not None:
                raise GnocchiStackError(
                    f"the Gnocchi API exited with status {self._api.returncode} while starting.\n"
                    + self.log_report()
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise GnocchiStackError(
                    f"the Gnocchi API did not answer within {self._startup_timeout:.0f} s.\n"
                    + self.log_report()
                )
            time.sleep(0.1)

    @property
    def metricd_running(self) -> bool:
        return self._metricd is not None and self._metricd.poll() is None

    def start_metricd(self, *, wait: bool = True) -> None:
        """Start gnocchi-metricd; with ``wait``, return once its processing worker runs.

        Readiness is the worker's ``Incoming driver does not support notification`` line (the
        file driver never notifies; needs ``verbose = true``), looked for after the log's
        current end so a restart does not match the previous run's line.
        """
        if self.metricd_running:
            return
        offset = self.metricd_log.stat().st_size if self.metricd_log.exists() else 0
        self._metricd = self._spawn(
            [self._bin("gnocchi-metricd"), "--config-file", str(self.config_file)],
            self.metricd_log,
        )
        if not wait:
            return
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if self._metricd.poll() is not None:
                raise GnocchiStackError(
                    f"gnocchi-metricd exited with status {self._metricd.returncode} while "
                    "starting.\n" + self.log_report()
                )
            with self.metricd_log.open("rb") as log:
                log.seek(offset)
                if b"does not support notification" in log.read():
                    return
            if time.monotonic() > deadline:
                raise GnocchiStackError(
                    f"gnocchi-metricd's processing worker did not start within "
                    f"{self._startup_timeout:.0f} s.\n" + self.log_report()
                )
            time.sleep(0.1)

    def stop_metricd(self) -> None:
        """Stop gnocchi-metricd (SIGTERM to its master): measures posted now stay pending."""
        if self._metricd is not None:
            _end_process(self._metricd)
            self._metricd = None

    def log_report(self, lines: int = 60) -> str:
        parts = []
        for title, path in (
            ("gnocchi-upgrade", self.upgrade_log),
            ("gnocchi API", self.api_log),
            ("gnocchi-metricd", self.metricd_log),
        ):
            if path.exists():
                parts.append(f"----- {title} log ({path}), last {lines} lines -----")
                parts.append(_tail(path, lines))
        return "\n".join(parts)

    # -- HTTP -------------------------------------------------------------------------------

    def _credentials(self, user: str | Credentials) -> Credentials:
        if isinstance(user, Credentials):
            return user
        known = {c.username: c for c in (self.admin_credentials, ADMIN, DEMO, SERVICE)}
        if user not in known:
            raise GnocchiStackError(
                f"in keystone mode a user is a Credentials; {user!r} is not a known principal"
            )
        return known[user]

    def keystone_session(self, credentials: Credentials) -> ks_session.Session:
        """A keystoneauth1 Session for ``credentials`` (keystone mode; cached per credentials)."""
        if self.keystone_url is None:
            raise GnocchiStackError("this stack runs auth_mode='basic': there is no Keystone")
        if credentials not in self._ks_sessions:
            self._ks_sessions[credentials] = _keystone_session(
                f"{self.keystone_url}/v3", credentials
            )
        return self._ks_sessions[credentials]

    def http(self, user: str | Credentials = "admin") -> requests.Session:
        """A requests Session that sends ``Accept: application/json`` and authenticates ``user``.

        Basic mode: ``Authorization: Basic <user>:`` (Gnocchi ignores the password; only the user
        named ``admin`` has role admin). Keystone mode: ``X-Auth-Token`` of ``user`` (Credentials,
        or the name of a conformance principal: admin, demo, ceilometer).
        """
        key: str | Credentials = user
        if key not in self._http:
            http = requests.Session()
            http.headers["Accept"] = "application/json"
            if self.auth_mode == "basic":
                name = user.username if isinstance(user, Credentials) else user
                http.auth = (name, "")
            else:
                http.auth = _TokenAuth(self.keystone_session(self._credentials(user)))
            self._http[key] = http
        return self._http[key]

    def request(
        self,
        method: str,
        path: str,
        *,
        user: str | Credentials = "admin",
        expect: Iterable[int] = (200,),
        **kwargs: Any,
    ) -> requests.Response:
        """``method`` on ``url + path``; a status not in ``expect`` raises, with the body."""
        response = self.http(user).request(method, f"{self.url}{path}", timeout=60, **kwargs)
        if response.status_code not in tuple(expect):
            raise GnocchiStackError(
                f"{method} {path} answered {response.status_code}: {response.text[:2000]}"
            )
        return response

    # -- helpers for tests ------------------------------------------------------------------

    def create_ceilometer_archive_policies(self) -> None:
        """The four ``ceilometer-*`` archive policies, as Ceilometer's publisher creates them."""
        for policy in CEILOMETER_ARCHIVE_POLICIES:
            self.request("POST", "/v1/archive_policy", json=policy, expect=(201,))

    def create_ceilometer_resource_types(self) -> None:
        """Ceilometer's resource types (instance, volume, instance_disk, ... ; see the table)."""
        for name, attributes in CEILOMETER_RESOURCE_TYPES.items():
            self.request(
                "POST",
                "/v1/resource_type",
                json={"name": name, "attributes": attributes},
                expect=(201,),
            )

    def archive_policy(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/archive_policy/{name}").json()
        return result

    def create_resource(
        self,
        resource_type: str,
        resource_id: str,
        /,
        project_id: str | None,
        user_id: str | None,
        *,
        user: str | Credentials = "admin",
        **attributes: Any,
    ) -> dict[str, Any]:
        """POST /v1/resource/<type>; ``attributes`` are the type's (and started_at, ...).

        Datetime values are sent as UTC ISO strings. Returns Gnocchi's answer (its ``id`` is a
        UUID5 of a non-UUID ``resource_id``, gnocchi-api.md 2.2).
        """
        body = {"id": resource_id, "project_id": project_id, "user_id": user_id}
        body.update(self._jsonable(attributes))
        result: dict[str, Any] = self.request(
            "POST", f"/v1/resource/{resource_type}", json=body, expect=(201,), user=user
        ).json()
        return result

    def patch_resource(
        self,
        resource_type: str,
        resource_id: str,
        /,
        *,
        user: str | Credentials = "admin",
        **attributes: Any,
    ) -> dict[str, Any]:
        """PATCH /v1/resource/<type>/<id>; a value that differs makes a new revision."""
        result: dict[str, Any] = self.request(
            "PATCH",
            f"/v1/resource/{resource_type}/{resource_id}",
            json=self._jsonable(attributes),
            user=user,
        ).json()
        return result

    def delete_resource(
        self, resource_type: str, resource_id: str, /, *, user: str | Credentials = "admin"
    ) -> None:
        """DELETE /v1/resource/<type>/<id>: the row, its history and its metrics go at once."""
        self.request(
            "DELETE", f"/v1/resource/{resource_type}/{resource_id}", expect=(204,), user=user
        )

    def create_metric(
        self,
        resource_id: str | None,
        name: str,
        archive_policy_name: str,
        unit: str | None = None,
        *,
        user: str | Credentials = "admin",
    ) -> str:
        """POST /v1/metric (on ``resource_id``, or standalone with None); returns the metric id."""
        body: dict[str, Any] = {"name": name, "archive_policy_name": archive_policy_name}
        if resource_id is not None:
            body["resource_id"] = resource_id
        if unit is not None:
            body["unit"] = unit
        answer = self.request("POST", "/v1/metric", json=body, expect=(201,), user=user).json()
        return str(answer["id"])

    def delete_metric(self, metric_id: str, *, user: str | Credentials = "admin") -> None:
        self.request("DELETE", f"/v1/metric/{metric_id}", expect=(204,), user=user)

    def post_measures(
        self, metric_id: str, measures: Iterable[Measure], *, user: str | Credentials = "admin"
    ) -> None:
        """POST /v1/metric/<id>/measures: raw (timestamp, value) pairs, pending until processed."""
        self.request(
            "POST",
            f"/v1/metric/{metric_id}/measures",
            json=_measures_body(measures),
            expect=(202,),
            user=user,
        )

    def batch_post(
        self,
        measures: Mapping[str, Iterable[Measure]],
        *,
        user: str | Credentials = "admin",
    ) -> None:
        """POST /v1/batch/metrics/measures: ``{metric_id: [(timestamp, value), ...]}`` at once."""
        body = {metric_id: _measures_body(points) for metric_id, points in measures.items()}
        self.request("POST", "/v1/batch/metrics/measures", json=body, expect=(202,), user=user)

    def measures(
        self,
        metric_id: str,
        granularity: float | None = None,
        aggregation: str = "mean",
        refresh: bool = True,
        *,
        start: dt.datetime | None = None,
        stop: dt.datetime | None = None,
        user: str | Credentials = "admin",
    ) -> list[list[Any]]:
        """GET /v1/metric/<id>/measures as Gnocchi answers it: ``[[iso ts, granularity, value]]``.

        ``refresh=True`` (default) aggregates the metric's pending measures first, so the answer
        does not depend on metricd's timing.
        """
        params: dict[str, str] = {
            "aggregation": aggregation,
            "refresh": "true" if refresh else "false",
        }
        if granularity is not None:
            params["granularity"] = f"{granularity:g}"
        if start is not None:
            params["start"] = _timestamp(start)
        if stop is not None:
            params["stop"] = _timestamp(stop)
        result: list[list[Any]] = self.request(
            "GET", f"/v1/metric/{metric_id}/measures", params=params, user=user
        ).json()
        return result

    def status(self) -> dict[str, Any]:
        """GET /v1/status?details=false (admin only): what is still pending."""
        result: dict[str, Any] = self.request(
            "GET", "/v1/status", params={"details": "false"}
        ).json()
        return result

    def wait_until_processed(self, timeout: float = 60.0) -> None:
        """Poll GET /v1/status until metricd has no pending measures left."""
        if not self.metricd_running:
            raise GnocchiStackError(
                "wait_until_processed() needs gnocchi-metricd running: call start_metricd() first"
            )
        deadline = time.monotonic() + timeout
        while True:
            summary = self.status()["storage"]["summary"]
            if summary["metrics"] == 0 and summary["measures"] == 0:
                return
            if time.monotonic() > deadline:
                raise GnocchiStackError(
                    f"metricd still has pending measures after {timeout:.0f} s: {summary}.\n"
                    + self.log_report()
                )
            time.sleep(0.2)

    @staticmethod
    def _jsonable(attributes: Mapping[str, Any]) -> dict[str, Any]:
        return {
            key: _timestamp(value) if isinstance(value, dt.datetime) else value
            for key, value in attributes.items()
        }


class KeystoneServer:
    """The conformance tier's real Keystone 30, alone, with ``metric`` in its catalog.

    Same launcher (``.ci/conformance/launcher/keystone_serve.py``) and venv as RealStack, started
    with ``--gnocchi-url`` and without ``--ceilometer-url``. Principals: ADMIN, DEMO, SERVICE.
    """

    def __init__(self, *, gnocchi_url: str, workdir: Path, startup_timeout: float = 60.0) -> None:
        self.gnocchi_url = gnocchi_url
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.auth_url = f"{self.url}/v3"
        self.log = workdir / "keystone.log"
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def spawn(self) -> None:
        """Start the process; wait_until_ready() waits for it (start Gnocchi meanwhile)."""
        try:
            python = venv_python("keystone")
        except RealStackError as err:
            raise GnocchiStackError(str(err)) from err
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
        env.pop("PYTHONPATH", None)
        self._proc = subprocess.Popen(
            [
                str(python),
                str(LAUNCHERS / "keystone_serve.py"),
                *("--port", str(self.port)),
                *("--workdir", str(self.workdir / "keystone")),
                *("--gnocchi-url", self.gnocchi_url),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
            start_new_session=True,
        )

    def wait_until_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if self._proc.poll() is not None:
                raise GnocchiStackError(
                    f"keystone exited with status {self._proc.returncode} while starting.\n"
                    + self.log_report()
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.auth_url, timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise GnocchiStackError(
                    f"keystone did not answer within {self._startup_timeout:.0f} s.\n"
                    + self.log_report()
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None:
            _end_process(self._proc)
            self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_report(self, lines: int = 60) -> str:
        return f"----- keystone log ({self.log}), last {lines} lines -----\n" + _tail(
            self.log, lines
        )


class GnocchiKeystoneStack:
    """A real Keystone plus a Gnocchi in ``auth_mode="keystone"`` that validates its tokens.

    Keystone's catalog has ``metric`` (name ``gnocchi``) at ``gnocchi.url`` on the public,
    internal and admin interfaces of ``RegionOne``; Gnocchi's keystonemiddleware logs in as
    SERVICE. ``admin`` (role admin, sees everything), ``demo`` (role member in project demo) and
    ``service`` are the Credentials to log in with.
    """

    def __init__(self, *, metric_processing_delay: float = 1, **gnocchi_options: Any) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="tap-ceilometer-gnocchi-ks-"))
        self._keep = os.environ.get("TAP_CEILOMETER_KEEP_STACK") == "1"
        # Each needs the other's URL: both ports are chosen here, before either starts.
        self.keystone = KeystoneServer(gnocchi_url="", workdir=self.workdir)
        self.gnocchi = GnocchiStack(
            auth_mode="keystone",
            keystone_url=self.keystone.url,
            metric_processing_delay=metric_processing_delay,
            workdir=self.workdir / "gnocchi",
            keep_workdir=True,  # the whole workdir is removed below
            **gnocchi_options,
        )
        self.keystone.gnocchi_url = self.gnocchi.url
        self.auth_url = self.keystone.auth_url
        self.region = REGION
        self.admin = ADMIN
        self.demo = DEMO
        self.service = SERVICE
        self._sessions: dict[Credentials, ks_session.Session] = {}

    def __enter__(self) -> GnocchiKeystoneStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> GnocchiKeystoneStack:
        """Keystone's set-up runs while Gnocchi upgrades and starts (they do not need each other
        until the first token is checked)."""
        try:
            self.keystone.spawn()
            self.gnocchi.start()
            self.keystone.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for session in self._sessions.values():
            session.session.close()
        self._sessions.clear()
        self.gnocchi.stop()
        self.keystone.stop()
        if not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def session(self, credentials: Credentials) -> ks_session.Session:
        """A keystoneauth1 Session logged in as ``credentials`` (cached per credentials)."""
        if credentials not in self._sessions:
            self._sessions[credentials] = _keystone_session(self.auth_url, credentials)
        return self._sessions[credentials]

    def token(self, credentials: Credentials) -> str:
        token = self.session(credentials).get_token()
        assert token
        return str(token)

    def log_report(self, lines: int = 60) -> str:
        return self.keystone.log_report(lines) + "\n" + self.gnocchi.log_report(lines)


def main() -> None:
    """Run a stack in the foreground to poke at it by hand: python -m tests.gnocchi.stack"""
    with GnocchiStack() as gnocchi:
        gnocchi.create_ceilometer_archive_policies()
        gnocchi.create_ceilometer_resource_types()
        print(f"gnocchi  {gnocchi.url}  basic auth, user admin (any password)")
        print(f"workdir  {gnocchi.workdir}  database {gnocchi.db_name}")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
