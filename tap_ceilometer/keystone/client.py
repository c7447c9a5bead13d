"""Keystone's identity API v3 (`identity` in the catalog), read through the run's session.

The Ceilometer and Gnocchi clients share the retry and error policy of `ApiClient`; so does
this one. Its endpoint is found by keystoneauth1's version discovery (the catalog's identity
URL is often unversioned), and never by `endpoint_override`, which names the metering API.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from keystoneauth1 import exceptions as ks_exceptions
from typing_extensions import override

from tap_ceilometer.client import ApiClient, one_line
from tap_ceilometer.errors import ApiError, ConfigError, MalformedApiDataError

if TYPE_CHECKING:
    from keystoneauth1 import session as ks_session

FORBIDDEN = 403
NOT_FOUND = 404


@dataclass(frozen=True)
class Listing:
    """What a Keystone list answered: its entries, and whether it is all Keystone has."""

    entries: list[dict[str, Any]]
    truncated: bool = False


class KeystoneClient(ApiClient):
    """Keystone v3: lists of projects, domains and users, and what a non-admin may see."""

    api_name = "Keystone"

    def __init__(self, session: ks_session.Session, **settings: Any) -> None:
        """`settings`: ApiClient's, but never an endpoint_override (it names the metering API)."""
        super().__init__(session, service_type="identity", **settings)
        self.version = "3.0"  # keystoneauth1 discovers the v3 URL from an unversioned one

    @cached_property
    @override
    def endpoint(self) -> str:
        try:
            return super().endpoint
        except ks_exceptions.DiscoveryFailure as exc:
            msg = f"Keystone's identity v3 API could not be found from the catalog: {exc}."
            raise ConfigError(msg) from None

    @override
    def error_message(self, body: Any) -> str | None:
        said = super().error_message(body)
        if said is not None:
            return said.rstrip(".")  # the tap's sentence adds its own
        return None if body is None else one_line(str(body))

    @override
    def status_hint(self, status: int) -> str:
        if status == NOT_FOUND:
            return " This Keystone does not serve that identity v3 list."
        return super().status_hint(status)

    def listing(self, path: str, key: str) -> Listing:
        """`GET path`, every page: `{key: [...], "truncated": true, "links": {"next": ...}}`.

        Keystone cuts a list at `limit` or its `list_limit` and says `truncated`. One that
        pages (Keystone 30 of the conformance tier does) also gives `links.next`, a marker of
        the last id (the next page may be empty); from one that does not, nothing more can be
        had, and the listing says `truncated`.
        """
        entries: list[dict[str, Any]] = []
        params: Any = None
        seen: set[str] = set()
        while True:
            body = self.request_json("GET", path, params=params)
            page = body.get(key) if isinstance(body, dict) else None
            if not isinstance(page, list) or not all(isinstance(e, dict) for e in page):
                msg = f"Keystone's GET /v3{path} did not answer with a list of {key}."
                raise MalformedApiDataError(msg)
            entries += page
            if not body.get("truncated"):
                return Listing(entries)
            links = body.get("links")
            after = links.get("next") if isinstance(links, dict) else None
            query = self._next_query(after, path)
            if not page or query is None or query in seen:
                return Listing(entries, truncated=True)
            seen.add(query)
            params = query

    def _next_query(self, url: Any, path: str) -> str | None:
        """The query string of a `next` link to `path` below this endpoint, else None."""
        if not isinstance(url, str):
            return None
        parts = urlsplit(url)
        if not parts.path.rstrip("/").endswith(path) or not parts.query:
            return None
        return parts.query

    def entity(self, path: str, key: str) -> dict[str, Any] | None:
        """`GET path` for one entity; None where Keystone refuses or does not know it."""
        try:
            body = self.request_json("GET", path)
        except ApiError as exc:
            if exc.status in (FORBIDDEN, NOT_FOUND):
                return None
            raise
        entity = body.get(key) if isinstance(body, dict) else None
        if not isinstance(entity, dict):
            msg = f"Keystone's GET {path} did not answer with a {key}."
            raise MalformedApiDataError(msg)
        return entity

    def own_user_id(self) -> str | None:
        """The id of the user the run authenticated as."""
        user_id = self.session.get_user_id()
        return str(user_id) if user_id else None
