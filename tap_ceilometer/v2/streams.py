"""SampleStream: samples read oldest first, one bookmark per meter and selection.

A plain `singer_sdk.Stream` (see client.py for why not a RESTStream): it is handed its
client, the read settings, the run's stop flag and what to read when it is built, asks the
reader (reader.py) for pages, and keeps each bookmark at the last (timestamp, message_id) it
sent. With `layout: per_meter` a stream reads one meter (under each selection that applies);
with `layout: single` one stream `samples` reads them all, a state partition per meter.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_ceilometer.batch_files import write_batch_files
from tap_ceilometer.errors import AnswerTooSlowError, RetriesExhaustedError
from tap_ceilometer.streams import QuietStream
from tap_ceilometer.timestamps import parse_api_time, utc_iso
from tap_ceilometer.v2.reader import ORDER_BY, Cursor, keyset_pages, window_pages
from tap_ceilometer.v2.records import RecordBuilder
from tap_ceilometer.v2.schema import SAMPLE_SCHEMA

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Generator, Iterable, Mapping, Sequence

    from singer_sdk import Tap
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.helpers.types import Context

    from tap_ceilometer.settings import ReadSettings
    from tap_ceilometer.v2.client import CeilometerClient
    from tap_ceilometer.v2.query import Selection


# Stored beside the SDK's replication_key_value: the last sample exported at that instant,
# so that a resumed run continues inside a tie instead of repeating or skipping it.
MESSAGE_ID_KEY = "replication_key_message_id"
SELECTION_KEY = "selection"
METER_KEY = "meter"


@dataclass(frozen=True)
class Read:
    """What one bookmark covers: the samples of a meter, under a selection or none."""

    meter: str
    selection: Selection | None = None

    def context(self, *, by_meter: bool) -> dict[str, str]:
        """This read's state partition (SDK context); per_meter streams leave the meter out."""
        context = {METER_KEY: self.meter} if by_meter else {}
        if self.selection is not None:
            context[SELECTION_KEY] = self.selection.key
        return context


