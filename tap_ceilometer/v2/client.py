"""The Ceilometer API v2 client: its requests, its error shape, and what its answers mean."""

from __future__ import annotations

from functools import cached_property, partial
from typing import Any
from urllib.parse import quote

import msgspec
from typing_extensions import override

from tap_ceilometer.client import ApiClient, one_line
from tap_ceilometer.errors import MalformedApiDataError
from tap_ceilometer.v2.records import decode_sample_page

FIRST_LIST_LIMIT = 10_000
_GNOCCHI = 410


class CeilometerClient(ApiClient):
    """Ceilometer API v2 (`metering` in the catalog): meters, capabilities and sample pages."""

    api_name = "Ceilometer"

    @override
    def error_message(self, body: Any) -> str | None:
        """The `faultstring` of Ceilometer's errors, or Keystone's message (spec 1.0 and 6)."""
        if body is None:
            return None
        if isinstance(body, dict):
            wrapped = body.get("error_message")
            if isinstance(wrapped, dict):
                return one_line(str(wrapped.get("faultstring") or wrapped))
            if wrapped:
                return one_line(str(wrapped))
        return super().error_message(body) or one_line(str(body))

    @override
    def status_hint(self, status: int) -> str:
        if status == _GNOCCHI:
            return (
                " This cloud stores telemetry in Gnocchi; the Ceilometer v2 sample API is"
                " switched off there."
            )
        if status == 404:
            return (
                " Check endpoint_override or the catalog's metering endpoint (it must serve /v2)."
            )
        return super().status_hint(status)

    # --- discovery ----------------------------------------------------------------------------

    @cached_property
    def complex_query_supported(self) -> bool:
        """Whether POST /v2/query/samples works here (SQL and MongoDB storage, not HBase)."""
        capabilities = self.request_json("GET", "/v2/capabilities")
        api = capabilities.get("api") if isinstance(capabilities, dict) else None
        if not isinstance(api, dict):
            msg = "GET /v2/capabilities did not answer with an 'api' object."
            raise MalformedApiDataError(msg)
        supported = bool(api.get("samples:query:complex"))
        if not supported:
            self.log.info("Complex queries are not available: reading by time windows.")
        return supported

    def meter_names(self, pairs: list[dict[str, Any]] | None = None) -> list[str]:
        """Every meter name the user can see.

        Ceilometer builds /v2/meters from the newest sample of each meter (of each meter and
        resource without `unique`) across all projects, and only then applies the caller's
        project scope. A user without the admin role therefore misses every meter whose newest
        sample is another project's; the per-resource list (`pairs`, from `meter_list()`)
        misses only meters whose every resource's newest sample is another project's.
        """
        names = self._names(self.meter_list({"unique": "True"}))
        if pairs is not None:
            names |= self._names(pairs)
        return sorted(names)

    @staticmethod
    def _names(meters: list[dict[str, Any]]) -> set[str]:
        names = set()
        for meter in meters:
            name = meter.get("name")
            if not isinstance(name, str) or not name:
                msg = f"GET /v2/meters returned an entry without a name: {meter!r}"
                raise MalformedApiDataError(msg)
            names.add(name)
        return names

    def meter_list(self, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """GET /v2/meters, whole: one entry per meter and resource (per meter with `unique`)."""
        return self._whole_list("/v2/meters", params or {})

    def resources(self) -> list[dict[str, Any]]:
        """GET /v2/resources, whole, without the one meter query per resource that
        `meter_links` would cost the server (spec 1.5)."""
        return self._whole_list("/v2/resources", {"meter_links": "0"})

    def _whole_list(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        limit = FIRST_LIST_LIMIT
        while True:
            entries = self.request_json("GET", path, params={**params, "limit": limit})
            if not isinstance(entries, list):
                msg = f"GET {path} did not answer with a list."
                raise MalformedApiDataError(msg)
            if len(entries) < limit:
                break
            limit *= 10  # a full answer may be truncated: there is no other sign of it
        for entry in entries:
            if not isinstance(entry, dict):
                msg = f"GET {path} returned an entry that is not an object: {entry!r}"
                raise MalformedApiDataError(msg)
        return entries

    def has_samples(self, meter: str) -> bool:
        """Whether the user sees a sample of `meter` (sample queries are scoped before limits)."""
        return bool(self.meter_samples(meter, [], limit=1))

    # --- sample pages -------------------------------------------------------------------------

    def query_samples(
        self, filter_: dict[str, Any], orderby: list[dict[str, str]], limit: int
    ) -> list[Any]:
        """POST /v2/query/samples: a complex query (spec 1.4); the body is JSON strings."""
        body = {
            "filter": msgspec.json.encode(filter_).decode(),
            "orderby": msgspec.json.encode(orderby).decode(),
            "limit": limit,
        }
        return self._samples("POST", "/v2/query/samples", new_format=True, json=body)

    def meter_samples(self, meter: str, params: list[tuple[str, str]], limit: int) -> list[Any]:
        """GET /v2/meters/{meter}: a simple query (spec 1.3 and 2), newest first."""
        query = [*params, ("limit", str(limit))]
        path = f"/v2/meters/{quote(meter, safe='')}"
        return self._samples("GET", path, new_format=False, params=query)

    def _samples(self, method: str, path: str, *, new_format: bool, **kwargs: Any) -> list[Any]:
        decode = partial(decode_sample_page, new_format=new_format)
        samples = self.request_json(method, path, decode=decode, **kwargs)
        if not isinstance(samples, list):
            msg = f"{method} {path}: the answer is {type(samples).__name__}, not a list of samples"
            raise MalformedApiDataError(msg)
        return samples
