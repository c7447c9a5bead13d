"""TapCeilometer: checks the settings, builds the run's session and client, and the streams."""

from __future__ import annotations

import sys
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from keystoneauth1 import http_basic
from keystoneauth1.identity.base import BaseIdentityPlugin
from singer_sdk import Tap
from typing_extensions import override

from tap_ceilometer.errors import ApiError, ConfigError, one_sentence
from tap_ceilometer.gnocchi.catalog import GnocchiCatalog, GnocchiSelection
from tap_ceilometer.gnocchi.client import GnocchiClient
from tap_ceilometer.gnocchi.streams import MeasureSettings
from tap_ceilometer.keystone.client import KeystoneClient
from tap_ceilometer.keystone.streams import KEYSTONE_STREAMS, keystone_streams
from tap_ceilometer.output import SingerOutput, widen_stdout_pipe
from tap_ceilometer.session import build_session, has_admin_role
from tap_ceilometer.settings import CONFIG_SCHEMA, Partition, ReadSettings, check_settings
from tap_ceilometer.v2.catalog import MeterCatalog
from tap_ceilometer.v2.client import CeilometerClient
from tap_ceilometer.v2.query import Selection, parse_selections

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

    from keystoneauth1 import session as ks_session
    from singer_sdk import Stream

    from tap_ceilometer.client import ApiClient

READER_SWITCH_INTERVAL = 0.001  # seconds; see sync_all


