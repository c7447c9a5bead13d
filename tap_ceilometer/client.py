"""One API's client: a keystoneauth1 Adapter that owns the endpoint, retries and error mapping.

Every request the tap makes to an API, at discovery as for data, goes through
`ApiClient.request_json`, so every request meets the same policy:

* the endpoint comes from the service catalog (service type, interface, region) or from
  `endpoint_override`, and is looked up once, with one clear error when it is missing;
* TLS, timeouts and the token come from the run's one keystoneauth1 Session, which also renews
  a token the API refuses (401) and repeats the request once, at once;
* a failure another try may fix (a 5xx, 408 or 429, a reset or refused connection, a timeout,
  a body cut short or not JSON) is retried `max_retries` times with exponential backoff and
  jitter (0.5 s doubling, at most 60 s), each retry logged as a warning; keystoneauth1's own
  retries are off, since it never retries a body cut short (UnknownConnectionError);
* every other failure becomes one of the tap's errors (errors.py) with a sentence to act on.

Decided once, for every API: the tap does not use singer-sdk's RESTStream request machinery.
Ceilometer v2 has no cursor, so pages come from the readers (v2/reader.py), not from an SDK
paginator; discovery runs before any stream exists and must be retried like data reads; and
keystoneauth1 already owns what RESTStream would duplicate (a second requests.Session, a
hand-made authenticator, a second retry policy). Streams are plain `singer_sdk.Stream`s that
ask their API's client for pages.
"""

from __future__ import annotations

import logging
import re
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

import backoff
import msgspec
import requests
from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ks_exceptions
from singer_sdk import metrics

from tap_ceilometer.errors import (
    ApiError,
    ConfigError,
    CredentialsError,
    RetriesExhaustedError,
    UnreachableError,
)
from tap_ceilometer.session import get_token

if TYPE_CHECKING:
    from collections.abc import Callable

    from backoff.types import Details
    from keystoneauth1 import session as ks_session
    from singer_sdk.exceptions import FatalAPIError

    # How an answer's body becomes data; raises msgspec.DecodeError for what is not JSON.
    Decode = Callable[[bytes], Any]

_MARKUP = re.compile(r"<[^>]*>")
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
FIRST_WAIT = 0.5  # seconds, doubled on each retry
LONGEST_WAIT = 60.0


class _TryFailedError(Exception):
    """One try failed in a way another may not; `final` is raised if none succeeds."""

    def __init__(self, problem: str, final: FatalAPIError) -> None:
        super().__init__(problem)
        self.final = final


