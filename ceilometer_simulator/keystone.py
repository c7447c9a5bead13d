"""A Keystone stand-in (identity v3 and v2.0) good enough for keystoneauth1, unmodified."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ceilometer_simulator.generator import project_id as generated_project_id
from ceilometer_simulator.generator import user_id as generated_user_id

IDENTITY_PREFIX = "/identity"
REGION = "RegionOne"


def _id(kind: str, name: str) -> str:
    return hashlib.md5(f"tap-ceilometer-{kind}-{name}".encode()).hexdigest()  # noqa: S324


@dataclasses.dataclass
class Domain:
    """A Keystone domain."""

    id: str
    name: str
    enabled: bool = True
    description: str = ""


@dataclasses.dataclass
class Project:
    """A Keystone project.

    ``parent_id`` None means the domain is the parent: Keystone then reports the domain's id as
    ``parent_id`` (a top-level project's parent is its domain acting as a project).
    """

    id: str
    name: str
    domain_id: str = "default"
    parent_id: str | None = None
    enabled: bool = True
    description: str = ""
    is_domain: bool = False
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class User:
    """A Keystone user with its role assignments (project id -> role names).

    A user whose ``password`` is None cannot log in (the generated owners of resources);
    ``domain_roles`` (domain id -> role names) is what ``/v3/auth/domains`` lists. ``email`` is
    an extra attribute, as Keystone keeps it: personal data that a tap must never export.
    """

    id: str
    name: str
    password: str | None
    default_project_id: str | None
    roles: dict[str, list[str]]
    domain_id: str = "default"
    enabled: bool = True
    description: str = ""
    email: str | None = None
    domain_roles: dict[str, list[str]] = dataclasses.field(default_factory=dict)


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


PARTNERS_DOMAIN_ID = _id("domain", "partners")


def default_domains() -> dict[str, Domain]:
    """The simulator's domains: Keystone's bootstrap ``default`` and a second one, Partners."""
    domains = (
        # Keystone's bootstrap gives the default domain exactly this description.
        Domain("default", "Default", description="The default domain"),
        Domain(PARTNERS_DOMAIN_ID, "Partners", description="Organisations we host"),
    )
    return {d.id: d for d in domains}


# Domain id -> name of the default identities, kept for callers of the old constant; the
# Keystone itself reads ``Identities.domains`` so custom identities can bring their own.
DOMAINS: dict[str, str] = {d.id: d.name for d in default_domains().values()}

# Readable projects for the generator's project_id(1..9) (0 is demo), each exercising one thing
# a dimension stream must survive: (name, domain, parent index, enabled, description, tags).
_GENERATED_PROJECTS: tuple[tuple[str, str, int | None, bool, str, tuple[str, ...]], ...] = (
    ("acme-prod", "default", None, True, "Acme production workloads", ("prod",)),
    ("acme-dev", "default", 1, True, "", ("dev",)),  # a child of acme-prod
    ("globex", "default", None, True, "", ()),
    ("initech", "default", None, False, "Closed account", ()),  # disabled
    ("Zürich-lab", "default", None, True, "", ()),  # non-ASCII
    ("umbrella", PARTNERS_DOMAIN_ID, None, True, "", ()),  # the Partners domain
    ("東京", "default", None, True, "", ()),  # non-ASCII, not Latin
    ("hooli", "default", None, True, "", ()),
    ("stark-rnd", "default", None, True, "", ("research", "gpu")),
)
# Names of the generator's user_id(p, u) for p = 0..9, u = 0..1 (CloudSpec's default of two
# users per project); generated clouds with more users per project have unnamed extras.
_GENERATED_USER_NAMES: tuple[tuple[str, str], ...] = (
    ("alice", "bob"),
    ("carol", "dave"),
    ("erin", "frank"),
    ("grace", "heidi"),
    ("ivan", "judy"),
    ("mallory", "niaj"),
    ("olivia", "peggy"),
    ("rupert", "sybil"),
    ("trent", "victor"),
    ("walter", "zoë"),
)


def _generated_identities() -> tuple[list[Project], list[User]]:
    projects = [
        Project(
            generated_project_id(i),
            name,
            domain_id,
            None if parent is None else generated_project_id(parent),
            enabled,
            description,
            tags=list(tags),
        )
        for i, (name, domain_id, parent, enabled, description, tags) in enumerate(
            _GENERATED_PROJECTS, start=1
        )
    ]
    domain_of = {p.id: p.domain_id for p in projects}
    users: list[User] = []
    for p, names in enumerate(_GENERATED_USER_NAMES):
        pid = generated_project_id(p)
        for u, name in enumerate(names):
            users.append(
                User(
                    generated_user_id(p, u),
                    name,
                    None,  # resource owners only: no password, so they never authenticate
                    pid,
                    {pid: ["member"]},
                    domain_of.get(pid, "default"),
                    # One disabled user, one with a description: both are exported fields.
                    enabled=(p, u) != (4, 1),
                    description="On call" if (p, u) == (1, 0) else "",
                    email=f"{name.replace('ë', 'e')}@example.com",
                )
            )
    return projects, users


@dataclasses.dataclass
class Identities:
    """Users, projects, application credentials and domains (the defaults of the simulator)."""

    projects: dict[str, Project]
    users: dict[str, User]
    app_creds: dict[str, AppCredential]
    domains: dict[str, Domain] = dataclasses.field(default_factory=default_domains)

    @classmethod
    def default(cls) -> Identities:
        """admin/admin-secret (admin of project admin), demo/demo-secret (member of demo).

        Besides, readable projects and users (without passwords) for the generator's
        ``project_id(1..9)`` and ``user_id(0..9, 0..1)``, in domains Default and Partners.
        """
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
        projects, users = _generated_identities()
        return cls(
            {p.id: p for p in (admin_project, demo_project, *projects)},
            {u.id: u for u in (admin, demo, *users)},
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
    """A malformed auth body or query: Keystone answers 400."""


class ForbiddenError(Exception):
    """The token's roles do not pass the policy rule: Keystone answers 403."""

    def __init__(self, action: str) -> None:
        super().__init__(
            f"You are not authorized to perform the requested action: identity:{action}."
        )


class NotFoundError(Exception):
    """An unknown entity or marker: Keystone answers 404 with this message."""


def _domain_id(ref: Any, domains: Mapping[str, Domain] | None = None) -> str | None:
    """The id of the domain a ``{"id": ...}`` or ``{"name": ...}`` reference names, if any."""
    names = DOMAINS if domains is None else {d.id: d.name for d in domains.values()}
    if not isinstance(ref, Mapping):
        return None
    if "id" in ref:
        return str(ref["id"]) if ref["id"] in names else None
    for did, name in names.items():
        if ref.get("name") == name:
            return did
    return None


def _password_ok(user: User, given: Any) -> bool:
    # Users without a password (and disabled users) never authenticate. Bytes, because
    # compare_digest refuses non-ASCII str.
    if user.password is None or not user.enabled:
        return False
    return secrets.compare_digest(str(given).encode(), user.password.encode())


# Keystone's boolean query parameters: these strings, and the ones that mean False.
_BOOL_STRINGS = (
    "True", "TRUE", "true", "False", "FALSE", "false", "", "1", "0", "y", "Y", "n", "N",
    "on", "ON", "off", "OFF", "yes", "no",
)  # fmt: skip
_FALSE_STRINGS = frozenset(("f", "false", "n", "no", "off", "0"))
_INEXACT = ("contains", "startswith", "endswith", "equals")
MAX_DB_LIMIT = 1000  # Keystone's [DEFAULT] max_db_limit: no page is longer, whatever asked


def _as_bool(name: str, value: str) -> bool:
    if value not in _BOOL_STRINGS:
        allowed = ", ".join(["True", *(repr(v) for v in _BOOL_STRINGS[:3])])
        allowed += ", False, " + ", ".join(repr(v) for v in _BOOL_STRINGS[3:])
        raise BadRequestError(
            f"Invalid input for field/attribute {name}. Value: {value}. "
            f"{value!r} is not one of [{allowed}]"
        )
    return value.lower() not in _FALSE_STRINGS


def _check_uuid(name: str, value: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise BadRequestError(
            f"Invalid input for field/attribute {name}. Value: {value}. {value!r} is not a 'uuid'"
        ) from None


def _matches(ref: Mapping[str, Any], name: str, comparator: str, value: str, case: bool) -> bool:
    if name == "enabled":
        return bool(ref.get("enabled")) is _as_bool(name, value)
    actual = ref.get(name)
    if comparator == "equals" and case:
        return actual == value
    if not isinstance(actual, str):
        return False
    if not case:
        actual, value = actual.lower(), value.lower()
    tests: dict[str, Callable[[str], bool]] = {
        "equals": actual.__eq__,
        "contains": actual.__contains__,
        "startswith": actual.startswith,
        "endswith": actual.endswith,
    }
    return tests[comparator](value)


def _filtered(
    refs: Iterable[dict[str, Any]], params: Mapping[str, str], supported: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Keystone's list filters: exact ``name=v`` and inexact ``name__icontains=v`` and so on."""
    out = list(refs)
    for key, value in params.items():
        name, _, comparator = key.partition("__")
        if name not in supported:
            continue  # Keystone ignores what it does not filter on
        case = True
        if comparator.startswith("i") and comparator[1:] in _INEXACT:
            case, comparator = False, comparator[1:]
        comparator = comparator or "equals"
        if comparator not in _INEXACT:
            continue
        if name == "enabled":
            _as_bool(name, value)  # a bad boolean is a 400 even when nothing is listed
        if name == "parent_id":
            _check_uuid(name, value)
        out = [r for r in out if _matches(r, name, comparator, value, case)]
    return out


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
        # Keystone's [DEFAULT] list_limit: the page size of /v3/projects, /v3/users and
        # /v3/domains when the client asks for none (None: unlimited, Keystone's default).
        self.list_limit: int | None = None
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
            did = _domain_id(ref.get("domain"), self.identities.domains)
            return None if did is None else self.identities.user_by_name(str(ref["name"]), did)
        return None

    def _find_project(self, ref: Mapping[str, Any]) -> Project | None:
        if "id" in ref:
            return self.identities.projects.get(str(ref["id"]))
        if "name" in ref:
            did = _domain_id(ref.get("domain"), self.identities.domains)
            return None if did is None else self.identities.project_by_name(str(ref["name"]), did)
        return None

    def _scopable(self, project: Project | None) -> Project:
        # Keystone refuses (401) a scope on a disabled project or one in a disabled domain.
        if project is None:
            raise AuthFailedError("unknown project")
        domain = self.identities.domains.get(project.domain_id)
        if not project.enabled or domain is None or not domain.enabled:
            raise AuthFailedError("project or domain disabled")
        return project

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
            if not user.enabled:
                raise AuthFailedError("user disabled")
            cred_project = self._scopable(self.identities.projects[cred.project_id])
            return self.issue(user, cred_project, methods, cred)
        if "password" in methods:
            ref = (identity.get("password") or {}).get("user") or {}
            found = self._find_user(ref)
            if found is None or not _password_ok(found, ref.get("password")):
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
            project = self._scopable(self._find_project(scope["project"] or {}))
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

    def _domain_name(self, domain_id: str) -> str:
        return self.identities.domains[domain_id].name

    def token_body_v3(self, token: Token) -> dict[str, Any]:
        """The body of a v3 token response."""
        user = token.user
        body: dict[str, Any] = {
            "methods": token.methods,
            "user": {
                "domain": {"id": user.domain_id, "name": self._domain_name(user.domain_id)},
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
                "domain": {"id": project.domain_id, "name": self._domain_name(project.domain_id)},
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

    # -- v3 identity listings ------------------------------------------------------------------

    def project_ref(self, project: Project) -> dict[str, Any]:
        """A project as Keystone renders it (keys in Keystone's order)."""
        return {
            "id": project.id,
            "name": project.name,
            "domain_id": project.domain_id,
            "description": project.description,
            "enabled": project.enabled,
            "parent_id": project.parent_id or project.domain_id,
            "is_domain": project.is_domain,
            "tags": list(project.tags),
            "options": {},
            "links": {"self": f"{self.identity_url}/v3/projects/{project.id}"},
        }

    def domain_ref(self, domain: Domain) -> dict[str, Any]:
        """A domain as Keystone renders it."""
        return {
            "id": domain.id,
            "name": domain.name,
            "description": domain.description,
            "enabled": domain.enabled,
            "tags": [],
            "options": {},
            "links": {"self": f"{self.identity_url}/v3/domains/{domain.id}"},
        }

    def user_ref(self, user: User) -> dict[str, Any]:
        """A user as Keystone renders it: never the password; extras (email) only when set."""
        ref: dict[str, Any] = {}
        # Keystone puts the extra attributes first and leaves out the unset ones.
        if user.email is not None:
            ref["email"] = user.email
        if user.description:
            ref["description"] = user.description
        ref.update(id=user.id, name=user.name, domain_id=user.domain_id, enabled=user.enabled)
        if user.default_project_id is not None:
            ref["default_project_id"] = user.default_project_id
        ref.update(
            password_expires_at=None,
            options={},
            links={"self": f"{self.identity_url}/v3/users/{user.id}"},
        )
        return ref

    def read_v3(self, path: str, query: str, token: Token | None) -> dict[str, Any] | None:
        """GET an identity listing or entity under ``/v3``; None when ``path`` is none of them.

        Raises AuthFailedError without a live token (401), ForbiddenError where Keystone's
        default policy refuses the token (403), NotFoundError and BadRequestError.
        """
        parts = path.strip("/").split("/")
        route = parts[1:] if parts[0] == "v3" else []
        lists = (["projects"], ["domains"], ["users"], ["auth", "projects"], ["auth", "domains"])
        known = (
            route in lists
            or (len(route) == 2 and route[0] in ("projects", "domains", "users"))
            or (len(route) == 3 and route[0] == "users" and route[2] == "projects")
        )
        if not known:
            return None
        if token is None:
            raise AuthFailedError("no valid token")
        params: dict[str, str] = {}
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            params.setdefault(key, value)  # Keystone reads the first of repeated parameters
        self_url = f"{self.identity_url}{path}" + (f"?{query}" if query else "")
        ids = self.identities
        if route == ["auth", "projects"]:
            # Every project the user has a role on, disabled ones too (as Keystone 30 does).
            mine = [ids.projects[p] for p in token.user.roles if p in ids.projects]
            return self._collection("projects", [self.project_ref(p) for p in mine], self_url)
        if route == ["auth", "domains"]:
            domains = [ids.domains[d] for d in token.user.domain_roles if d in ids.domains]
            return self._collection("domains", [self.domain_ref(d) for d in domains], self_url)
        if len(route) == 1:
            return self._list(route[0], token, params, self_url)
        entity_id = urllib.parse.unquote(route[1])
        if route[0] == "users":
            return self._user(entity_id, token, params, self_url, projects=len(route) == 3)
        return self._entity(route[0], entity_id, token)

    def _list(
        self, kind: str, token: Token, params: Mapping[str, str], self_url: str
    ) -> dict[str, Any]:
        # list_projects / list_domains / list_users: admin only in the default policy (its
        # other clauses need a system or a domain scope, which the simulator never issues).
        if not token.is_admin:
            raise ForbiddenError(f"list_{kind}")
        ids = self.identities
        refs: list[dict[str, Any]]
        supported: tuple[str, ...]
        if kind == "projects":
            refs = [self.project_ref(p) for p in ids.projects.values()]
            supported = ("domain_id", "enabled", "name", "parent_id", "is_domain")
        elif kind == "domains":
            refs = [self.domain_ref(d) for d in ids.domains.values()]
            supported = ("enabled", "name")
        else:
            refs = [self.user_ref(u) for u in ids.users.values()]
            supported = ("domain_id", "enabled", "name")
        return self._paged(kind, _filtered(refs, params, supported), params, self_url)

    def _entity(self, kind: str, entity_id: str, token: Token) -> dict[str, Any]:
        # get_project: admin or the token's own project; get_domain: admin or the domain of
        # the token's project. The policy runs before the lookup, so an unknown id is a 403
        # for anyone else (as on a real Keystone).
        scope = token.project
        if kind == "projects":
            if not token.is_admin and (scope is None or scope.id != entity_id):
                raise ForbiddenError("get_project")
            project = self.identities.projects.get(entity_id)
            if project is None:
                raise NotFoundError(f"Could not find project: {entity_id}.")
            return {"project": self.project_ref(project)}
        if not token.is_admin and (scope is None or scope.domain_id != entity_id):
            raise ForbiddenError("get_domain")
        domain = self.identities.domains.get(entity_id)
        if domain is None:
            raise NotFoundError(f"Could not find domain: {entity_id}.")
        return {"domain": self.domain_ref(domain)}

    def _user(
        self,
        user_id: str,
        token: Token,
        params: Mapping[str, str],
        self_url: str,
        *,
        projects: bool,
    ) -> dict[str, Any]:
        # get_user and list_user_projects: admin or the user itself.
        if not token.is_admin and token.user.id != user_id:
            raise ForbiddenError("list_user_projects" if projects else "get_user")
        user = self.identities.users.get(user_id)
        if user is None:
            raise NotFoundError(f"Could not find user: {user_id}.")
        if not projects:
            return {"user": self.user_ref(user)}
        ids = self.identities
        refs = [self.project_ref(ids.projects[p]) for p in user.roles if p in ids.projects]
        refs = _filtered(refs, params, ("domain_id", "enabled", "name"))
        return self._paged("projects", refs, params, self_url, driver_pages=False)

    def _collection(
        self, key: str, refs: list[dict[str, Any]], self_url: str, next_url: str | None = None
    ) -> dict[str, Any]:
        refs.sort(key=lambda r: str(r["id"]))
        return {key: refs, "links": {"next": next_url, "self": self_url, "previous": None}}

    def _paged(
        self,
        key: str,
        refs: list[dict[str, Any]],
        params: Mapping[str, str],
        self_url: str,
        *,
        driver_pages: bool = True,
    ) -> dict[str, Any]:
        """Keystone 30's pages: ``limit`` (else list_limit), ``marker``, ``truncated``, ``next``.

        The paging lists (projects, users, domains) sort by id, resume after ``marker`` and call
        a full page truncated, even when nothing follows (Keystone cannot tell). The sub-resource
        /v3/users/{id}/projects (``driver_pages=False``) takes only ``limit``, never
        list_limit, ignores ``marker`` and is truncated only when it had more than a page.
        """
        refs.sort(key=lambda r: str(r["id"]))
        marker = params.get("marker")
        if driver_pages and marker:
            tables: dict[str, Mapping[str, object]] = {
                "projects": self.identities.projects,
                "domains": self.identities.domains,
                "users": self.identities.users,
            }
            if marker not in tables[key]:
                raise NotFoundError(f"Marker {marker} could not be found.")
            refs = [r for r in refs if str(r["id"]) > marker]
        raw: Any = params.get("limit")
        if raw is None and driver_pages:
            raw = self.list_limit
        limit: int | None = None
        if raw:  # Keystone tests the raw value: "limit=" means no limit
            try:
                limit = min(int(raw), MAX_DB_LIMIT)
            except ValueError:
                raise BadRequestError(f"Invalid limit: {raw}.") from None
        truncated = False
        if limit is not None:
            if driver_pages:
                # limit 0 is no limit to the database yet still a "full" page.
                truncated = len(refs) >= limit
                refs = refs[:limit] if limit > 0 else refs
            elif len(refs) > limit:
                truncated, refs = True, refs[:limit]
        next_url = None
        if truncated and refs:
            args = dict(params)
            args["marker"] = str(refs[-1]["id"])
            args["limit"] = str(limit)
            next_url = self_url.partition("?")[0] + "?" + urllib.parse.urlencode(args)
        body = self._collection(key, refs, self_url, next_url)
        if truncated:
            body["truncated"] = True
        return body

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
            if user is None or not _password_ok(user, creds.get("password")):
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
