"""Ceilometer v2 calls made once per run (meters, capabilities), and error bodies read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec
from keystoneauth1 import exceptions as ks_exceptions

from tap_ceilometer.auth import get_token
from tap_ceilometer.errors import (
    ApiError,
    CredentialsError,
    MalformedApiDataError,
    UnreachableError,
)

if TYPE_CHECKING:
    import requests
    from keystoneauth1 import session as ks_session

RETRIABLE_STATUSES = (500, 502, 503, 504)
FIRST_METER_LIMIT = 10_000
_GNOCCHI = 410


def error_text(response: requests.Response) -> str:
    """What the server said went wrong, from either error shape (spec 1.0 and 6)."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return response.text[:300].strip() or response.reason or ""
    if isinstance(body, dict):
        wrapped = body.get("error_message")
        if isinstance(wrapped, dict):
            return str(wrapped.get("faultstring") or wrapped)
        if wrapped:
            return str(wrapped)[:300]
        keystone = body.get("error")
        if isinstance(keystone, dict):
            return str(keystone.get("message") or keystone)
    return str(body)[:300]


def explain_status(response: requests.Response, what: str) -> str:
    """An operator-facing sentence for an HTTP error answer."""
    status = response.status_code
    said = error_text(response)
    hint = ""
    if status == _GNOCCHI:
        hint = (
            " This cloud stores telemetry in Gnocchi; the Ceilometer v2 sample API is switched"
            " off there."
        )
    elif status == 401:
        hint = " The token was refused even after renewal: check the credentials and roles."
    elif status == 403:
        hint = " The user lacks the role Ceilometer's policy requires."
    elif status == 404:
        hint = " Check endpoint_override or the catalog's metering endpoint (it must serve /v2)."
    return f"{what} failed with HTTP {status}: {said}.{hint}"


class CeilometerClient:
    """Discovery-time calls through the keystoneauth1 Session, with its own retries."""

    def __init__(
        self,
        session: ks_session.Session,
        endpoint: str,
        *,
        max_retries: int,
        timeout: float | None,
    ) -> None:
        self.session = session
        self.endpoint = endpoint.rstrip("/")
        self.max_retries = max_retries
        self.timeout = timeout

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = f"{self.endpoint}{path}"
        get_token(self.session)  # turn bad credentials into one clear error before the call
        try:
            response = self.session.get(
                url,
                params=params,
                authenticated=True,
                raise_exc=False,
                connect_retries=self.max_retries,
                status_code_retries=self.max_retries,
                retriable_status_codes=list(RETRIABLE_STATUSES),
                timeout=self.timeout,
            )
        except ks_exceptions.ConnectFailure as exc:
            msg = f"Cannot reach Ceilometer at {self.endpoint}: {exc}. Check the endpoint."
            raise UnreachableError(msg) from None
        except ks_exceptions.ClientException as exc:
            msg = f"GET {path} failed: {type(exc).__name__}: {exc}"
            raise UnreachableError(msg) from None
        if response.status_code == 401:
            raise CredentialsError(explain_status(response, f"GET {path}"))
        if response.status_code >= 400:
            raise ApiError(explain_status(response, f"GET {path}"))
        try:
            return msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            msg = (
                f"GET {path} answered with a body that is not JSON; is {self.endpoint} "
                "a Ceilometer v2 endpoint?"
            )
            raise MalformedApiDataError(msg) from None

    def complex_query_supported(self) -> bool:
        capabilities = self.get("/v2/capabilities")
        api = capabilities.get("api") if isinstance(capabilities, dict) else None
        if not isinstance(api, dict):
            msg = "GET /v2/capabilities did not answer with an 'api' object."
            raise MalformedApiDataError(msg)
        return bool(api.get("samples:query:complex"))

    def meter_names(self, *, per_resource: bool = False) -> list[str]:
        """Every meter name the user can see.

        Ceilometer builds /v2/meters from the newest sample of each meter (of each meter and
        resource without `unique`) across all projects, and only then applies the caller's
        project scope. A user without the admin role therefore misses every meter whose newest
        sample is another project's; `per_resource` adds the per-resource list, which misses
        only meters whose every resource's newest sample is another project's.
        """
        names = self._listed_names({"unique": "True"})
        if per_resource:
            names |= self._listed_names({})
        return sorted(names)

    def _listed_names(self, params: dict[str, str]) -> set[str]:
        limit = FIRST_METER_LIMIT
        while True:
            meters = self.get("/v2/meters", {**params, "limit": limit})
            if not isinstance(meters, list):
                msg = "GET /v2/meters did not answer with a list."
                raise MalformedApiDataError(msg)
            if len(meters) < limit:
                break
            limit *= 10  # a full answer may be truncated: there is no other sign of it
        names = set()
        for meter in meters:
            name = meter.get("name") if isinstance(meter, dict) else None
            if not isinstance(name, str) or not name:
                msg = f"GET /v2/meters returned an entry without a name: {meter!r}"
                raise MalformedApiDataError(msg)
            names.add(name)
        return names

    def has_samples(self, meter: str) -> bool:
        """Whether the user sees a sample of `meter` (sample queries are scoped before limits)."""
        samples = self.get(f"/v2/meters/{quote(meter, safe='')}", {"limit": 1})
        if not isinstance(samples, list):
            msg = f"GET /v2/meters/{meter} did not answer with a list."
            raise MalformedApiDataError(msg)
        return bool(samples)