class SampleStream(QuietStream):
    """Samples of one Ceilometer meter (layout per_meter), or of every meter (single)."""

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
        tap: Tap,
        *,
        name: str,
        reads: Sequence[Read],
        client: CeilometerClient,
        read: ReadSettings,
        stop: threading.Event,
        by_meter: bool = False,
    ) -> None:
        self.by_meter = by_meter
        self.reads = {_key(r.context(by_meter=by_meter)): r for r in reads}
        self.client = client
        self.read = read
        self.stop = stop
        super().__init__(tap, name=name, schema=SAMPLE_SCHEMA)
        self.STATE_MSG_FREQUENCY = read.page_size
        self._plain_output: bool | None = None

    # --- what to read ---------------------------------------------------------------------

    @property
    @override
    def partitions(self) -> list[dict[str, Any]] | None:
        contexts = [dict(key) for key in self.reads]
        # One meter without selections keeps its bookmark at the stream's level, as always.
        return None if contexts == [{}] else contexts

    def _read_for(self, context: Context | None) -> Read:
        return self.reads[_key(context or {})]

    def _start(self, context: Context | None) -> Cursor:
        """Where this run starts: the bookmark (minus the lookback window) or start_date."""
        state = self.get_context_state(context)
        floor = self.read.start
        bookmark = state.get("replication_key_value")
        if not bookmark or state.get("replication_key") != self.replication_key:
            return Cursor.at(floor)
        moment = parse_api_time(bookmark)
        # Normalise a hand-written or older bookmark so that later string comparisons hold.
        state["replication_key_value"] = utc_iso(moment)
        if self.read.lookback:
            return Cursor.at(max(floor, moment - self.read.lookback))
        if floor > moment:
            return Cursor.at(floor)
        return Cursor(utc_iso(moment), state.get(MESSAGE_ID_KEY, ""))

    def _end(self, context: Context | None) -> datetime:
        signpost = self.get_replication_key_signpost(context)
        end = signpost if isinstance(signpost, datetime) else datetime.now(tz=UTC)
        if self.read.end is not None:
            end = min(end, self.read.end)
        return end

    def _use_complex_query(self, selection: Selection | None) -> bool:
        if selection is not None and not selection.complex_query_safe:
            return False
        method = self.read.query_method
        return method == "complex" or (method == "auto" and self.client.complex_query_supported)

    def _smaller_when_failing(
        self, meter: str, limit: int, call: Callable[[], list[Any]]
    ) -> list[Any]:
        """Retried failures that a smaller page may avoid become AnswerTooSlowError."""
        try:
            return call()
        except RetriesExhaustedError as failure:
            self.logger.warning(
                "Meter %s: a page of %d samples failed after retries (%s); asking for less.",
                meter,
                limit,
                failure,
            )
            raise AnswerTooSlowError(limit, failure) from None

    def _pages(
        self, target: Read, builder: RecordBuilder, start: Cursor, end: datetime, submit: Any
    ) -> Generator[list[dict[str, Any]], None, None]:
        """The reader that suits the server and the selection (reader.py)."""
        meter, selection, size = target.meter, target.selection, self.read.page_size

        def fetch_complex(filter_: dict[str, Any], limit: int) -> list[Any]:
            return self._smaller_when_failing(
                meter, limit, lambda: self.client.query_samples(filter_, ORDER_BY, limit)
            )

        def fetch_simple(params: list[tuple[str, str]], limit: int) -> list[Any]:
            return self._smaller_when_failing(
                meter, limit, lambda: self.client.meter_samples(meter, params, limit)
            )

        if self._use_complex_query(selection):
            return keyset_pages(
                fetch_complex,
                lambda sample: builder.build(sample, new_format=True),
                meter=meter,
                selection=selection,
                start=start,
                end=end,
                page_size=size,
                submit=submit,
            )
        return window_pages(
            fetch_simple,
            lambda sample: builder.build(sample, new_format=False),
            selection=selection,
            start=start,
            end=end,
            page_size=size,
        )

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        if self.stop.is_set():
            return
        target = self._read_for(context)
        builder = RecordBuilder(target.meter, self.logger)
        start, end = self._start(context), self._end(context)
        # One worker reads the next keyset page ahead while this thread writes the current
        # one; without it every request leaves the target starved for as long as it takes.
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"read-{self.name}")
        pages = self._pages(target, builder, start, end, reader.submit)
        try:
            for page in pages:
                for record in page:
                    yield record
                    # Resumed here only once the SDK has written the record and moved the
                    # bookmark: stopping now leaves a state that covers exactly what was sent.
                    if self.stop.is_set():
                        self.logger.info("Meter %s: stopping on request.", target.meter)
                        return
                del page  # not held while the next page is awaited
        finally:
            pages.close()
            reader.shutdown(wait=False, cancel_futures=True)
        if builder.repairs:
            self.logger.warning("Meter %s: repairs made: %s", target.meter, dict(builder.repairs))

    # --- bookmarks -----------------------------------------------------------------------

    # Private in singer-sdk 0.54.9 (Stream._increment_stream_state), and the only place a
    # bookmark moves. The SDK's own increment raises on the older samples a lookback window
    # re-reads and keeps no tie-breaker; this bookmark only ever moves forward, by
    # (timestamp, message_id), which is what makes a resume inside a tie exact.
    @override
    def _increment_stream_state(
        self, latest_record: dict[str, Any], *, context: Context | None = None
    ) -> None:
        state = self.get_context_state(context)
        position = (latest_record["timestamp"], latest_record["message_id"])
        stored = state.get("replication_key_value")
        if stored is None or position > (stored, state.get(MESSAGE_ID_KEY, "")):
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = position[0]
            state[MESSAGE_ID_KEY] = position[1]

    # Private in singer-sdk 0.54.9 (Stream._process_record): it copies the partition context
    # into every record. The meter and selection keys are no columns of a sample (the meter is
    # `counter_name`), and sample streams have no children: there is nothing else for it to do.
    @override
    def _process_record(
        self,
        record: dict[str, Any],
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        return

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

    # Private in singer-sdk 0.54.9 (Stream._write_record_message), overridden for speed only:
    # the SDK's path walks the selection mask for every field of every record and runs the
    # identity map (bench/README.md, "the fast path": the tap alone is measured with and
    # without it). With anything to drop, map or flatten, the SDK's own path runs, and
    # tests/test_sdk_paths.py proves both give the same rows.
    @override
    def _write_record_message(self, record: dict[str, Any]) -> None:
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

    # The SDK invites this override ("to customize batching behavior"). Its own JSON-lines
    # batcher is slow and always gzips at level 9 (batch_files.py); the records are the same
    # ones the SDK would batch (its _sync_records, which moves the bookmarks), so a BATCH load
    # stays exact. Any other format (parquet) keeps the SDK's batcher.
    @override
    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        if batch_config.encoding.format != "jsonl":
            yield from super().get_batches(batch_config, context)
            return
        records = self._sync_records(context, write_messages=False)
        for manifest in write_batch_files(
            records, batch_config, tap_name=self.tap_name, stream_name=self.name
        ):
            yield batch_config.encoding, manifest


def _key(context: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(context.items()))
