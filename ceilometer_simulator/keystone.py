"""A Keystone stand-in (identity v3 and v2.0) good enough for keystoneauth1, unmodified."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

from ceilometer_simulator.generator import project_id as generated_project_id

IDENTITY_PREFIX = "/identity"
REGION = "RegionOne"


def _id(kind: str, name: str) -> str:
    return hashlib.md5(f"tap-ceilometer-{kind}-{name}".encode()).hexdigest()  # noqa: S324


@dataclasses.dataclass
class Project:
    """A Keystone project."""

    id: str
    name: str
    domain_id: str = "default"


@dataclasses.dataclass
class User:
    """A Keystone user with its role assignments (project id -> role names)."""

    id: str
    name: str
    password: str
    default_project_id: str | None
    roles: dict[str, list[str]]
    domain_id: str = "default"


@dataclasses.dataclass
class AppCredential:
    """An application credential: pre-scoped to one project with the user's roles there."""

    id: str
    name: str
    secret: str
    user_id: str
    project_id: str


@dataclasses.dataclass
class Token:
    """An issued token and what it stands for."""

    id: str
    user: User
    project: Project | None
    roles: list[str]
    methods: list[str]
    issued_at: float
    expires_at: float
    audit_id: str
    app_cred: AppCredential | None = None

    @property
    def is_admin(self) -> bool:
        """Ceilometer's ``segregation`` rule: role admin sees every project."""
        return "admin" in self.roles


DOMAINS = {"default": "Default"}


@dataclasses.dataclass
class Identities:
    """Users, projects and application credentials (the defaults of the simulator)."""

    projects: dict[str, Project]
    users: dict[str, User]
    app_creds: dict[str, AppCredential]

    @classmethod
    def default(cls) -> Identities:
        """admin/admin-secret (admin of project admin), demo/demo-secret (member of demo)."""
        admin_project = Project(_id("project", "admin"), "admin")
        # demo owns generated project 0, so a scoped demo user sees part of the default cloud.
        demo_project = Project(generated_project_id(0), "demo")
        admin = User(
            _id("user", "admin"),
            "admin",
            "admin-secret",
            admin_project.id,
            {admin_project.id: ["admin", "member"], demo_project.id: ["admin", "member"]},
        )
        demo = User(
            _id("user", "demo"),
            "demo",
            "demo-secret",
            demo_project.id,
            {demo_project.id: ["member"]},
        )
        cred = AppCredential(
            "admin-app-cred", "admin-app-cred", "app-cred-secret", admin.id, admin_project.id
        )
        return cls(
            {p.id: p for p in (admin_project, demo_project)},
            {u.id: u for u in (admin, demo)},
            {cred.id: cred},
        )

    def project_by_name(self, name: str, domain_id: str) -> Project | None:
        """Look a project up by name within a domain."""
        for p in self.projects.values():
            if p.name == name and p.domain_id == domain_id:
                return p
        return None

    def user_by_name(self, name: str, domain_id: str) -> User | None:
        """Look a user up by name within a domain."""
        for u in self.users.values():
            if u.name == name and u.domain_id == domain_id:
                return u
        return None


class AuthFailedError(Exception):
    """Wrong credentials or scope: Keystone answers 401."""


class BadRequestError(Exception):
    """A malformed auth body: Keystone answers 400."""


def _domain_id(ref: Any) -> str | None:
    if not isinstance(ref, Mapping):
        return None
    if "id" in ref:
        return str(ref["id"]) if ref["id"] in DOMAINS else None
    for did, name in DOMAINS.items():
        if ref.get("name") == name:
            return did
    return None


