"""The one keystoneauth1 Session of a run: auth modes, TLS, the token, what the token may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import http_basic, token_endpoint
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import generic, v3
from keystoneauth1.identity.base import BaseIdentityPlugin

from tap_ceilometer.errors import ConfigError, CredentialsError, UnreachableError

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_DOMAIN = "Default"
INTERFACES = ("public", "internal", "admin")


@dataclass(frozen=True)
class AuthMode:
    """Which of the mutually exclusive ways to authenticate a config asks for."""

    name: str
    required: tuple[str, ...]


PASSWORD = AuthMode("password", ("auth_url", "password"))
APPLICATION_CREDENTIAL = AuthMode(
    "application credential",
    ("auth_url", "application_credential_id", "application_credential_secret"),
)
TOKEN = AuthMode("token", ("token", "endpoint_override"))
# A standalone Gnocchi (auth_mode basic): a user name and no password, no Keystone.
GNOCCHI_BASIC = AuthMode("Gnocchi basic", ("gnocchi_basic_user", "endpoint_override"))


def select_auth_mode(config: Mapping[str, Any]) -> AuthMode:
    """Tell which auth mode the config asks for, or say clearly what is wrong with it."""
    asked = []
    if config.get("password") or config.get("username") or config.get("user_id"):
        asked.append(PASSWORD)
    if config.get("application_credential_id") or config.get("application_credential_secret"):
        asked.append(APPLICATION_CREDENTIAL)
    if config.get("token"):
        asked.append(TOKEN)
    if config.get("gnocchi_basic_user"):
        asked.append(GNOCCHI_BASIC)
    if not asked:
        msg = (
            "No credentials: set username and password (with auth_url and project_name), "
            "or application_credential_id and application_credential_secret (with auth_url), "
            "or token with endpoint_override, or gnocchi_basic_user with endpoint_override."
        )
        raise ConfigError(msg)
    if len(asked) > 1:
        names = " and ".join(mode.name for mode in asked)
        msg = f"Contradictory credentials: settings for {names} are both set; keep one."
        raise ConfigError(msg)
    mode = asked[0]
    missing = [key for key in mode.required if not config.get(key)]
    if mode is PASSWORD and not (config.get("username") or config.get("user_id")):
        missing.insert(0, "username")
    if missing:
        msg = f"{mode.name.capitalize()} authentication needs {', '.join(missing)}."
        raise ConfigError(msg)
    tenant, project = config.get("tenant_name"), config.get("project_name")
    if tenant and project and tenant != project:
        msg = "tenant_name and project_name name different projects; keep one."
        raise ConfigError(msg)
    interface = config.get("interface", "public")
    if interface not in INTERFACES:
        msg = f"interface must be one of {', '.join(INTERFACES)}, not {interface!r}."
        raise ConfigError(msg)
    return mode


def _password_plugin(config: Mapping[str, Any]) -> generic.Password:
    user_domain = config.get("user_domain_name") or DEFAULT_DOMAIN
    project_domain = config.get("project_domain_name") or DEFAULT_DOMAIN
    domains: dict[str, Any] = {}
    if user_domain == project_domain:
        # As a default domain rather than a scope, so that a Keystone v2.0 URL still works.
        domains["default_domain_name"] = user_domain
    else:
        domains["user_domain_name"] = user_domain
        domains["project_domain_name"] = project_domain
    return generic.Password(
        auth_url=config["auth_url"],
        username=config.get("username"),
        user_id=config.get("user_id"),
        password=config["password"],
        project_name=config.get("project_name") or config.get("tenant_name"),
        project_id=config.get("project_id"),
        **domains,
    )


def build_session(config: Mapping[str, Any]) -> ks_session.Session:
    """Build the one keystoneauth1 Session the whole run shares."""
    mode = select_auth_mode(config)
    auth: Any
    if mode is TOKEN:
        auth = token_endpoint.Token(config["endpoint_override"], config["token"])
    elif mode is GNOCCHI_BASIC:
        # Gnocchi ignores the password in basic mode (gnocchi-api.md 1.2).
        auth = http_basic.HTTPBasicAuth(
            config["endpoint_override"], config["gnocchi_basic_user"], ""
        )
    elif mode is APPLICATION_CREDENTIAL:
        auth = v3.ApplicationCredential(
            auth_url=config["auth_url"],
            application_credential_id=config["application_credential_id"],
            application_credential_secret=config["application_credential_secret"],
        )
    else:
        auth = _password_plugin(config)
    verify: bool | str = True
    if config.get("insecure"):
        verify = False
    elif config.get("ca_cert"):
        verify = config["ca_cert"]
    return ks_session.Session(
        auth=auth,
        verify=verify,
        timeout=config.get("request_timeout"),
        app_name="tap-ceilometer",
    )


def _describe(exc: Exception) -> str:
    # keystoneauth1 messages name URLs and statuses, never the credentials themselves.
    return f"{type(exc).__name__}: {exc}"


def get_token(session: ks_session.Session) -> str:
    """A valid token, fetched once and renewed by keystoneauth1 as it nears expiry; for
    Gnocchi's basic mode, which has no token, the Authorization header's credentials."""
    if isinstance(session.auth, http_basic.HTTPBasicAuth):
        return str(session.auth.get_token(session))
    try:
        token = session.get_token()
    except ks_exceptions.Unauthorized as exc:
        msg = f"Keystone rejected the credentials ({_describe(exc)}). Check them and the project."
        raise CredentialsError(msg) from None
    except (ks_exceptions.ConnectFailure, ks_exceptions.DiscoveryFailure) as exc:
        msg = f"Cannot reach Keystone: {_describe(exc)}. Check auth_url and the network."
        raise UnreachableError(msg) from None
    except ks_exceptions.ClientException as exc:
        msg = f"Keystone authentication failed: {_describe(exc)}"
        raise CredentialsError(msg) from None
    if not token:
        msg = "Keystone returned no token."
        raise CredentialsError(msg)
    return str(token)


def has_admin_role(session: ks_session.Session) -> bool:
    """Whether the token carries the admin role, which Ceilometer's default policy lets see
    every project (a pre-issued token cannot tell: assume not)."""
    get_token(session)  # bad credentials: our clear error, not keystoneauth's
    auth = session.auth
    if not isinstance(auth, BaseIdentityPlugin):
        return False
    roles = auth.get_access(session).role_names or []
    return "admin" in {role.lower() for role in roles}