class ApiClient(adapter.Adapter):
    """A keystoneauth1 Adapter bound to one API's service type, with the tap's retry policy."""

    api_name = "the API"

    def __init__(
        self,
        session: ks_session.Session,
        *,
        service_type: str,
        interface: str = "public",
        region_name: str | None = None,
        endpoint_override: str | None = None,
        max_retries: int = 5,
        timeout: float | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(
            session,
            service_type=service_type,
            interface=interface,
            region_name=region_name,
            endpoint_override=endpoint_override.rstrip("/") if endpoint_override else None,
        )
        self.max_retries = max_retries
        self.request_timeout = timeout
        self.log = logger or logging.getLogger("tap-ceilometer")
        self.metrics_logger = metrics.get_metrics_logger()
        self._retried_try = backoff.on_exception(
            backoff.expo,
            _TryFailedError,
            max_tries=max_retries + 1,
            jitter=backoff.random_jitter,
            on_backoff=self._log_retry,
            logger=None,
            base=2,
            factor=FIRST_WAIT,
            max_value=LONGEST_WAIT,
        )(self._try)

    # --- where ------------------------------------------------------------------------------

    @cached_property
    def endpoint(self) -> str:
        """The API's URL: endpoint_override, or the catalog's entry for this service."""
        if self.endpoint_override:
            return str(self.endpoint_override)
        get_token(self.session)  # bad credentials are not reported as a missing endpoint
        try:
            endpoint = self.get_endpoint()
        except ks_exceptions.EndpointNotFound:
            endpoint = None
        if not endpoint:
            where = f" in region {self.region_name}" if self.region_name else ""
            msg = (
                f"The service catalog has no {self.interface} endpoint of type "
                f"{self.service_type!r}{where}. Check service_type, interface and region_name, "
                "or set endpoint_override."
            )
            raise ConfigError(msg)
        return str(endpoint).rstrip("/")

    # --- what the server said ---------------------------------------------------------------

    def error_text(self, content: bytes) -> str:
        """What the server said went wrong, on one line: `error_message` of the decoded
        answer, else the answer's text (an HTML page, a proxy's or a WSGI server's, is reduced
        to its text)."""
        said = self.error_message(self._error_body(content))
        return said if said is not None else one_line(content[:2000].decode(errors="replace"))

    def error_message(self, body: Any) -> str | None:
        """What a decoded error answer says, or None where it is not the API's error shape;
        subclasses read their API's. keystonemiddleware answers every API's 401 in Keystone's
        shape, `{"error": {"message": ...}}`, read here."""
        keystone = body.get("error") if isinstance(body, dict) else None
        if isinstance(keystone, dict):
            return one_line(str(keystone.get("message") or keystone))
        return None

    def status_hint(self, status: int) -> str:
        """What to check after an HTTP error answer, for an operator."""
        hints = {
            401: " The token was refused even after renewal: check the credentials and roles.",
            403: f" The user lacks the role {self.api_name}'s policy requires.",
            404: " Check endpoint_override or the catalog's endpoint.",
        }
        return hints.get(status, "")

    def explain_status(self, response: requests.Response, content: bytes, what: str) -> str:
        """An operator-facing sentence for an HTTP error answer."""
        said = self.error_text(content) or response.reason or ""
        hint = self.status_hint(response.status_code)
        return f"{what} failed with HTTP {response.status_code}: {said}.{hint}"

    # --- requests ---------------------------------------------------------------------------

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        decode: Decode | None = None,
    ) -> Any:
        """The decoded JSON answer to `method path`, with the retry policy of this module;
        `decode` replaces the API's `decode` for this answer."""
        return self.request_page(method, path, params=params, json=json, decode=decode)[0]

    def request_page(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        decode: Decode | None = None,
    ) -> tuple[Any, str | None]:
        """`request_json`, and the URL of the answer's `Link: rel="next"` header, if any."""
        what = f"{method} {path}"
        url = f"{self.endpoint}{path}"
        get_token(self.session)  # bad credentials: one clear error, not a retried failure
        try:
            answer: tuple[Any, str | None] = self._retried_try(
                method, url, what, params, json, decode=decode or self.decode
            )
        except _TryFailedError as failure:
            raise failure.final from None
        return answer

    def _log_retry(self, details: Details) -> None:
        self.log.warning(
            "%s; try %d of %d in %.1f s.",
            details.get("exception"),
            details["tries"] + 1,
            self.max_retries + 1,
            details.get("wait", 0.0),
        )

    def _try(
        self, method: str, url: str, what: str, params: Any, body: Any, *, decode: Decode
    ) -> Any:
        started = time.perf_counter()
        try:
            response = self.request(
                url,
                method,
                params=params,
                json=body,
                raise_exc=False,
                connect_retries=0,
                timeout=self.request_timeout,
                stream=True,  # the body is read in one piece below, not in 10 KiB steps
            )
        except ks_exceptions.SSLError as exc:
            msg = f"TLS failed for {self.api_name} at {self.endpoint}: {exc}. Check ca_cert."
            raise UnreachableError(msg) from None
        except ks_exceptions.ConnectFailure as exc:
            self._fail_transient(what, exc, UnreachableError(self._unreachable(exc)))
        except ks_exceptions.ConnectionError as exc:  # timeouts, resets, cut bodies
            self._fail_transient(what, exc)
        try:
            body = self._answer(response, what, decode)
            return body, response.links.get("next", {}).get("url")
        finally:
            response.close()
            self._log_duration(what, response, time.perf_counter() - started)

    def _answer(self, response: requests.Response, what: str, decode: Decode) -> Any:
        status = response.status_code
        try:
            content = b"".join(response.iter_content(chunk_size=None))
        except requests.exceptions.RequestException as exc:
            self._fail_transient(what, exc)
        if status in RETRIED_STATUSES:
            message = self.explain_status(response, content, what)
            raise _TryFailedError(message, RetriesExhaustedError(message))
        if status == 401:
            raise CredentialsError(self.explain_status(response, content, what))
        if status >= 400:
            raise ApiError(
                self.explain_status(response, content, what),
                status=status,
                body=self._error_body(content),
            )
        try:
            return decode(content)
        except msgspec.DecodeError:
            # A cut or garbled body is a transport fault more often than a server bug.
            # Retries exhausted, a sample page is still asked for in smaller pieces.
            problem = f"{what}: the answer is not valid JSON ({len(content)} bytes)"
            final = RetriesExhaustedError(
                f"{what} kept answering with a body that is not JSON; is {self.endpoint} "
                f"{self.api_name}'s endpoint?"
            )
            raise _TryFailedError(problem, final) from None

    def decode(self, content: bytes) -> Any:
        """A JSON answer; raises msgspec.DecodeError for anything else."""
        return msgspec.json.decode(content)

    @staticmethod
    def _error_body(content: bytes) -> Any:
        try:
            return msgspec.json.decode(content)
        except msgspec.DecodeError:
            return None

    def _fail_transient(
        self, what: str, exc: Exception, final: FatalAPIError | None = None
    ) -> NoReturn:
        problem = f"{what} failed: {type(exc).__name__}: {exc}"
        raise _TryFailedError(problem, final or RetriesExhaustedError(problem)) from None

    def _unreachable(self, exc: Exception) -> str:
        return f"Cannot reach {self.api_name} at {self.endpoint}: {exc}. Check the endpoint."

    def _log_duration(self, what: str, response: requests.Response, seconds: float) -> None:
        failed = response.status_code >= 400
        point = metrics.Point(
            metric_type="timer",
            metric=metrics.Metric.HTTP_REQUEST_DURATION,
            value=round(seconds, 6),
            tags={
                metrics.Tag.ENDPOINT: what.split("?", 1)[0],
                metrics.Tag.HTTP_STATUS_CODE: response.status_code,
                metrics.Tag.STATUS: metrics.Status.FAILED if failed else metrics.Status.SUCCEEDED,
            },
        )
        metrics.log(self.metrics_logger, point)


def one_line(text: str, limit: int = 300) -> str:
    """A server's message on one line: markup and runs of white space removed, cut short."""
    return " ".join(_MARKUP.sub(" ", text).split())[:limit]
