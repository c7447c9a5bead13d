"""keystoneauth1 (unmodified) against the simulated Keystone: every auth mode, catalog, TLS."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import requests
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import identity, session
from keystoneauth1.identity import v2, v3

from ceilometer_simulator import Identities, Simulator, make_self_signed_cert, project_id
from ceilometer_simulator.generator import user_id
from ceilometer_simulator.keystone import _id
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


# -- identity listings (projects, domains, users) ----------------------------------------------

PARTNERS = _id("domain", "partners")
# project_id(i) -> (name, domain, enabled, parent index or None): the default identities.
GENERATED = {
    0: ("demo", "default", True, None),
    1: ("acme-prod", "default", True, None),
    2: ("acme-dev", "default", True, 1),
    3: ("globex", "default", True, None),
    4: ("initech", "default", False, None),
    5: ("Zürich-lab", "default", True, None),
    6: ("umbrella", PARTNERS, True, None),
    7: ("東京", "default", True, None),
    8: ("hooli", "default", True, None),
    9: ("stark-rnd", "default", True, None),
}
ADMIN_PROJECT = _id("project", "admin")


def _password_session(s: Simulator, user: str) -> session.Session:
    auth = v3.Password(
        auth_url=s.auth_url,
        username=user,
        password=f"{user}-secret",
        user_domain_id="default",
        project_name=user,
        project_domain_id="default",
    )
    return session.Session(auth=auth)


@pytest.fixture(scope="module")
def admin_sess(ks: Simulator) -> session.Session:
    return _password_session(ks, "admin")


@pytest.fixture(scope="module")
def demo_sess(ks: Simulator) -> session.Session:
    return _password_session(ks, "demo")


def _get(sess: session.Session, s: Simulator, path: str, **params: str) -> Any:
    r = sess.get(s.auth_url + path, params=params or None)
    assert r.status_code == 200, r.text
    return r.json()


def _refused(sess: session.Session, s: Simulator, path: str, status: int) -> Any:
    r = sess.get(s.auth_url + path, raise_exc=False)
    assert r.status_code == status, r.text
    return r.json()


def _forbidden(action: str) -> dict[str, Any]:
    message = f"You are not authorized to perform the requested action: identity:{action}."
    return {"error": {"code": 403, "title": "Forbidden", "message": message}}


def _not_found(message: str) -> dict[str, Any]:
    return {"error": {"code": 404, "title": "Not Found", "message": message}}


def _user_id(s: Simulator, name: str) -> str:
    for u in s.keystone.identities.users.values():
        if u.name == name:
            return u.id
    raise KeyError(name)


def test_default_identities_keep_admin_and_demo() -> None:
    """admin and demo keep their ids, passwords, projects and roles; no one else logs in."""
    ids = Identities.default()
    admin = ids.users[_id("user", "admin")]
    demo = ids.users[_id("user", "demo")]
    assert (admin.name, admin.password, admin.default_project_id) == (
        "admin",
        "admin-secret",
        ADMIN_PROJECT,
    )
    assert admin.roles == {
        ADMIN_PROJECT: ["admin", "member"],
        project_id(0): ["admin", "member"],
    }
    assert (demo.name, demo.password, demo.roles) == (
        "demo",
        "demo-secret",
        {project_id(0): ["member"]},
    )
    assert [u.name for u in ids.users.values() if u.password is not None] == ["admin", "demo"]
    assert ids.projects[ADMIN_PROJECT].name == "admin"
    assert set(ids.domains) == {"default", PARTNERS}


def test_default_identities_name_the_generated_cloud() -> None:
    """project_id(0..9) and user_id(0..9, 0..1) of the generator all have readable names."""
    ids = Identities.default()
    for i, (name, domain, enabled, parent) in GENERATED.items():
        p = ids.projects[project_id(i)]
        assert (p.name, p.domain_id, p.enabled) == (name, domain, enabled)
        assert p.parent_id == (None if parent is None else project_id(parent))
    assert len(ids.projects) == 11
    names = set()
    for p in range(10):
        for u in range(2):
            user = ids.users[user_id(p, u)]
            assert user.password is None
            assert user.default_project_id == project_id(p)
            assert user.roles == {project_id(p): ["member"]}
            assert user.email is not None
            assert user.domain_id == ids.projects[project_id(p)].domain_id
            names.add(user.name)
    assert len(names) == 20
    assert len(ids.users) == 22


def test_admin_lists_projects(ks: Simulator, admin_sess: session.Session) -> None:
    """GET /v3/projects: every project with its name, sorted by id, in Keystone's shape."""
    body = _get(admin_sess, ks, "/projects")
    assert body["links"] == {"next": None, "self": ks.auth_url + "/projects", "previous": None}
    assert "truncated" not in body
    projects = body["projects"]
    assert [p["id"] for p in projects] == sorted(p["id"] for p in projects)
    by_id = {p["id"]: p for p in projects}
    expected = {project_id(i): v[0] for i, v in GENERATED.items()} | {ADMIN_PROJECT: "admin"}
    assert {i: p["name"] for i, p in by_id.items()} == expected
    assert by_id[project_id(2)] == {
        "id": project_id(2),
        "name": "acme-dev",
        "domain_id": "default",
        "description": "",
        "enabled": True,
        "parent_id": project_id(1),
        "is_domain": False,
        "tags": ["dev"],
        "options": {},
        "links": {"self": f"{ks.auth_url}/projects/{project_id(2)}"},
    }
    # A top-level project's parent is its domain; the Partners project lives there.
    assert by_id[project_id(6)]["parent_id"] == by_id[project_id(6)]["domain_id"] == PARTNERS
    assert by_id[project_id(0)]["parent_id"] == "default"
    assert by_id[project_id(4)]["enabled"] is False
    assert by_id[project_id(1)]["description"] == "Acme production workloads"