class TapCeilometer(Tap):
    """Singer tap for OpenStack metering: Ceilometer's API v2 samples (up to Pike) or
    Gnocchi's measures (Queens and later), every value exactly once.

    One stream per meter. API v2: incremental by sample timestamp, complete despite the API's
    100-row default limit, newest-first order and lack of pagination. Gnocchi: every metric of
    the name, each period's aggregate re-read until it can no longer change; and the
    resources (with history), metrics and archive policies. For BI, the names: Keystone's
    projects, domains and users, and API v2's resources and meter catalogue.
    """

    name = "tap-ceilometer"
    dynamic_catalog = True
    message_writer_class = SingerOutput
    config_jsonschema = CONFIG_SCHEMA

    # --- the command line: an expected failure is one sentence ------------------------------

    @classmethod
    @override
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        with one_sentence(cls.logger):
            super().invoke(*args, **kwargs)

    @classmethod
    @override
    def cb_discover(cls, *args: Any, **kwargs: Any) -> None:
        with one_sentence(cls.logger):
            super().cb_discover(*args, **kwargs)

    @classmethod
    @override
    def cb_test(cls, *args: Any, **kwargs: Any) -> None:
        with one_sentence(cls.logger):
            super().cb_test(*args, **kwargs)

    # --- checks before any data moves ----------------------------------------------------

    # Private in singer-sdk 0.54.9 (PluginBase._validate_config), and the one place the SDK
    # validates settings: before discovery and before any request, for every command.
    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        errors = super()._validate_config(raise_errors=raise_errors)
        if errors:
            return errors
        try:
            check_settings(self.config, set(self.config_jsonschema["properties"]))
            if self._gnocchi_style_selections:
                self.gnocchi_selections  # noqa: B018 - parsing them is the check
            else:
                self.selections  # noqa: B018
        except ConfigError as exc:
            if raise_errors:
                raise
            errors = exc.errors
        return errors

    @cached_property
    def selections(self) -> list[Selection]:
        return parse_selections(self.config.get("selections") or [])

    @property
    def _gnocchi_style_selections(self) -> bool:
        """Whether `selections` are Gnocchi searches: checked before any request is made."""
        config = self.config
        if config.get("api") == "gnocchi" or config.get("gnocchi_basic_user"):
            return True
        return config.get("api") != "v2" and any(
            isinstance(item, dict) and "search" in item for item in config.get("selections") or []
        )

    @cached_property
    def gnocchi_selections(self) -> list[GnocchiSelection]:
        return GnocchiSelection.parse(self.config.get("selections") or [])

    # --- what the whole run shares ---------------------------------------------------------

    @cached_property
    def stop(self) -> threading.Event:
        """Set by SIGTERM or SIGINT: streams end after the record they are writing."""
        return threading.Event()

    @cached_property
    def keystone_session(self) -> ks_session.Session:
        return build_session(self.config)

    @cached_property
    def ceilometer(self) -> CeilometerClient:
        return CeilometerClient(
            self.keystone_session,
            service_type=str(self.config.get("service_type") or "metering"),
            **self._client_settings(),
        )

    def _client_settings(self) -> dict[str, Any]:
        config = self.config
        return {
            "interface": str(config.get("interface") or "public"),
            "region_name": config.get("region_name"),
            "endpoint_override": config.get("endpoint_override"),
            "max_retries": int(config.get("max_retries", 5)),
            "timeout": float(config.get("request_timeout", 300)),
            "logger": self.logger,
        }

    @cached_property
    def keystone(self) -> KeystoneClient:
        settings = self._client_settings()
        del settings["endpoint_override"]  # it names the metering API, never Keystone
        return KeystoneClient(self.keystone_session, **settings)

    def _keystone_streams(self) -> list[Stream]:
        """projects, domains and users, where the run authenticates with Keystone, in the
        first partition only (every partition would send the same rows)."""
        if not isinstance(self.keystone_session.auth, BaseIdentityPlugin):
            self.logger.info(
                "No projects, domains or users streams: a pre-issued token or Gnocchi's basic"
                " auth has no Keystone service catalog to find them in."
            )
            return []
        if Partition.from_config(self.config.get("partition")).index != 0:
            return []
        return list(keystone_streams(self, self.keystone))

    @cached_property
    def gnocchi(self) -> GnocchiClient:
        return GnocchiClient(
            self.keystone_session, service_type="metric", **self._client_settings()
        )

    @cached_property
    def api(self) -> str:
        """Which API this run reads, said in one log line with the reason."""
        asked = str(self.config.get("api") or "auto")
        if asked != "auto":
            api, why = asked, "the api setting"
        elif self.config.get("gnocchi_basic_user"):
            api, why = "gnocchi", "gnocchi_basic_user is set"
        else:
            api, why = self._detect_api()
        where = (self.gnocchi if api == "gnocchi" else self.ceilometer).endpoint
        name = "Gnocchi" if api == "gnocchi" else "Ceilometer API v2"
        self.logger.info("Reading %s at %s (%s).", name, where, why)
        return api

    def _detect_api(self) -> tuple[str, str]:
        if self.config.get("endpoint_override"):
            if self._answers_as_gnocchi(str(self.config["endpoint_override"])):
                return "gnocchi", "endpoint_override answers as Gnocchi"
            return "v2", "endpoint_override does not answer as Gnocchi"
        has_metering = _has_endpoint(self.ceilometer)
        if not _has_endpoint(self.gnocchi):
            if not has_metering:
                msg = (
                    "The service catalog has neither a metering (Ceilometer API v2) nor a metric"
                    " (Gnocchi) endpoint. Check interface and region_name, or set"
                    " endpoint_override and api."
                )
                raise ConfigError(msg)
            return "v2", "the catalog has a metering endpoint and no metric one"
        if not has_metering:
            return "gnocchi", "the catalog has a metric endpoint and no metering one"
        try:  # both: Pike and earlier with the Gnocchi dispatcher answer 410 here
            self.ceilometer.request_json("GET", "/v2/meters", params={"limit": 1})
        except ApiError as exc:
            if exc.status == 410:
                return "gnocchi", "the metering endpoint answers 410: its samples are in Gnocchi"
            raise
        return "v2", "the catalog's metering endpoint serves samples"

    def _answers_as_gnocchi(self, url: str) -> bool:
        """Whether `GET /` (unauthenticated in every Gnocchi auth mode) answers with Gnocchi's
        `{"build": ..., "versions": [...]}`. One try: anything else is read as API v2, whose
        own requests then report what is wrong."""
        try:
            response = self.keystone_session.request(
                url.rstrip("/") + "/",
                "GET",
                authenticated=False,
                raise_exc=False,
                connect_retries=0,
                headers={"Accept": "application/json"},
            )
            root = response.json()
        except Exception:
            return False
        return isinstance(root, dict) and "build" in root and isinstance(root.get("versions"), list)

    # --- streams ---------------------------------------------------------------------------

    @override
    def discover_streams(self) -> Sequence[Stream]:
        if self.api == "gnocchi":
            return self._gnocchi_streams()
        catalog = MeterCatalog(
            client=self.ceilometer,
            meters=self.config.get("meters"),
            selections=self.selections,
            sees_every_project=has_admin_role(self.keystone_session),
            partition=Partition.from_config(self.config.get("partition")),
        )
        streams = catalog.streams(
            self,
            read=ReadSettings.from_config(self.config),
            stop=self.stop,
            layout=str(self.config.get("layout") or "per_meter"),
            reserved=KEYSTONE_STREAMS,
        )
        return [*streams, *self._keystone_streams()]

    def _gnocchi_streams(self) -> list[Stream]:
        config = self.config
        if not isinstance(self.keystone_session.auth, http_basic.HTTPBasicAuth) and not (
            has_admin_role(self.keystone_session)
        ):
            self.logger.warning(
                "The token has no admin role: Gnocchi lists only the metrics and resources of"
                " the token's project, without an error (T18)."
            )
        read = ReadSettings.from_config(config)
        grains, methods = config.get("granularities"), config.get("aggregations")
        settings = MeasureSettings(
            granularities=tuple(grains) if grains else None,
            aggregations=tuple(methods) if methods else None,
            per_request=int(config.get("metrics_per_request") or 100),
            start=int(read.start.timestamp()) if config.get("start_date") else None,
            end=int(read.end.timestamp()) if read.end else None,
        )
        catalog = GnocchiCatalog(
            client=self.gnocchi,
            meters=config.get("meters"),
            selections=self.gnocchi_selections,
            settings=settings,
            partition=Partition.from_config(config.get("partition")),
        )
        streams = catalog.streams(self, stop=self.stop, reserved=KEYSTONE_STREAMS)
        return [*streams, *self._keystone_streams()]

    # --- running continuously, stopping cleanly ---------------------------------------------

    # Private in singer-sdk 0.54.9 (Tap._handle_termination), the SDK's signal handler: the
    # first signal lets the current record finish so that the last STATE covers exactly what
    # was sent; a second stops at once, as the SDK does.
    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            super()._handle_termination(signum, frame)
            return
        self.logger.info("Signal %d: finishing the current record, then stopping.", signum)
        self.stop.set()

    # Final in singer-sdk 0.54.9 (Tap.sync_all), which has no hook for repeated sweeps in one
    # process; continuous export (poll_interval) needs the same state and session, a sweep
    # after each pause. Each sweep is the SDK's own sync_all.
    @override  # type: ignore[misc]
    def sync_all(self) -> None:
        # Streams read the next page in a worker thread (v2/streams.py). Its socket reads
        # each wait for the GIL, which the busy writing thread gives up only every switch
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
            if not interval or self.stop.is_set():
                return
            pause = max(0.0, float(interval) - (time.monotonic() - started))
            self.logger.info("Sweep done; the next starts in %.0f s.", pause)
            if self.stop.wait(pause):
                return
            self._refresh_streams()

    def _refresh_streams(self) -> None:
        """New stream objects for the next sweep: a new end bound, and new meters.

        The SDK (0.54.9) caches streams and the catalog in `_streams` and `_catalog` for the
        life of the tap and has no public way to rebuild them.
        """
        self._streams = None
        if self.input_catalog is None:
            self._catalog = None
        self.setup_mapper()


# `--about` prints the class docstring as the description, inside a template that singer-sdk
# (0.54.9) dedents as a whole: a second, indented line would shift every line of the output.
TapCeilometer.__doc__ = " ".join((TapCeilometer.__doc__ or "").split())

if __name__ == "__main__":
    TapCeilometer.cli()


def _has_endpoint(client: ApiClient) -> bool:
    try:
        client.endpoint  # noqa: B018 - the catalog lookup
    except ConfigError:
        return False
    return True
