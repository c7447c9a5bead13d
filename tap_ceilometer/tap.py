"""TapCeilometer: checks the settings, builds the run's session and client, and the streams."""

from __future__ import annotations

import sys
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from singer_sdk import Tap
from typing_extensions import override

from tap_ceilometer.errors import ConfigError, one_sentence
from tap_ceilometer.output import SingerOutput, widen_stdout_pipe
from tap_ceilometer.session import build_session, has_admin_role
from tap_ceilometer.settings import CONFIG_SCHEMA, Partition, ReadSettings, check_settings
from tap_ceilometer.v2.catalog import MeterCatalog
from tap_ceilometer.v2.client import CeilometerClient
from tap_ceilometer.v2.query import Selection, parse_selections

if TYPE_CHECKING:
    from types import FrameType

    from keystoneauth1 import session as ks_session

    from tap_ceilometer.v2.streams import SampleStream

READER_SWITCH_INTERVAL = 0.001  # seconds; see sync_all


class TapCeilometer(Tap):
    """Singer tap for OpenStack Ceilometer (API v2): every meter sample, exactly once.

    One stream per meter, incremental by sample timestamp, complete despite the API's
    100-row default limit, newest-first order and lack of pagination.
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
            self.selections  # noqa: B018 - parsing them is the check
        except ConfigError as exc:
            if raise_errors:
                raise
            errors = exc.errors
        return errors

    @cached_property
    def selections(self) -> list[Selection]:
        return parse_selections(self.config.get("selections") or [])

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
        config = self.config
        return CeilometerClient(
            self.keystone_session,
            service_type=str(config.get("service_type") or "metering"),
            interface=str(config.get("interface") or "public"),
            region_name=config.get("region_name"),
            endpoint_override=config.get("endpoint_override"),
            max_retries=int(config.get("max_retries", 5)),
            timeout=float(config.get("request_timeout", 300)),
            logger=self.logger,
        )

    # --- streams ---------------------------------------------------------------------------

    @override
    def discover_streams(self) -> list[SampleStream]:
        catalog = MeterCatalog(
            client=self.ceilometer,
            meters=self.config.get("meters"),
            selections=self.selections,
            sees_every_project=has_admin_role(self.keystone_session),
            partition=Partition.from_config(self.config.get("partition")),
        )
        return catalog.streams(
            self,
            read=ReadSettings.from_config(self.config),
            stop=self.stop,
            layout=str(self.config.get("layout") or "per_meter"),
        )

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