def test_admin_lists_domains(ks: Simulator, admin_sess: session.Session) -> None:
    """GET /v3/domains: Default (with Keystone's bootstrap description) and Partners."""
    body = _get(admin_sess, ks, "/domains")
    assert body == {
        "domains": [
            {
                "id": PARTNERS,
                "name": "Partners",
                "description": "Organisations we host",
                "enabled": True,
                "tags": [],
                "options": {},
                "links": {"self": f"{ks.auth_url}/domains/{PARTNERS}"},
            },
            {
                "id": "default",
                "name": "Default",
                "description": "The default domain",
                "enabled": True,
                "tags": [],
                "options": {},
                "links": {"self": f"{ks.auth_url}/domains/default"},
            },
        ],
        "links": {"next": None, "self": ks.auth_url + "/domains", "previous": None},
    }
    assert _get(admin_sess, ks, f"/domains/{PARTNERS}") == {"domain": body["domains"][0]}


def test_admin_lists_users_without_passwords(ks: Simulator, admin_sess: session.Session) -> None:
    """GET /v3/users: every user; extras (email, description) only when set; no password."""
    r = admin_sess.get(ks.auth_url + "/users")
    assert "secret" not in r.text
    users = {u["name"]: u for u in r.json()["users"]}
    assert len(users) == 22
    assert {"admin", "demo", "alice", "zoë", "peggy"} <= set(users)
    for user in users.values():
        assert "password" not in user
        assert user["password_expires_at"] is None
    assert users["admin"] == {
        "id": _id("user", "admin"),
        "name": "admin",
        "domain_id": "default",
        "enabled": True,
        "default_project_id": ADMIN_PROJECT,
        "password_expires_at": None,
        "options": {},
        "links": {"self": f"{ks.auth_url}/users/{_id('user', 'admin')}"},
    }
    assert users["alice"]["email"] == "alice@example.com"
    assert users["alice"]["id"] == user_id(0, 0)
    assert "description" not in users["alice"]
    assert users["carol"]["description"] == "On call"
    assert users["peggy"]["domain_id"] == PARTNERS
    assert users["judy"]["enabled"] is False
    one = _get(admin_sess, ks, f"/users/{user_id(0, 0)}")
    assert one == {"user": users["alice"]}


def test_demo_is_refused_the_lists(ks: Simulator, demo_sess: session.Session) -> None:
    """A member (no admin role) gets Keystone's 403 on every list, and on others' entities."""
    for kind in ("projects", "domains", "users"):
        assert _refused(demo_sess, ks, f"/{kind}", 403) == _forbidden(f"list_{kind}")
    assert _refused(demo_sess, ks, f"/projects/{ADMIN_PROJECT}", 403) == _forbidden("get_project")
    # The policy runs before the lookup: an unknown id is a 403 too, not a 404.
    assert _refused(demo_sess, ks, "/projects/nope", 403) == _forbidden("get_project")
    admin_id = _id("user", "admin")
    assert _refused(demo_sess, ks, f"/users/{admin_id}", 403) == _forbidden("get_user")
    assert _refused(demo_sess, ks, f"/users/{admin_id}/projects", 403) == _forbidden(
        "list_user_projects"
    )
    assert _refused(demo_sess, ks, f"/domains/{PARTNERS}", 403) == _forbidden("get_domain")


