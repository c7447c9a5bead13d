"""keystoneauth1 (unmodified) against the simulated Keystone: every auth mode, catalog, TLS."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import requests
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import identity, session
from keystoneauth1.identity import v2, v3

from ceilometer_simulator import Simulator, make_self_signed_cert, project_id
from tests.simulator.conftest import handmade_samples

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def ks() -> Iterator[Simulator]:
    with Simulator() as s:
        s.store.add_samples(handmade_samples())
        yield s


def _check(sess: session.Session, s: Simulator, interface: str = "public") -> None:
    assert sess.get_endpoint(service_type="metering", interface=interface) == s.endpoints[interface]
    r = sess.get(
        "/v2/meters/meter.test",
        endpoint_filter={
            "service_type": "metering",
            "interface": interface,
            "region_name": "RegionOne",
        },
        params={"limit": 10},
    )
    assert r.status_code == 200
    assert len(r.json()) >= 3


def test_v3_password_by_names(ks: Simulator) -> None:
    """v3 password: user name + domain name, project name + domain id; all three interfaces."""
    auth = v3.Password(
        auth_url=ks.auth_url,
        username="admin",
        password="admin-secret",
        user_domain_name="Default",
        project_name="admin",
        project_domain_id="default",
    )
    sess = session.Session(auth=auth)
    for interface in ("public", "internal", "admin"):
        _check(sess, ks, interface)
    assert sess.get_endpoint(service_type="metering", interface="internal") == ks.url + "/internal"
    ref = auth.get_access(sess)
    assert ref.role_names == ["admin", "member"]
    assert ref.project_name == "admin"
    assert ref.expires is not None


def test_v3_password_by_ids(ks: Simulator) -> None:
    """v3 password: user id and project id; demo is a member of the generated project 0."""
    demo = ks.keystone.identities.user_by_name("demo", "default")
    assert demo is not None
    auth = v3.Password(
        auth_url=ks.auth_url, user_id=demo.id, password="demo-secret", project_id=project_id(0)
    )
    sess = session.Session(auth=auth)
    _check(sess, ks)
    assert auth.get_access(sess).role_names == ["member"]


def test_v2_password(ks: Simulator) -> None:
    """v2.0 passwordCredentials with tenantName, and with tenantId."""
    sess = session.Session(
        auth=v2.Password(
            auth_url=ks.auth_url_v2, username="admin", password="admin-secret", tenant_name="admin"
        )
    )
    _check(sess, ks)
    _check(sess, ks, "admin")
    sess = session.Session(
        auth=v2.Password(
            auth_url=ks.auth_url_v2,
            username="demo",
            password="demo-secret",
            tenant_id=project_id(0),
        )
    )
    _check(sess, ks, "internal")


def test_v3_application_credential(ks: Simulator) -> None:
    """v3 application_credential by id + secret."""
    auth = v3.ApplicationCredential(
        auth_url=ks.auth_url,
        application_credential_id="admin-app-cred",
        application_credential_secret="app-cred-secret",
    )
    _check(session.Session(auth=auth), ks)


@pytest.mark.parametrize("suffix", ["", "/v3", "/v2.0"])
def test_generic_password_with_discovery(ks: Simulator, suffix: str) -> None:
    """identity.Password discovers the version at the unversioned root and at /v3, /v2.0."""
    kwargs = (
        {"project_domain_name": "Default", "user_domain_name": "Default"}
        if suffix != "/v2.0"
        else {}
    )
    auth = identity.Password(
        auth_url=ks.identity_url + suffix,
        username="admin",
        password="admin-secret",
        project_name="admin",
        **kwargs,
    )
    _check(session.Session(auth=auth), ks)


def test_discovery_documents(ks: Simulator) -> None:
    """GET /identity is a 300 version list; /identity/v3 and /v2.0 are version documents."""
    r = requests.get(ks.identity_url, timeout=10)
    assert r.status_code == 300
    assert [v["id"] for v in r.json()["versions"]["values"]] == ["v3.8", "v2.0"]
    assert requests.get(ks.auth_url, timeout=10).json()["version"]["status"] == "stable"
    assert requests.get(ks.auth_url_v2, timeout=10).json()["version"]["id"] == "v2.0"


def test_wrong_credentials_get_keystone_401(ks: Simulator) -> None:
    """Wrong password, unknown project, bad app-cred secret: Keystone's 401 body."""
    bad = [
        v3.Password(
            auth_url=ks.auth_url,
            username="admin",
            password="nope",
            user_domain_name="Default",
            project_name="admin",
            project_domain_name="Default",
        ),
        v3.Password(
            auth_url=ks.auth_url,
            username="demo",
            password="demo-secret",
            user_domain_name="Default",
            project_name="admin",
            project_domain_name="Default",
        ),
        v3.ApplicationCredential(
            auth_url=ks.auth_url,
            application_credential_id="admin-app-cred",
            application_credential_secret="x",
        ),
        v2.Password(
            auth_url=ks.auth_url_v2, username="admin", password="nope", tenant_name="admin"
        ),
    ]
    for auth in bad:
        with pytest.raises(ks_exc.Unauthorized) as info:
            session.Session(auth=auth).get_token()
        assert info.value.response is not None
        assert json.loads(info.value.response.text)["error"] == {
            "code": 401,
            "title": "Unauthorized",
            "message": "The request you have made requires authentication.",
        }


def test_tls_with_ca_cert(tmp_path: object) -> None:
    """HTTPS from cert/key paths; keystoneauth verifies the chain with the cert as CA."""
    cert, key = make_self_signed_cert(str(tmp_path))
    with Simulator(certfile=cert, keyfile=key) as s:
        assert s.url.startswith("https://127.0.0.1:")
        s.store.add_samples(handmade_samples())
        auth = v3.Password(
            auth_url=s.auth_url,
            username="admin",
            password="admin-secret",
            user_domain_name="Default",
            project_name="admin",
            project_domain_name="Default",
        )
        _check(session.Session(auth=auth, verify=cert), s)
        fresh_auth = v3.Password(
            auth_url=s.auth_url,
            username="admin",
            password="admin-secret",
            user_domain_name="Default",
            project_name="admin",
            project_domain_name="Default",
        )
        with pytest.raises(ks_exc.SSLError):
            session.Session(auth=fresh_auth, verify=True).get_token()
