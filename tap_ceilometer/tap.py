"""TapCeilometer: settings, checks made before any data moves, and one stream per meter."""

from __future__ import annotations

import difflib
import sys
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import requests
from keystoneauth1.identity.base import BaseIdentityPlugin
from singer_sdk import Tap
from singer_sdk import typing as th
from typing_extensions import override

from tap_ceilometer.auth import (
    KeystoneAuth,
    build_session,
    get_token,
    metering_endpoint,
    select_auth_mode,
)
from tap_ceilometer.client import CeilometerClient
from tap_ceilometer.errors import ConfigError
from tap_ceilometer.output import SingerOutput, widen_stdout_pipe
from tap_ceilometer.query import Selection, parse_selections
from tap_ceilometer.records import parse_api_time
from tap_ceilometer.schema import stream_names
from tap_ceilometer.streams import MeterStream

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from types import FrameType

    from keystoneauth1 import session as ks_session


QUERY_METHODS = ("auto", "complex", "simple")
READER_SWITCH_INTERVAL = 0.001  # seconds; see sync_all

CONDITION = th.ObjectType(
    th.Property("field", th.StringType, required=True),
    th.Property("op", th.StringType),
    th.Property("value", th.StringType, required=True),
    th.Property("type", th.StringType),
)


class TapCeilometer(Tap):
    """Singer tap for OpenStack Ceilometer (API v2): every meter sample, exactly once.

    One stream per meter, incremental by sample timestamp, complete despite the API's
    100-row default limit, newest-first order and lack of pagination.
    """

    name = "tap-ceilometer"
    dynamic_catalog = True
    message_writer_class = SingerOutput

    config_jsonschema = th.PropertiesList(
        # Keystone
        th.Property(
            "auth_url",
            th.URIType,
            description="Keystone URL, e.g. https://keystone:5000/v3 (v2.0 URLs work too)",
        ),
        th.Property(
            "username", th.StringType, description="Keystone user name (password authentication)"
        ),
        th.Property("user_id", th.StringType, description="Keystone user id, instead of username"),
        th.Property("password", th.StringType, secret=True, description="Keystone password"),
        th.Property(
            "project_name",
            th.StringType,
            description=(
                "Project to scope the token to; with the admin role, every project's samples"
            ),
        ),
        th.Property("project_id", th.StringType, description="Project id, instead of project_name"),
        th.Property(
            "tenant_name",
            th.StringType,
            description="Keystone v2.0 name of the project (same as project_name)",
        ),
        th.Property(
            "user_domain_name",
            th.StringType,
            default="Default",
            description="Domain of the user (Keystone v3)",
        ),
        th.Property(
            "project_domain_name",
            th.StringType,
            default="Default",
            description="Domain of the project (Keystone v3)",
        ),
        th.Property(
            "application_credential_id",
            th.StringType,
            description="Application credential id, instead of a password",
        ),
        th.Property(
            "application_credential_secret",
            th.StringType,
            secret=True,
            description="Application credential secret",
        ),
        th.Property(
            "token",
            th.StringType,
            secret=True,
            description="A pre-issued Keystone token; needs endpoint_override",
        ),
        th.Property(
            "endpoint_override",
            th.URIType,
            description="Ceilometer URL to use instead of the service catalog's, e.g. http://ceilometer:8777",
        ),
        th.Property(
            "region_name",
            th.StringType,
            description="Region of the metering endpoint in the catalog",
        ),
        th.Property(
            "interface",
            th.StringType,
            default="public",
            allowed_values=["public", "internal", "admin"],
            description="Which catalog endpoint to use",
        ),
        th.Property(
            "service_type",
            th.StringType,
            default="metering",
            description="Catalog service type of Ceilometer",
        ),
        th.Property(
            "ca_cert",
            th.StringType,
            description="CA bundle (PEM file) to verify Keystone and Ceilometer TLS certificates",
        ),
        th.Property(
            "insecure",
            th.BooleanType,
            default=False,
            description="Skip TLS certificate verification (not for production)",
        ),
        # What to export
        th.Property(
            "meters",
            th.ArrayType(th.StringType),
            description="Meters to export; default: every meter the API lists",
        ),
        th.Property(
            "selections",
            th.ArrayType(
                th.ObjectType(
                    th.Property(
                        "name",
                        th.StringType,
                        description="Stable name of the selection; its bookmarks are kept under it",
                    ),
                    th.Property(
                        "query",
                        th.ArrayType(CONDITION),
                        description="Simple-query conditions (field, op eq, value, type), ANDed",
                    ),
                    th.Property(
                        "meters",
                        th.ArrayType(th.StringType),
                        description="Meters this query applies to; default: all exported meters",
                    ),
                )
            ),
            description="Filter queries and the meters they apply to; each keeps its own bookmark",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description="Export samples from this time on (first run); default: all",
        ),
        th.Property(
            "end_date", th.DateTimeType, description="Export samples before this time only"
        ),
        # How
        th.Property(
            "page_size", th.IntegerType, default=1000, description="Samples per API request"
        ),
        th.Property(
            "lookback_window",
            th.IntegerType,
            default=0,
            description="Seconds re-read below the bookmark to catch samples recorded late",
        ),
        th.Property(
            "query_method",
            th.StringType,
            default="auto",
            allowed_values=list(QUERY_METHODS),
            description=(
                "complex: keyset pages over POST /v2/query/samples; simple: time windows over"
                " GET /v2/meters/{name} (for HBase storage); auto: complex where the API has it"
            ),
        ),
        th.Property(
            "poll_interval",
            th.IntegerType,
            description="Seconds between sweeps; when set, the tap keeps running",
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=5,
            description=(
                "Retries of a failed request (5xx, timeouts, resets), with exponential backoff"
                " and jitter"
            ),
        ),
        th.Property(
            "request_timeout",
            th.NumberType,
            default=300,
            description="Seconds to wait for one API answer",
        ),
    ).to_dict()

    # --- checks before any data moves ----------------------------------------------------

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        errors = super()._validate_config(raise_errors=raise_errors)
        if errors:
            return errors
        try:
            self._check_settings()
        except ConfigError as exc:
            if raise_errors:
                raise
            errors = exc.errors
        return errors

    def _check_settings(self) -> None:
        config = self.config
        known = set(self.config_jsonschema["properties"])
        for key in sorted(set(config) - known):
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            msg = f"Unknown setting {key!r}{hint}; `tap-ceilometer --about` lists the settings."
            raise ConfigError(msg)
        for key in ("auth_url", "endpoint_override"):
            if config.get(key):
                url = urlparse(str(config[key]))
                if url.scheme not in ("http", "https") or not url.hostname:
                    msg = f"{key} {config[key]!r} is not an http(s) URL."
                    raise ConfigError(msg)
        select_auth_mode(config)
        dates: dict[str, datetime] = {}
        for key in ("start_date", "end_date"):
            if config.get(key):
                try:
                    dates[key] = parse_api_time(str(config[key]))
                except ValueError:
                    msg = f"{key} {config[key]!r} is not an ISO 8601 date-time."
                    raise ConfigError(msg) from None
        if (
            "start_date" in dates
            and "end_date" in dates
            and dates["end_date"] <= dates["start_date"]
        ):
            msg = "end_date must be later than start_date."
            raise ConfigError(msg)
        for key, least in (
            ("page_size", 1),
            ("lookback_window", 0),
            ("max_retries", 0),
            ("poll_interval", 1),
        ):
            if config.get(key) is not None and int(config[key]) < least:
                msg = f"{key} must be at least {least}."
                raise ConfigError(msg)
        if config.get("request_timeout") is not None and float(config["request_timeout"]) <= 0:
            msg = "request_timeout must be positive."
            raise ConfigError(msg)
        self.selections  # noqa: B018 - parsing them is the check

    @cached_property
    def selections(self) -> list[Selection]:
        return parse_selections(self.config.get("selections") or [])

    # --- running continuously, stopping cleanly ---------------------------------------------

    @cached_property
    def _stop(self) -> threading.Event:
        return threading.Event()

    def stop_requested(self) -> bool:
        return bool(self._stop.is_set())

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        if self._stop.is_set():  # a second signal: stop at once, as the SDK does
            super()._handle_termination(signum, frame)
            return
        self.logger.info("Signal %d: finishing the current record, then stopping.", signum)
        self._stop.set()

    # The SDK marks sync_all final and has no hook for repeated sweeps in one process, which
    # continuous export needs: the same state, the same session, a sweep after each pause.
    @override  # type: ignore[misc]
    def sync_all(self) -> None:
        # Streams read the next page in a worker thread (streams.py). Its socket reads each
        # wait for the GIL, which the busy writing thread gives up only every switch
        # interval: at the default 5 ms, reading a page took longer than writing one.
        widen_stdout_pipe()
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(READER_SWITCH_INTERVAL)
        try:
            self._sweep_until_done()
        finally:
            sys.setswitchinterval(switch_interval)
            if isinstance(self.message_writer, SingerOutput):
                self.message_writer.flush()

    def _sweep_until_done(self) -> None:
        interval = self.config.get("poll_interval")
        while True:
            started = time.monotonic()
            super().sync_all()
            if not interval or self.stop_requested():
                return
            pause = max(0.0, float(interval) - (time.monotonic() - started))
            self.logger.info("Sweep done; the next starts in %.0f s.", pause)
            if self._stop.wait(pause):
                return
            self._refresh_streams()

    def _refresh_streams(self) -> None:
        """New stream objects for the next sweep: a new end bound, and new meters."""
        self._streams = None
        if self.input_catalog is None:
            self._catalog = None
        self.setup_mapper()

    # --- what the whole run shares ---------------------------------------------------------

    @cached_property
    def keystone_session(self) -> ks_session.Session:
        return build_session(self.config)

    @cached_property
    def keystone_auth(self) -> KeystoneAuth:
        return KeystoneAuth(self.keystone_session)

    @cached_property
    def sees_every_project(self) -> bool:
        """Whether the token has the admin role, which Ceilometer's default policy lets see
        every project (a pre-issued token cannot tell: assume not)."""
        get_token(self.keystone_session)  # bad credentials: our clear error, not keystoneauth's
        auth = self.keystone_session.auth
        if not isinstance(auth, BaseIdentityPlugin):
            return False
        roles = auth.get_access(self.keystone_session).role_names or []
        return "admin" in {role.lower() for role in roles}

    @cached_property
    def endpoint(self) -> str:
        return metering_endpoint(self.keystone_session, self.config)

    @cached_property
    def http_session(self) -> requests.Session:
        session = requests.Session()
        session.stream = True  # streams.py reads each body in one piece
        if self.config.get("insecure"):
            session.verify = False
        elif self.config.get("ca_cert"):
            session.verify = str(self.config["ca_cert"])
        return session

    @cached_property
    def api(self) -> CeilometerClient:
        return CeilometerClient(
            self.keystone_session,
            self.endpoint,
            max_retries=int(self.config.get("max_retries", 5)),
            timeout=float(self.config.get("request_timeout", 300)),
        )

    @cached_property
    def use_complex_query(self) -> bool:
        method = self.config.get("query_method", "auto")
        if method == "auto":
            supported = self.api.complex_query_supported()
            if not supported:
                self.logger.info("Complex queries are not available: reading by time windows.")
            return supported
        return bool(method == "complex")

    # --- streams ---------------------------------------------------------------------------

    def _meters(self) -> list[str]:
        configured = self.config.get("meters")
        named = set(configured or [])
        for selection in self.selections:
            named.update(selection.meters or [])
        everything_wanted = not configured and (
            not self.selections or any(s.meters is None for s in self.selections)
        )
        available = self.api.meter_names(per_resource=not self.sees_every_project)
        if everything_wanted:
            return available
        # A meter the list leaves out may still have samples this user sees (see meter_names).
        unknown = sorted(m for m in named - set(available) if not self.api.has_samples(m))
        if unknown:
            hints = []
            for meter in unknown:
                close = difflib.get_close_matches(meter, available, n=3)
                hints.append(
                    f"{meter!r}" + (f" (did you mean {', '.join(close)}?)" if close else "")
                )
            msg = (
                f"Ceilometer has no samples of meter {', '.join(hints)} visible to this user. "
                "Check the names (GET /v2/meters) and that the user may see the project."
            )
            raise ConfigError(msg)
        return sorted(named)

    def _selections_for(self, meter: str, configured: Sequence[str] | None) -> list[Selection]:
        return [
            s
            for s in self.selections
            if (s.meters is not None and meter in s.meters)
            or (s.meters is None and (configured is None or meter in configured))
        ]

    @override
    def discover_streams(self) -> list[MeterStream]:
        meters = self._meters()
        names = stream_names(meters)
        configured = self.config.get("meters")
        streams = []
        for meter in meters:
            selections = self._selections_for(meter, configured)
            if self.selections and not selections:
                msg = f"Meter {meter!r} is in 'meters' but no selection applies to it."
                raise ConfigError(msg)
            streams.append(MeterStream(self, meter=meter, name=names[meter], selections=selections))
        return streams


if __name__ == "__main__":
    TapCeilometer.cli()