def test_demo_sees_itself_and_its_project(ks: Simulator, demo_sess: session.Session) -> None:
    """/v3/auth/projects, /v3/users/{own id}(/projects), its project and its project's domain."""
    demo_id = _id("user", "demo")
    mine = _get(demo_sess, ks, "/auth/projects")
    assert [p["name"] for p in mine["projects"]] == ["demo"]
    assert mine["links"]["self"] == ks.auth_url + "/auth/projects"
    assert _get(demo_sess, ks, f"/users/{demo_id}/projects")["projects"] == mine["projects"]
    assert _get(demo_sess, ks, f"/projects/{project_id(0)}") == {"project": mine["projects"][0]}
    assert _get(demo_sess, ks, f"/users/{demo_id}") == {
        "user": {
            "id": demo_id,
            "name": "demo",
            "domain_id": "default",
            "enabled": True,
            "default_project_id": project_id(0),
            "password_expires_at": None,
            "options": {},
            "links": {"self": f"{ks.auth_url}/users/{demo_id}"},
        }
    }
    assert _get(demo_sess, ks, "/domains/default")["domain"]["name"] == "Default"
    assert _get(demo_sess, ks, "/auth/domains") == {
        "domains": [],
        "links": {"next": None, "self": ks.auth_url + "/auth/domains", "previous": None},
    }


def test_auth_domains_lists_domain_roles() -> None:
    """/v3/auth/domains lists the domains the user holds a domain role on."""
    ids = Identities.default()
    ids.users[_id("user", "demo")].domain_roles = {PARTNERS: ["reader"]}
    with Simulator(identities=ids) as s:
        body = _get(_password_session(s, "demo"), s, "/auth/domains")
    assert [d["name"] for d in body["domains"]] == ["Partners"]


def test_listing_through_the_catalog(ks: Simulator, admin_sess: session.Session) -> None:
    """The catalog's identity endpoint plus /v3/projects reaches the listing (as a tap would)."""
    r = admin_sess.get(
        "/v3/projects", endpoint_filter={"service_type": "identity", "interface": "public"}
    )
    assert len(r.json()["projects"]) == 11


@pytest.mark.parametrize(
    ("path", "params", "names"),
    [
        ("/projects", {"name": "globex"}, ["globex"]),
        ("/projects", {"domain_id": PARTNERS}, ["umbrella"]),
        ("/projects", {"enabled": "false"}, ["initech"]),
        ("/projects", {"enabled": "0"}, ["initech"]),
        ("/projects", {"parent_id": project_id(1)}, ["acme-dev"]),
        ("/projects", {"name__icontains": "ACME"}, ["acme-dev", "acme-prod"]),
        ("/projects", {"name": "Zürich-lab", "enabled": "true"}, ["Zürich-lab"]),
        ("/projects", {"is_domain": "true"}, []),
        ("/users", {"domain_id": PARTNERS}, ["olivia", "peggy"]),
        ("/users", {"enabled": "false"}, ["judy"]),
        ("/users", {"name": "zoë"}, ["zoë"]),
        ("/domains", {"name": "Partners"}, ["Partners"]),
        ("/domains", {"enabled": "false"}, []),
        (f"/users/{_id('user', 'admin')}/projects", {"name": "demo"}, ["demo"]),
    ],
)
def test_list_filters(
    ks: Simulator,
    admin_sess: session.Session,
    path: str,
    params: dict[str, str],
    names: list[str],
) -> None:
    """Keystone's list filters: name, domain_id, enabled, parent_id and inexact names."""
    body = _get(admin_sess, ks, path, **params)
    key = "domains" if path == "/domains" else "users" if path == "/users" else "projects"
    assert sorted(e["name"] for e in body[key]) == names
    assert body["links"]["self"].startswith(ks.auth_url + path + "?")


def test_bad_filters_are_400(ks: Simulator, admin_sess: session.Session) -> None:
    """A boolean that is none of Keystone's, or a parent_id that is no uuid: 400."""
    r = admin_sess.get(ks.auth_url + "/projects?enabled=junk", raise_exc=False)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith(
        "Invalid input for field/attribute enabled. Value: junk. 'junk' is not one of [True, "
    )
    r = admin_sess.get(ks.auth_url + "/projects?parent_id=default", raise_exc=False)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "Invalid input for field/attribute parent_id. Value: default. 'default' is not a 'uuid'"
    )


