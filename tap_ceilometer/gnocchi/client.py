"""The Gnocchi v1 client: its requests, its error shape, and paging that loses no row."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import msgspec
from typing_extensions import override

from tap_ceilometer.client import ApiClient, one_line
from tap_ceilometer.errors import ApiError, MalformedApiDataError
from tap_ceilometer.timestamps import parse_api_time

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

PAGE_LIMIT = 1000  # Gnocchi's default max_limit; larger asks are clamped silently (T4)
_NON_FINITE = {"NaN": None, "Infinity": None, "-Infinity": None}


def epoch_seconds(text: str) -> int:
    """Gnocchi's period start (`2026-11-30T00:00:00+00:00`, whole seconds, T15) as epoch s."""
    return int(parse_api_time(text).timestamp())


class GnocchiClient(ApiClient):
    """Gnocchi v1 (`metric` in the catalog): policies, resources, metrics and aggregates."""

    api_name = "Gnocchi"

    # --- what the server said -----------------------------------------------------------------

    @override
    def error_message(self, body: Any) -> str | None:
        """Gnocchi's `description` (a sentence, or cause/reason/detail), or Keystone's message
        from keystonemiddleware (gnocchi-api.md section 5)."""
        if not isinstance(body, dict):
            return None
        keystone = super().error_message(body)
        if keystone is not None:
            return keystone
        said = body.get("description", body.get("message", body))
        if isinstance(said, dict):
            parts = [str(said[k]) for k in ("cause", "reason") if said.get(k)]
            if said.get("detail"):
                parts.append(f"({said['detail']})")
            said = ": ".join(parts[:2]) + (f" {parts[2]}" if len(parts) > 2 else "")
        return one_line(str(said or body.get("title") or ""))

    @override
    def status_hint(self, status: int) -> str:
        if status == 403:
            return (
                " Gnocchi's policy lets this user see only its own projects' metrics: use a"
                " user with the admin role (or Ceilometer's service project)."
            )
        if status == 404:
            return " Check endpoint_override or the catalog's metric endpoint (the server root)."
        return super().status_hint(status)

    @override
    def decode(self, content: bytes) -> Any:
        try:
            return msgspec.json.decode(content)
        except msgspec.DecodeError:
            # Gnocchi writes bare NaN with fill=null and in some aggregates (T16): valid for
            # Python's json, not for strict parsers. A non-finite value is kept as null.
            if b"NaN" not in content and b"Infinity" not in content:
                raise
            try:
                return json.loads(content, parse_constant=_NON_FINITE.__getitem__)
            except ValueError:
                raise msgspec.DecodeError from None

    # --- the server -----------------------------------------------------------------------------

    def pages(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        what: str,
    ) -> Iterator[list[dict[str, Any]]]:
        """Every page of a listing, following `Link: rel="next"` until it is absent (T4).

        Only the query string of the link is used, never its host or scheme, which Gnocchi
        builds from the request it saw (T14); a search re-sends its body with each page.
        """
        query: Any = {**(params or {}), "limit": PAGE_LIMIT}
        while True:
            page, link = self.request_page(method, path, params=query, json=body)
            if not isinstance(page, list) or not all(isinstance(row, dict) for row in page):
                msg = f"{method} {path} did not answer with a list of {what}."
                raise MalformedApiDataError(msg)
            if page:
                yield page
            if not link or not page:
                return
            query = parse_qsl(urlsplit(link).query, keep_blank_values=True)

    # --- the catalogue --------------------------------------------------------------------------

    def archive_policies(self) -> list[dict[str, Any]]:
        policies = self.request_json("GET", "/v1/archive_policy")
        if not isinstance(policies, list):
            msg = "GET /v1/archive_policy did not answer with a list."
            raise MalformedApiDataError(msg)
        return policies

    def resource_types(self) -> list[dict[str, Any]]:
        types = self.request_json("GET", "/v1/resource_type")
        if not isinstance(types, list):
            msg = "GET /v1/resource_type did not answer with a list."
            raise MalformedApiDataError(msg)
        return types

    def metrics(self) -> Iterator[dict[str, Any]]:
        """Every active metric the user may see, by id (a sort whose keys never change)."""
        for page in self.pages("GET", "/v1/metric", params={"sort": "id:asc"}, what="metrics"):
            yield from page

    def resources(
        self,
        resource_type: str = "generic",
        search: Any = None,
        *,
        history: bool = False,
        details: bool = True,
        attrs: Sequence[str] = (),
    ) -> Iterator[dict[str, Any]]:
        """Resources matching `search` (Gnocchi's filter, object or string; None: all).

        Sorted by id (and revision under history): the default sort moves when a row changes
        between two pages and the next page then starts after it (T3). A marker row deleted
        meanwhile makes Gnocchi refuse the marker; the listing then goes on after its id.
        """
        path = f"/v1/search/resource/{resource_type}"
        params: dict[str, Any] = {"sort": "id:asc", "details": details, "history": history}
        if attrs:
            params["attrs"] = list(attrs)
        after: str | None = None
        seen: set[tuple[Any, Any]] = set()
        while True:
            query, body = dict(params), search
            if after is not None:
                body = _and(search, {">": {"id": after}})
            if isinstance(body, str):  # the string form travels in ?filter=, without a body
                query["filter"], body = body, None
            elif body is None:
                body = {}  # an empty body means every resource
            last: str | None = None
            try:
                for page in self.pages("POST", path, params=query, body=body, what="resources"):
                    for row in page:
                        # Paging a history listing (current rows and history rows together)
                        # can repeat a revision on a later page (seen on 4.7.1).
                        key = (row.get("id"), row.get("revision_start"))
                        if key not in seen:
                            seen.add(key)
                            yield row
                    last = str(page[-1].get("id"))
                return
            except ApiError as exc:
                if exc.status != 400 or "marker" not in str(exc).lower() or last is None:
                    raise
                if isinstance(search, str):
                    raise
                after = last  # its remaining revisions went with it

    # --- aggregates -----------------------------------------------------------------------------

    def aggregates(
        self, refs: Sequence[tuple[str, str]], granularity: int, start: int | None
    ) -> dict[str, dict[str, list[Any]]]:
        """`POST /v1/aggregates` for many (metric id, aggregation) at one granularity (4.8).

        Raises ApiError when Gnocchi refuses the request as a whole (404 for one unknown
        metric or aggregation, 400 for a missing granularity): the caller reads one by one.
        """
        params: dict[str, Any] = {"granularity": granularity}
        if start is not None:
            params["start"] = start  # epoch seconds: no `+` to escape (T15)
        body = {"operations": ["metric", *[[metric, method] for metric, method in refs]]}
        answer = self.request_json("POST", "/v1/aggregates", params=params, json=body)
        measures = answer.get("measures") if isinstance(answer, dict) else None
        if not isinstance(measures, dict):
            msg = "POST /v1/aggregates did not answer with a measures object."
            raise MalformedApiDataError(msg)
        return measures

    def measures(
        self, metric_id: str, granularity: int, aggregation: str, start: int | None
    ) -> list[Any] | None:
        """One series (`GET /v1/metric/{id}/measures`), or None when the metric is gone (T8)."""
        params: dict[str, Any] = {"granularity": granularity, "aggregation": aggregation}
        if start is not None:
            params["start"] = start
        try:
            points = self.request_json("GET", f"/v1/metric/{metric_id}/measures", params=params)
        except ApiError as exc:
            if exc.status == 404 and _metric_gone(exc.body):
                return None
            raise
        if not isinstance(points, list):
            msg = f"GET /v1/metric/{metric_id}/measures did not answer with a list."
            raise MalformedApiDataError(msg)
        return points


def _and(left: Any, right: dict[str, Any]) -> Any:
    return right if left in (None, {}) else {"and": [left, right]}


def _metric_gone(body: Any) -> bool:
    """Whether a 404 says the metric does not exist (not a missing aggregation, 5)."""
    said = body.get("description") if isinstance(body, dict) else None
    return isinstance(said, str) and said.startswith("Metric ") and "does not exist" in said
