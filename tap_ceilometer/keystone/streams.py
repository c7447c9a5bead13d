"""The Keystone streams (projects, domains, users): what this user may see, said once.

Keystone's default policy lets only an admin list every project, domain and user. Anyone
else gets 403, and then the streams hold what Keystone does let a user see: the projects it
has a role on, their domains where Keystone shows them, and the user itself, with one log
line saying so. No answer of Keystone's ends the run: a missing identity endpoint or a 404
gives an empty stream and a log line. Transport faults are retried like every request.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from tap_ceilometer.errors import ApiError, ConfigError
from tap_ceilometer.keystone.client import FORBIDDEN
from tap_ceilometer.keystone.schema import DOMAIN_SCHEMA, PROJECT_SCHEMA, USER_SCHEMA
from tap_ceilometer.streams import DimensionStream

if TYPE_CHECKING:
    from collections.abc import Callable

    from singer_sdk import Tap

    from tap_ceilometer.keystone.client import KeystoneClient

KEYSTONE_STREAMS = ("projects", "domains", "users")
_LIST_LIMIT_HINT = (
    "raise list_limit in keystone.conf ([DEFAULT], or the [resource] and [identity] sections)"
)


class Directory:
    """Keystone's lists as this user may read them, each read once per sweep."""

    def __init__(self, client: KeystoneClient) -> None:
        self.client = client
        self.log = client.log

    @cached_property
    def projects(self) -> list[dict[str, Any]]:
        return self._read("projects", "/projects", self._own_projects)

    @cached_property
    def domains(self) -> list[dict[str, Any]]:
        return self._read("domains", "/domains", self._own_domains)

    @cached_property
    def users(self) -> list[dict[str, Any]]:
        return self._read("users", "/users", self._own_user)

    def _read(
        self, what: str, path: str, fallback: Callable[[], list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        try:
            try:
                listing = self.client.listing(path, what)
            except ApiError as exc:
                if exc.status != FORBIDDEN:
                    raise
                entries = fallback()
                self.log.info(
                    "Keystone does not let this user list all %s (HTTP 403 on GET /v3%s;"
                    " that needs the admin role): the %s stream holds the %d it may see.",
                    what,
                    path,
                    what,
                    len(entries),
                )
                return entries
        except (ApiError, ConfigError) as exc:
            self.log.warning("The %s stream is empty: %s", what, exc)
            return []
        if listing.truncated:
            self.log.warning(
                "Keystone cut GET /v3%s short at its list_limit: the %s stream misses some; %s.",
                path,
                what,
                _LIST_LIMIT_HINT,
            )
        return listing.entries

    def _own_projects(self) -> list[dict[str, Any]]:
        return self.client.listing("/auth/projects", "projects").entries

    def _own_domains(self) -> list[dict[str, Any]]:
        found = {d.get("id"): d for d in self.client.listing("/auth/domains", "domains").entries}
        # A project member may often read its project's domain, though not list domains.
        for domain_id in sorted({str(p["domain_id"]) for p in self.projects if p.get("domain_id")}):
            if domain_id not in found:
                domain = self.client.entity(f"/domains/{domain_id}", "domain")
                if domain is not None:
                    found[domain_id] = domain
        return list(found.values())

    def _own_user(self) -> list[dict[str, Any]]:
        user_id = self.client.own_user_id()
        user = self.client.entity(f"/users/{user_id}", "user") if user_id else None
        return [user] if user else []


def keystone_streams(tap: Tap, client: KeystoneClient) -> list[DimensionStream]:
    """projects, domains and users, read when they sync (one Directory per sweep)."""
    directory = Directory(client)
    reads: dict[str, tuple[dict[str, Any], Callable[[], list[dict[str, Any]]]]] = {
        "projects": (PROJECT_SCHEMA, lambda: directory.projects),
        "domains": (DOMAIN_SCHEMA, lambda: directory.domains),
        "users": (USER_SCHEMA, lambda: directory.users),
    }
    return [
        DimensionStream(tap, name=name, schema=schema, primary_keys=("id",), rows=rows)
        for name, (schema, rows) in reads.items()
    ]
