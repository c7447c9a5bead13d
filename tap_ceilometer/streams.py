"""MeterStream: the samples of one meter, read oldest first, one bookmark per selection."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlparse

import backoff
import msgspec
import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_ceilometer.client import error_text, explain_status
from tap_ceilometer.errors import (
    AnswerTooSlowError,
    ApiError,
    CredentialsError,
    TokenRenewedError,
)
from tap_ceilometer.reader import ORDER_BY, Cursor, keyset_pages, window_pages
from tap_ceilometer.records import RecordBuilder, parse_api_time, utc_iso
from tap_ceilometer.schema import SAMPLE_SCHEMA

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Sequence

    from backoff.types import Details
    from singer_sdk.helpers.types import Context

    from tap_ceilometer.query import Selection
    from tap_ceilometer.tap import TapCeilometer


# Stored beside the SDK's replication_key_value: the last sample exported at that instant,
# so that a resumed run continues inside a tie instead of repeating or skipping it.
MESSAGE_ID_KEY = "replication_key_message_id"
SELECTION_KEY = "selection"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MeterStream(RESTStream[Any]):
    """Samples of one Ceilometer meter."""

    primary_keys = ("message_id",)
    replication_key = "timestamp"
    # Records leave the reader in ascending (timestamp, message_id) order (see reader.py),
    # so interim bookmarks are safe to resume from.
    is_sorted = True
    # records.py builds every record with exactly the schema's types (strings, floats, null
    # for non-finite volumes, string-valued metadata), so the SDK's per-record conformance
    # pass would return it unchanged; it cost a fifth of the tap's CPU.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(
        self,
        tap: TapCeilometer,
        *,
        meter: str,
        name: str,
        selections: Sequence[Selection] = (),
    ) -> None:
        self.meter = meter
        self.selections = {selection.key: selection for selection in selections}
        self._tap_ref = tap
        super().__init__(tap, name=name, schema=SAMPLE_SCHEMA, path=f"/v2/meters/{quote(meter)}")
        self.STATE_MSG_FREQUENCY = int(self.config.get("page_size", 1000))
        self._renewed_token = False
        self._plain_output: bool | None = None

    # --- HTTP plumbing, shared with the rest of the run --------------------------------

    @property
    @override
    def url_base(self) -> str:
        return self._tap_ref.endpoint

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self._tap_ref.http_session

    @property
    @override
    def authenticator(self) -> Any:
        return self._tap_ref.keystone_auth

    @property
    @override
    def timeout(self) -> float:  # type: ignore[override]  # requests takes fractions of seconds
        return float(self.config.get("request_timeout", 300))

    @override
    def backoff_max_tries(self) -> int:
        return int(self.config.get("max_retries", 5)) + 1

    @override
    def backoff_wait_generator(self) -> Generator[float, None, None]:
        # 0.5 s, 1 s, 2 s ... up to a minute; the SDK adds jitter.
        return backoff.expo(base=2, factor=0.5, max_value=60)

    @override
    def backoff_handler(self, details: Details) -> None:
        # The SDK logs each retry as an ERROR naming the stream's path; a retry is a warning,
        # and the request that failed may be POST /v2/query/samples.
        self.logger.warning(
            "Meter %s: %s; try %d of %d in %.1f s.",
            self.meter,
            details.get("exception"),
            details["tries"] + 1,
            self.backoff_max_tries(),
            details.get("wait", 0.0),
        )

    @override
    def response_error_message(self, response: requests.Response) -> str:
        request = response.request
        return explain_status(response, f"{request.method} {urlparse(request.url or '').path}")

    @override
    def validate_response(self, response: requests.Response) -> None:
        if response.status_code == 401:
            if not self._renewed_token:
                # Expired or revoked mid-run: renew once, then let the SDK retry the call.
                self._renewed_token = True
                self._tap_ref.keystone_auth.invalidate()
                raise TokenRenewedError(error_text(response), response)
            raise CredentialsError(self.response_error_message(response))
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise ApiError(self.response_error_message(response))
        super().validate_response(response)
        self._renewed_token = False

    @override
    def get_new_paginator(self) -> None:
        return None  # reader.py pages; the SDK's paginators assume a cursor Ceilometer lacks

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        return self._decode(response)

    def _decode(self, response: requests.Response) -> list[Any]:
        # The session streams (tap.http_session): read the body in one piece, not in the
        # 10 KiB steps of response.content, each of which waits for the GIL in the reader.
        content = b"".join(response.iter_content(chunk_size=None))
        try:
            body = msgspec.json.decode(content)
        except msgspec.DecodeError:
            # A cut or garbled body is a transport fault more often than a server bug.
            msg = f"{self.path}: the answer is not valid JSON ({len(content)} bytes)"
            raise RetriableAPIError(msg, response) from None
        if not isinstance(body, list):
            msg = f"{self.path}: the answer is {type(body).__name__}, not a list of samples"
            raise RetriableAPIError(msg, response)
        return body

    def _call(self, method: str, url: str, **kwargs: Any) -> list[Any]:
        def attempt(prepared: requests.PreparedRequest, context: Context | None) -> Any:
            # Decoding inside the retried call: a cut body is retried like a reset connection.
            try:
                response = self._request(prepared, context)
            except TokenRenewedError:
                # A new token goes on the request at once (the authenticator runs on every
                # try); waiting out a backoff would not make it any more valid.
                response = self._request(prepared, context)
            return self._decode(response)

        prepared = self.build_prepared_request(method=method, url=url, **kwargs)
        retried: Any = self.request_decorator(attempt)
        return cast("list[Any]", retried(prepared, self.context))

    def _split_when_overloaded(self, limit: int, call: Callable[[], list[Any]]) -> list[Any]:
        """Retried failures that a smaller page may avoid become AnswerTooSlowError."""
        try:
            return call()
        except (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            failure: Exception = exc
        except RetriableAPIError as exc:
            failure = exc
        self.logger.warning(
            "Meter %s: a page of %d samples failed after retries (%s); asking for less.",
            self.meter,
            limit,
            failure,
        )
        raise AnswerTooSlowError(limit, failure)

    def _fetch_complex(self, filter_: dict[str, Any], limit: int) -> list[Any]:
        body = {
            "filter": msgspec.json.encode(filter_).decode(),
            "orderby": msgspec.json.encode(ORDER_BY).decode(),
            "limit": limit,
        }
        url = f"{self.url_base}/v2/query/samples"
        return self._split_when_overloaded(limit, lambda: self._call("POST", url, json=body))

    def _fetch_simple(self, params: list[tuple[str, str]], limit: int) -> list[Any]:
        url, query = self.get_url(None), [*params, ("limit", str(limit))]
        return self._split_when_overloaded(limit, lambda: self._call("GET", url, params=query))

    # --- what to read ---------------------------------------------------------------------

    @property
    @override
    def partitions(self) -> list[dict[str, Any]] | None:
        if not self.selections:
            return None
        return [{SELECTION_KEY: key} for key in self.selections]

    def _selection(self, context: Context | None) -> Selection | None:
        if not context:
            return None
        return self.selections[context[SELECTION_KEY]]

    def _start(self, context: Context | None) -> Cursor:
        """Where this run starts: the bookmark (minus the lookback window) or start_date."""
        state = self.get_context_state(context)
        start_date = self.config.get("start_date")
        floor = parse_api_time(start_date) if start_date else EPOCH
        bookmark = state.get("replication_key_value")
        if not bookmark or state.get("replication_key") != self.replication_key:
            return Cursor.at(floor)
        moment = parse_api_time(bookmark)
        # Normalise a hand-written or older bookmark so that later string comparisons hold.
        state["replication_key_value"] = utc_iso(moment)
        lookback = timedelta(seconds=int(self.config.get("lookback_window") or 0))
        if lookback:
            return Cursor.at(max(floor, moment - lookback))
        if floor > moment:
            return Cursor.at(floor)
        return Cursor(utc_iso(moment), state.get(MESSAGE_ID_KEY, ""))

    def _end(self, context: Context | None) -> datetime:
        signpost = self.get_replication_key_signpost(context)
        end = signpost if isinstance(signpost, datetime) else datetime.now(tz=UTC)
        if end_date := self.config.get("end_date"):
            end = min(end, parse_api_time(end_date))
        return end

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        if self._tap_ref.stop_requested():
            return
        selection = self._selection(context)
        builder = RecordBuilder(self.meter, self.logger)
        start, end = self._start(context), self._end(context)
        page_size = int(self.config.get("page_size", 1000))
        use_complex = self._tap_ref.use_complex_query and (
            selection is None or selection.complex_query_safe
        )
        # One worker reads the next keyset page ahead while this thread writes the current
        # one; without it every request leaves the target starved for as long as it takes.
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"read-{self.name}")
        pages: Generator[list[dict[str, Any]], None, None]
        if use_complex:
            pages = keyset_pages(
                self._fetch_complex,
                lambda sample: builder.build(sample, new_format=True),
                meter=self.meter,
                selection=selection,
                start=start,
                end=end,
                page_size=page_size,
                submit=reader.submit,
            )
        else:
            pages = window_pages(
                self._fetch_simple,
                lambda sample: builder.build(sample, new_format=False),
                selection=selection,
                start=start,
                end=end,
                page_size=page_size,
            )
        try:
            for page in pages:
                for record in page:
                    yield record
                    # Resumed here only once the SDK has written the record and moved the
                    # bookmark: stopping now leaves a state that covers exactly what was sent.
                    if self._tap_ref.stop_requested():
                        self.logger.info("Meter %s: stopping on request.", self.meter)
                        return
                del page  # not held while the next page is awaited
        finally:
            pages.close()
            reader.shutdown(wait=False, cancel_futures=True)
        if builder.repairs:
            self.logger.warning("Meter %s: repairs made: %s", self.meter, dict(builder.repairs))

    # --- bookmarks -----------------------------------------------------------------------

    @override
    def _increment_stream_state(
        self, latest_record: dict[str, Any], *, context: Context | None = None
    ) -> None:
        # The SDK's own increment raises on the older samples a lookback window re-reads and
        # knows nothing of ties; the bookmark here only ever moves forward, by (time, id).
        state = self.get_context_state(context)
        position = (latest_record["timestamp"], latest_record["message_id"])
        stored = state.get("replication_key_value")
        if stored is None or position > (stored, state.get(MESSAGE_ID_KEY, "")):
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = position[0]
            state[MESSAGE_ID_KEY] = position[1]

    # --- output -----------------------------------------------------------------------------

    def _output_is_plain(self) -> bool:
        """Whether records leave as built: every field selected, no stream map, no flattening."""
        maps = self.stream_maps
        return (
            all(self.mask.values())
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and not maps[0].flattening_enabled
        )

    @override
    def _write_record_message(self, record: dict[str, Any]) -> None:
        # The SDK's path walks the selection mask for every field of every record (a sixth
        # of the CPU) and runs the identity map; with nothing to drop or map, write it as is.
        if self._plain_output is None:
            self._plain_output = self._output_is_plain()
        if not self._plain_output:
            super()._write_record_message(record)
            return
        self._tap.write_message(
            RecordMessage(
                stream=self.name,
                record=record,
                version=self._stream_version,
                time_extracted=datetime.now(tz=UTC),
            )
        )
        self.state_manager.is_flushed = False

    @override
    def _process_record(
        self,
        record: dict[str, Any],
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        # The SDK would copy the partition's selection key into every record; it is no column
        # of a sample, and meter streams have no children.
        return