def _iso_z(ts: float, micro: bool) -> str:
    when = dt.datetime.fromtimestamp(ts, dt.UTC)
    if micro:
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Keystone:
    """Issues and checks tokens; builds v3/v2.0 token bodies with a service catalog."""

    def __init__(self, identities: Identities | None = None, token_ttl: float = 3600.0) -> None:
        self.identities = identities or Identities.default()
        self.token_ttl = token_ttl
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()
        # Filled in by the server once it knows its address.
        self.endpoints: dict[str, str] = {}
        self.identity_url = ""

    # -- tokens --------------------------------------------------------------------------------

    def issue(
        self,
        user: User,
        project: Project | None,
        methods: list[str],
        app_cred: AppCredential | None = None,
    ) -> Token:
        """Create a token for ``user`` scoped to ``project`` (or unscoped)."""
        roles: list[str] = []
        if project is not None:
            roles = list(user.roles.get(project.id, []))
            if not roles:
                raise AuthFailedError(f"user {user.name} has no role on project {project.name}")
        now = time.time()
        token = Token(
            secrets.token_hex(16),
            user,
            project,
            roles,
            methods,
            now,
            now + self.token_ttl,
            secrets.token_urlsafe(16)[:22],
            app_cred,
        )
        with self._lock:
            self._tokens[token.id] = token
        return token

    def validate(self, token_id: str | None) -> Token | None:
        """The live token with this id, or None (unknown, revoked or expired)."""
        if not token_id:
            return None
        with self._lock:
            token = self._tokens.get(token_id)
        if token is None or time.time() >= token.expires_at:
            return None
        return token

    def revoke(self, token_id: str | None = None) -> int:
        """Revoke one token, or every token when ``token_id`` is None; returns how many."""
        with self._lock:
            if token_id is None:
                count = len(self._tokens)
                self._tokens.clear()
                return count
            return 1 if self._tokens.pop(token_id, None) is not None else 0

    # -- v3 ------------------------------------------------------------------------------------

    def _find_user(self, ref: Mapping[str, Any]) -> User | None:
        if "id" in ref:
            return self.identities.users.get(str(ref["id"]))
        if "name" in ref:
            did = _domain_id(ref.get("domain"))
            return None if did is None else self.identities.user_by_name(str(ref["name"]), did)
        return None

    def _find_project(self, ref: Mapping[str, Any]) -> Project | None:
        if "id" in ref:
            return self.identities.projects.get(str(ref["id"]))
        if "name" in ref:
            did = _domain_id(ref.get("domain"))
            return None if did is None else self.identities.project_by_name(str(ref["name"]), did)
        return None

    def authenticate_v3(self, body: Any) -> Token:  # noqa: PLR0912 - one branch per method
        """POST /v3/auth/tokens: password, application_credential or token methods."""
        try:
            identity = body["auth"]["identity"]
            methods = list(identity["methods"])
        except (KeyError, TypeError):
            raise BadRequestError("Expecting to find identity in auth.") from None
        scope = body["auth"].get("scope")
        if "application_credential" in methods:
            ref = identity.get("application_credential") or {}
            cred = self.identities.app_creds.get(str(ref.get("id")))
            if cred is None and "name" in ref:
                owner = self._find_user(ref.get("user") or {})
                cred = next(
                    (
                        c
                        for c in self.identities.app_creds.values()
                        if owner is not None and c.user_id == owner.id and c.name == ref["name"]
                    ),
                    None,
                )
            if cred is None or not secrets.compare_digest(str(ref.get("secret")), cred.secret):
                raise AuthFailedError("bad application credential")
            user = self.identities.users[cred.user_id]
            return self.issue(user, self.identities.projects[cred.project_id], methods, cred)
        if "password" in methods:
            ref = (identity.get("password") or {}).get("user") or {}
            found = self._find_user(ref)
            if found is None or not secrets.compare_digest(
                str(ref.get("password")), found.password
            ):
                raise AuthFailedError("bad user or password")
            user = found
        elif "token" in methods:
            old = self.validate(str((identity.get("token") or {}).get("id")))
            if old is None:
                raise AuthFailedError("bad token")
            user = old.user
        else:
            raise AuthFailedError(f"unsupported methods {methods}")
        project: Project | None
        if isinstance(scope, Mapping) and "project" in scope:
            project = self._find_project(scope["project"] or {})
            if project is None:
                raise AuthFailedError("unknown project")
        elif scope:
            raise AuthFailedError("only project scope is simulated")
        else:
            default = user.default_project_id
            project = self.identities.projects.get(default) if default else None
        return self.issue(user, project, methods)

    def catalog_v3(self) -> list[dict[str, Any]]:
        """The v3 service catalog: metering (the simulator) and identity."""

        def entry(service_type: str, name: str, urls: Mapping[str, str]) -> dict[str, Any]:
            return {
                "endpoints": [
                    {
                        "id": _id("endpoint", f"{name}-{interface}"),
                        "interface": interface,
                        "region_id": REGION,
                        "region": REGION,
                        "url": url,
                    }
                    for interface, url in urls.items()
                ],
                "id": _id("service", name),
                "type": service_type,
                "name": name,
            }

        identity = dict.fromkeys(("public", "internal", "admin"), self.identity_url)
        return [
            entry("metering", "ceilometer", self.endpoints),
            entry("identity", "keystone", identity),
        ]

    def token_body_v3(self, token: Token) -> dict[str, Any]:
        """The body of a v3 token response."""
        user = token.user
        body: dict[str, Any] = {
            "methods": token.methods,
            "user": {
                "domain": {"id": user.domain_id, "name": DOMAINS[user.domain_id]},
                "id": user.id,
                "name": user.name,
                "password_expires_at": None,
            },
            "audit_ids": [token.audit_id],
            "expires_at": _iso_z(token.expires_at, micro=True),
            "issued_at": _iso_z(token.issued_at, micro=True),
        }
        if token.project is not None:
            project = token.project
            body["project"] = {
                "domain": {"id": project.domain_id, "name": DOMAINS[project.domain_id]},
                "id": project.id,
                "name": project.name,
            }
            body["is_domain"] = False
            body["roles"] = [{"id": _id("role", r), "name": r} for r in token.roles]
            body["catalog"] = self.catalog_v3()
        if token.app_cred is not None:
            cred = token.app_cred
            body["application_credential"] = {"id": cred.id, "name": cred.name, "restricted": True}
        return {"token": body}

    # -- v2.0 ----------------------------------------------------------------------------------

    def authenticate_v2(self, body: Any) -> Token:
        """POST /v2.0/tokens: passwordCredentials or token, with tenantName or tenantId."""
        try:
            auth = body["auth"]
        except (KeyError, TypeError):
            raise BadRequestError("Expecting to find auth in request body.") from None
        if "passwordCredentials" in auth:
            creds = auth["passwordCredentials"] or {}
            if "username" in creds:
                user = self.identities.user_by_name(str(creds["username"]), "default")
            else:
                user = self.identities.users.get(str(creds.get("userId")))
            if user is None or not secrets.compare_digest(
                str(creds.get("password")), user.password
            ):
                raise AuthFailedError("bad user or password")
            methods = ["password"]
        elif "token" in auth:
            old = self.validate(str((auth["token"] or {}).get("id")))
            if old is None:
                raise AuthFailedError("bad token")
            user, methods = old.user, ["token"]
        else:
            raise BadRequestError("Expecting to find passwordCredentials or token in auth.")
        project: Project | None = None
        if "tenantId" in auth:
            project = self.identities.projects.get(str(auth["tenantId"]))
            if project is None:
                raise AuthFailedError("unknown tenant")
        elif "tenantName" in auth:
            project = self.identities.project_by_name(str(auth["tenantName"]), "default")
            if project is None:
                raise AuthFailedError("unknown tenant")
        return self.issue(user, project, methods)

    def token_body_v2(self, token: Token) -> dict[str, Any]:
        """The body of a v2.0 token response."""
        token_ref: dict[str, Any] = {
            "issued_at": _iso_z(token.issued_at, micro=True),
            "expires": _iso_z(token.expires_at, micro=False),
            "id": token.id,
            "audit_ids": [token.audit_id],
        }
        access: dict[str, Any] = {"token": token_ref}
        if token.project is not None:
            token_ref["tenant"] = {
                "description": None,
                "enabled": True,
                "id": token.project.id,
                "name": token.project.name,
            }
            urls = self.endpoints
            access["serviceCatalog"] = [
                {
                    "endpoints": [
                        {
                            "adminURL": urls["admin"],
                            "region": REGION,
                            "internalURL": urls["internal"],
                            "id": _id("endpoint", "ceilometer-v2"),
                            "publicURL": urls["public"],
                        }
                    ],
                    "endpoints_links": [],
                    "type": "metering",
                    "name": "ceilometer",
                },
                {
                    "endpoints": [
                        {
                            "adminURL": self.identity_url + "/v2.0",
                            "region": REGION,
                            "internalURL": self.identity_url + "/v2.0",
                            "id": _id("endpoint", "keystone-v2"),
                            "publicURL": self.identity_url + "/v2.0",
                        }
                    ],
                    "endpoints_links": [],
                    "type": "identity",
                    "name": "keystone",
                },
            ]
        else:
            access["serviceCatalog"] = []
        access["user"] = {
            "username": token.user.name,
            "roles_links": [],
            "id": token.user.id,
            "roles": [{"name": r} for r in token.roles],
            "name": token.user.name,
        }
        access["metadata"] = {
            "is_admin": 0,
            "roles": [_id("role", r) for r in token.roles],
        }
        return {"access": access}

    # -- discovery -----------------------------------------------------------------------------

    def version_v3(self) -> dict[str, Any]:
        """The v3 entry of the version list."""
        return {
            "id": "v3.8",
            "status": "stable",
            "updated": "2017-02-22T00:00:00Z",
            "links": [{"href": f"{self.identity_url}/v3/", "rel": "self"}],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
            ],
        }

    def version_v2(self) -> dict[str, Any]:
        """The v2.0 entry of the version list (deprecated, as in Pike)."""
        return {
            "id": "v2.0",
            "status": "deprecated",
            "updated": "2016-08-04T00:00:00Z",
            "links": [
                {"href": f"{self.identity_url}/v2.0/", "rel": "self"},
                {"href": "https://docs.openstack.org/", "type": "text/html", "rel": "describedby"},
            ],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v2.0+json"}
            ],
        }

    def versions(self) -> dict[str, Any]:
        """GET /identity: the version list (answered with 300 Multiple Choices)."""
        return {"versions": {"values": [self.version_v3(), self.version_v2()]}}