def test_list_limit_truncates_and_pages() -> None:
    """list_limit: a full page says truncated and links the next one (marker = its last id)."""
    with Simulator() as s:
        sess = _password_session(s, "admin")
        whole = _get(sess, s, "/projects")["projects"]
        s.keystone.list_limit = 4
        seen: list[str] = []
        url: str | None = s.auth_url + "/projects"
        pages = []
        while url is not None:
            body = sess.get(url).json()
            pages.append(len(body["projects"]))
            seen += [p["id"] for p in body["projects"]]
            assert body.get("truncated", False) is (body["links"]["next"] is not None)
            url = body["links"]["next"]
        assert pages == [4, 4, 3]
        assert seen == [p["id"] for p in whole]
        first = _get(sess, s, "/projects")
        assert first["truncated"] is True
        assert first["links"]["next"] == (f"{s.auth_url}/projects?marker={whole[3]['id']}&limit=4")
        # The client's limit wins over list_limit; a page that is exactly full is truncated
        # (Keystone 30 cannot tell there is nothing after it) and the next page is empty.
        full = _get(sess, s, "/users", limit="22")
        assert (len(full["users"]), full["truncated"]) == (22, True)
        after = sess.get(full["links"]["next"]).json()
        assert after["users"] == []
        assert "truncated" not in after
        assert len(_get(sess, s, "/domains")["domains"]) == 2  # under the limit: whole
        # /v3/auth/projects ignores list_limit.
        assert "truncated" not in _get(sess, s, "/auth/projects")
        s.keystone.list_limit = None
        assert "truncated" not in _get(sess, s, "/projects")
        r = sess.get(s.auth_url + "/projects?marker=nope", raise_exc=False)
        assert (r.status_code, r.json()) == (404, _not_found("Marker nope could not be found."))


def test_unknown_ids_are_keystone_404s(ks: Simulator, admin_sess: session.Session) -> None:
    """An unknown project, domain or user: Keystone's 404 body."""
    cases = {
        "/projects/nope": "Could not find project: nope.",
        "/domains/nope": "Could not find domain: nope.",
        "/users/nope": "Could not find user: nope.",
        "/users/nope/projects": "Could not find user: nope.",
    }
    for path, message in cases.items():
        with pytest.raises(ks_exc.NotFound) as info:
            admin_sess.get(ks.auth_url + path)
        assert info.value.response is not None
        assert info.value.response.json() == _not_found(message)


@pytest.mark.parametrize(
    "path",
    ["/projects", "/projects/x", "/domains", "/users", "/users/x/projects", "/auth/projects"],
)
@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_listings_need_a_token(ks: Simulator, path: str, token: str | None) -> None:
    """No token or a dead one: Keystone's 401 with its challenge."""
    headers = {"X-Auth-Token": token} if token else {}
    r = requests.get(ks.auth_url + path, headers=headers, timeout=10)
    assert r.status_code == 401
    assert r.json()["error"]["title"] == "Unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Keystone uri=")


def test_users_without_password_never_authenticate(ks: Simulator) -> None:
    """Generated users have no password: no guess logs them in (v3 or v2.0); nor is a
    non-ASCII password a 400."""
    attempts = [
        v3.Password(auth_url=ks.auth_url, user_id=user_id(0, 0), password="None"),
        v3.Password(auth_url=ks.auth_url, username="alice", password="", user_domain_id="default"),
        v2.Password(auth_url=ks.auth_url_v2, username="alice", password="None"),
        v3.Password(
            auth_url=ks.auth_url, username="admin", password="pässwörd", user_domain_id="default"
        ),
    ]
    for auth in attempts:
        with pytest.raises(ks_exc.Unauthorized):
            session.Session(auth=auth).get_token()


def test_no_scope_on_a_disabled_project() -> None:
    """Keystone refuses a token scoped to a disabled project (401)."""
    ids = Identities.default()
    ids.users[_id("user", "demo")].roles[project_id(4)] = ["member"]
    with Simulator(identities=ids) as s:
        auth = v3.Password(
            auth_url=s.auth_url,
            username="demo",
            password="demo-secret",
            user_domain_id="default",
            project_id=project_id(4),
        )
        with pytest.raises(ks_exc.Unauthorized):
            session.Session(auth=auth).get_token()
        # ... yet lists it among the user's projects, disabled ones included.
        mine = _get(_password_session(s, "demo"), s, "/auth/projects")["projects"]
        assert sorted(p["name"] for p in mine) == ["demo", "initech"]


def test_user_without_default_project_omits_it() -> None:
    """default_project_id is left out when unset, as Keystone does."""
    ids = Identities.default()
    ids.users[user_id(3, 0)].default_project_id = None
    with Simulator(identities=ids) as s:
        body = _get(_password_session(s, "admin"), s, f"/users/{user_id(3, 0)}")
    assert "default_project_id" not in body["user"]
    assert body["user"]["name"] == "grace"
