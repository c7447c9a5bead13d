"""Set up and serve a real Keystone in one process, for the conformance tier.

Runs with the Keystone virtualenv's python (built by ``.ci/conformance/setup.sh``). It does
what ``keystone-manage db_sync``, ``fernet_setup``, ``credential_setup`` and ``bootstrap`` would
do, but in one process, paying Keystone's import cost once, then serves the public API
(``/v3``) until killed.

Everything lives in ``--workdir``: the SQLite database, the three key repositories (tokens,
receipts, credentials; naming the receipts repository keeps fernet_setup out of /etc/keystone)
and the config.

Principals (domain ``default``, region ``RegionOne``):
- ``admin`` / ``admin-secret``, project ``admin``, role ``admin`` (the bootstrap admin)
- ``demo`` / ``demo-secret``, project ``demo``, role ``member``
- ``ceilometer`` / ``ceilometer-secret``, project ``service``, role ``service``: the account
  keystonemiddleware uses in Ceilometer's paste pipeline to validate users' tokens
Catalog: ``identity`` at this server, ``metering`` (name ``ceilometer``) at ``--ceilometer-url``
and, when ``--gnocchi-url`` is given, ``metric`` (name ``gnocchi``) at that URL (the server root,
no ``/v1``, as Ceilometer's install guide registers it); each on the public, internal and admin
interfaces. Without ``--ceilometer-url`` there is no ``metering`` service: the Gnocchi tier
(tests/gnocchi/stack.py) starts this Keystone alone, for Gnocchi only.
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
import uuid
import warnings
from pathlib import Path

REGION = "RegionOne"
ADMIN = ("admin", "admin-secret", "admin")
DEMO = ("demo", "demo-secret", "demo")
SERVICE_USER = ("ceilometer", "ceilometer-secret", "service")


def _write_config(workdir: Path) -> Path:
    conf = workdir / "keystone.conf"
    conf.write_text(
        textwrap.dedent(
            f"""\
            [DEFAULT]
            debug = false
            use_stderr = true

            [database]
            connection = sqlite:///{workdir / "keystone.db"}

            [token]
            provider = fernet
            expiration = 7200

            [fernet_tokens]
            key_repository = {workdir / "fernet-keys"}

            [fernet_receipts]
            key_repository = {workdir / "fernet-receipts"}

            [credential]
            key_repository = {workdir / "credential-keys"}

            [identity]
            # bcrypt's default cost makes every password login take ~0.3 s; 4 is its minimum.
            password_hash_rounds = 4

            [cache]
            enabled = true
            backend = dogpile.cache.memory
            """
        )
    )
    return conf


def _set_up(conf_path: Path, keystone_url: str, services: dict[str, tuple[str, str]]) -> None:
    """Do what keystone-manage would; ``services`` maps a service type to (name, endpoint URL)."""
    import keystone.conf
    import keystone.server
    from keystone.cmd import bootstrap as ks_bootstrap
    from keystone.cmd import cli
    from keystone.common import fernet_utils, provider_api
    from keystone.common.sql import upgrades
    from keystone.credential.providers import fernet as credential_fernet
    from keystone.server import backends

    conf = keystone.conf.CONF
    keystone.server.configure(config_files=[str(conf_path)])

    upgrades.offline_sync_database_to_version()  # keystone-manage db_sync
    for group in ("fernet_tokens", "fernet_receipts"):  # keystone-manage fernet_setup
        cli.FernetSetup.initialize_fernet_repository(None, None, group)
    futils = fernet_utils.FernetUtils(  # keystone-manage credential_setup
        conf.credential.key_repository, credential_fernet.MAX_ACTIVE_KEYS, "credential"
    )
    futils.create_key_directory(None, None)
    if futils.validate_key_repository(requires_write=True):
        futils.initialize_key_repository(None, None)

    backends.load_backends()

    # keystone-manage bootstrap: the backends are loaded once for the whole process, so the
    # Bootstrapper must not load them a second time.
    original_load = ks_bootstrap.backends.load_backends
    ks_bootstrap.backends.load_backends = lambda: None
    try:
        boot = ks_bootstrap.Bootstrapper()
    finally:
        ks_bootstrap.backends.load_backends = original_load
    boot.admin_username, boot.admin_password, boot.project_name = ADMIN
    boot.admin_role_name = "admin"
    boot.service_name = "keystone"
    boot.region_id = REGION
    boot.public_url = boot.internal_url = boot.admin_url = keystone_url
    boot.immutable_roles = True
    boot.bootstrap()

    apis = provider_api.ProviderAPIs
    domain = conf.identity.default_domain_id
    roles = {r["name"]: r["id"] for r in apis.role_api.list_roles()}
    for name, password, project_name, role in (
        (*DEMO, "member"),
        (*SERVICE_USER, "service"),
    ):
        project_id = uuid.uuid4().hex
        apis.resource_api.create_project(
            project_id,
            {"id": project_id, "name": project_name, "domain_id": domain, "enabled": True},
        )
        user = apis.identity_api.create_user(
            {"name": name, "password": password, "domain_id": domain, "enabled": True}
        )
        apis.assignment_api.add_role_to_user_and_project(user["id"], project_id, roles[role])

    for service_type, (service_name, url) in services.items():
        service_id = uuid.uuid4().hex
        apis.catalog_api.create_service(
            service_id,
            {"id": service_id, "type": service_type, "name": service_name, "enabled": True},
        )
        for interface in ("public", "internal", "admin"):
            endpoint_id = uuid.uuid4().hex
            apis.catalog_api.create_endpoint(
                endpoint_id,
                {
                    "id": endpoint_id,
                    "service_id": service_id,
                    "interface": interface,
                    "url": url,
                    "region_id": REGION,
                    "enabled": True,
                },
            )


def _application() -> object:
    from keystone.server.flask import application
    from keystone.server.flask import core as flask_core

    app = application.application_factory("public")
    return flask_core.setup_app_middleware(app)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--ceilometer-url", help="the metering endpoint's URL (none if absent)")
    parser.add_argument("--gnocchi-url", help="the metric endpoint's URL, the Gnocchi root")
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # oslo.config parses sys.argv: keep ours away from it
    warnings.simplefilter("ignore")
    os.environ.setdefault("OS_OSLO_MESSAGING_NOTIFICATIONS__DRIVER", "noop")

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    keystone_url = f"http://{args.host}:{args.port}"
    services: dict[str, tuple[str, str]] = {}
    if args.ceilometer_url:
        services["metering"] = ("ceilometer", args.ceilometer_url)
    if args.gnocchi_url:
        services["metric"] = ("gnocchi", args.gnocchi_url)
    _set_up(_write_config(workdir), keystone_url, services)

    from wsgi_server import serve

    serve(_application(), args.host, args.port, serialise=True)


if __name__ == "__main__":
    main()
