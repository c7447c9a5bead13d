"""Set up and serve the real Ceilometer 9.0.7 API v2, for the conformance tier.

Runs with the Ceilometer virtualenv's python (built by ``.ci/conformance/setup.sh``).

- Applies the import-time bridges of ``ceilometer_compat`` (no installed file is edited).
- Writes ``ceilometer.conf`` into ``--workdir``: fake messaging transport, the database dispatcher,
  Gnocchi/Aodh/Panko detection off, storage in PostgreSQL, keystonemiddleware ``authtoken`` against
  the real Keystone at ``--keystone-url`` with the ``ceilometer`` service account.
- ``--fresh-db`` drops and re-creates the storage database, then creates Ceilometer's schema
  through its own storage driver (what ``ceilometer-dbsync`` does).
- Serves the stock paste pipeline (``cors http_proxy_to_wsgi request_id authtoken api-server``)
  from the installed ``etc/ceilometer/api_paste.ini`` and ``policy.json``.

``ceilometer_seed.py --workdir <workdir>`` writes samples into the same storage.
"""

# Imports are deferred on purpose: these launchers run in the servers' own virtualenvs, where
# the compat bridges must be in place before Ceilometer loads and oslo.config must not see
# our arguments.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

warnings.simplefilter("ignore")

import ceilometer_compat  # noqa: E402  (the bridges must be in place before Ceilometer loads)

ceilometer_compat.apply()


def config_path(workdir: Path) -> Path:
    """Where the config goes: ``~/.ceilometer/ceilometer.conf`` with HOME set to the workdir.

    keystonemiddleware's ``authtoken`` filter is configured in the stock paste file by
    ``oslo_config_project = ceilometer``: it loads its own options from the project's default
    config locations (in production ``/etc/ceilometer/ceilometer.conf``), not from the file
    given to Ceilometer with ``--config-file``. ``~/.ceilometer/`` is one of those locations, and
    pointing HOME at the workdir puts it there without touching /etc or editing the paste file.
    """
    return workdir / ".ceilometer" / "ceilometer.conf"


def use_workdir_as_home(workdir: Path) -> None:
    os.environ["HOME"] = str(workdir)


def _write_config(workdir: Path, keystone_url: str, db_url: str) -> Path:
    etc = Path(sys.prefix) / "etc" / "ceilometer"
    conf = config_path(workdir)
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        textwrap.dedent(
            f"""\
            [DEFAULT]
            debug = false
            use_stderr = true
            transport_url = fake://
            meter_dispatchers = database
            api_paste_config = {etc / "api_paste.ini"}

            [api]
            gnocchi_is_enabled = false
            aodh_is_enabled = false
            panko_is_enabled = false
            default_api_return_limit = 100

            [database]
            metering_connection = {db_url}
            connection = {db_url}
            max_retries = 3
            retry_interval = 1

            [oslo_policy]
            policy_file = {etc / "policy.json"}

            [oslo_messaging_notifications]
            driver = noop

            [keystone_authtoken]
            www_authenticate_uri = {keystone_url}
            auth_url = {keystone_url}
            auth_type = password
            username = ceilometer
            password = ceilometer-secret
            project_name = service
            user_domain_id = default
            project_domain_id = default
            region_name = RegionOne
            """
        )
    )
    return conf


def _recreate_database(db_url: str) -> None:
    import psycopg2

    parts = urlsplit(db_url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    conn = psycopg2.connect(maintenance)
    try:
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def load_conf(config_file: Path) -> object:
    from ceilometer import service

    return service.prepare_service(argv=["ceilometer-api", "--config-file", str(config_file)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--keystone-url", required=True, help="unversioned Keystone URL")
    parser.add_argument(
        "--db-url",
        default="postgresql+psycopg2://postgres@127.0.0.1:5432/ceilometer_conformance",
        help="SQLAlchemy URL of Ceilometer's storage database",
    )
    parser.add_argument("--fresh-db", action="store_true", help="drop and re-create the database")
    args = parser.parse_args()

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    use_workdir_as_home(workdir)
    config_file = _write_config(workdir, args.keystone_url.rstrip("/"), args.db_url)
    if args.fresh_db:
        _recreate_database(args.db_url)

    from ceilometer import storage
    from ceilometer.api import app as api_app

    conf = load_conf(config_file)
    storage.get_connection_from_config(conf).upgrade()  # ceilometer-dbsync
    application = api_app.load_app(conf)

    from wsgi_server import serve

    serve(application, args.host, args.port)


if __name__ == "__main__":
    main()
