"""Read every sample of a meter exactly once, oldest first, from an API without pagination.

Ceilometer v2 caps every list (100 rows unless told otherwise), answers newest first, has
no cursor and no order among equal timestamps (spec 3, 4, 8). Two ways around that:

* keyset pages over POST /v2/query/samples, ordered by (timestamp, message_id) ascending,
  each page asking for what comes after the last sample of the one before; exact however
  many samples share a timestamp, one request per page;
* for servers without complex queries (HBase), time windows over the simple query that
  shrink while a window comes back full, and a limit that grows for a tie too large for
  one page.

Both yield pages in ascending (timestamp, message_id) order, so the bookmark can advance
after every page and an interrupted run resumes where the target last confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol

from tap_ceilometer.errors import AnswerTooSlowError, ApiError, MalformedApiDataError
from tap_ceilometer.timestamps import naive_utc, parse_api_time, utc_iso

if TYPE_CHECKING:
    from collections.abc import Callable, Generator
    from concurrent.futures import Future

    from tap_ceilometer.v2.query import Selection

    Record = dict[str, Any]
    ComplexFetch = Callable[[dict[str, Any], int], list[Any]]
    SimpleFetch = Callable[[list[tuple[str, str]], int], list[Any]]
    Build = Callable[[Any], Record]
    Submit = Callable[[ComplexFetch, dict[str, Any], int], Future[list[Any]]]

ORDER_BY = [{"timestamp": "asc"}, {"message_id": "asc"}]
ONE_MICROSECOND = timedelta(microseconds=1)
FIRST_WINDOW = timedelta(hours=1)
# Pages are halved while the server fails on them (timeouts, 5xx, cut bodies), down to this.
SMALLEST_PAGE = 10


def _smaller(page_size: int, error: AnswerTooSlowError) -> int:
    if page_size <= SMALLEST_PAGE:
        msg = f"Ceilometer kept failing, even on pages of {page_size} samples: {error.cause}"
        raise ApiError(msg) from None
    return max(SMALLEST_PAGE, page_size // 2)


@dataclass(frozen=True)
class Cursor:
    """The position after which to read: an empty message_id means 'from this instant on'."""

    timestamp: str  # timestamps.utc_iso form
    message_id: str = ""

    @classmethod
    def at(cls, moment: datetime) -> Cursor:
        return cls(utc_iso(moment))

    @property
    def moment(self) -> datetime:
        return parse_api_time(self.timestamp)

    def is_before(self, record: Record) -> bool:
        return (record["timestamp"], record["message_id"]) > (self.timestamp, self.message_id)


def _after(cursor: Cursor) -> dict[str, Any]:
    instant = naive_utc(cursor.moment)
    if not cursor.message_id:
        return {">=": {"timestamp": instant}}
    return {
        "or": [
            {">": {"timestamp": instant}},
            {"and": [{"=": {"timestamp": instant}}, {">": {"message_id": cursor.message_id}}]},
        ]
    }


def keyset_filter(
    meter: str, selection: Selection | None, cursor: Cursor, end: datetime
) -> dict[str, Any]:
    """The complex-query filter for the page that follows `cursor`, below `end`."""
    conditions = [{"=": {"counter_name": meter}}]
    if selection is not None:
        conditions += [c.as_complex_filter() for c in selection.conditions]
    conditions += [_after(cursor), {"<": {"timestamp": naive_utc(end)}}]
    return {"and": conditions}


class Answer(Protocol):
    """A page on its way: a Future when read ahead, a deferred call otherwise."""

    def result(self) -> list[Any]: ...

    def cancel(self) -> bool: ...


@dataclass(frozen=True)
class _Later:
    """The request made only when its answer is wanted, as without read-ahead."""

    fetch: ComplexFetch
    filter_: dict[str, Any]
    limit: int

    def result(self) -> list[Any]:
        return self.fetch(self.filter_, self.limit)

    def cancel(self) -> bool:
        return True


def keyset_pages(
    fetch: ComplexFetch,
    build: Build,
    *,
    meter: str,
    selection: Selection | None,
    start: Cursor,
    end: datetime,
    page_size: int,
    submit: Submit | None = None,
) -> Generator[list[Record], None, None]:
    """Pages of records after `start` and before `end`, by keyset over the complex query.

    With `submit` (an executor's), the request for the next page is sent as soon as this
    page's answer is in, so the server works while the caller builds and writes: at most
    this page's records and the next page's answer are held. Without it, each request waits
    for the page before it to be consumed.
    """

    def ask(cursor: Cursor, limit: int) -> Answer:
        filter_ = keyset_filter(meter, selection, cursor, end)
        if submit is None:
            return _Later(fetch, filter_, limit)
        return submit(fetch, filter_, limit)

    cursor = start
    # message_ids already read at the cursor's instant: a server that ignored the keyset
    # would hand them out again, and the loop must stop instead of running forever.
    tie = {start.message_id} if start.message_id else set()
    pending = ask(cursor, page_size) if cursor.moment < end else None
    try:
        while pending is not None:
            try:
                raw = pending.result()
            except AnswerTooSlowError as error:
                page_size = _smaller(page_size, error)
                pending = ask(cursor, page_size)
                continue
            full = len(raw) >= page_size
            early = submit is not None and full
            if early:
                # Ask for the next page before building this one, so that the server and
                # the reader work while this thread builds and writes: the next cursor is
                # the last sample's position, which the order checks below confirm.
                last = build(raw[-1])
                ahead = Cursor(last["timestamp"], last["message_id"])
                pending = ask(ahead, page_size) if ahead.moment < end else None
                page = [build(sample) for sample in islice(raw, len(raw) - 1)]
                page.append(last)
            else:
                pending = None
                page = [build(sample) for sample in raw]
            for record in page:
                timestamp, message_id = record["timestamp"], record["message_id"]
                if timestamp != cursor.timestamp:
                    tie = set()
                if timestamp < cursor.timestamp or message_id in tie:
                    msg = (
                        f"POST /v2/query/samples for meter {meter!r} returned sample "
                        f"{message_id!r} out of the requested order; the server does not "
                        "honour orderby or the filter. Set query_method to 'simple'."
                    )
                    raise MalformedApiDataError(msg)
                tie.add(message_id)
                # The server's own collation orders message_ids; only time order is checked.
                cursor = Cursor(timestamp, message_id)
            del raw  # the decoded answer is not needed once its records are built
            if not early and full and cursor.moment < end:
                pending = ask(cursor, page_size)
            if page:
                yield page
            del page
    finally:
        if pending is not None:
            pending.cancel()


def _simple_params(selection: Selection | None, low: datetime, high: datetime) -> list[Any]:
    params: list[tuple[str, str]] = []
    for condition in selection.conditions if selection is not None else ():
        params += condition.as_simple_params()
    params += [
        ("q.field", "timestamp"),
        ("q.op", "ge"),
        ("q.type", ""),
        ("q.value", naive_utc(low)),
        ("q.field", "timestamp"),
        ("q.op", "lt"),
        ("q.type", ""),
        ("q.value", naive_utc(high)),
    ]
    return params


def window_pages(
    fetch: SimpleFetch,
    build: Build,
    *,
    selection: Selection | None,
    start: Cursor,
    end: datetime,
    page_size: int,
    first_window: timedelta = FIRST_WINDOW,
) -> Generator[list[Record], None, None]:
    """Pages of records after `start` and before `end`, by adaptive windows [low, high)."""
    cursor = start
    low = start.moment
    span = first_window
    while low < end:
        high = min(low + span, end)
        limit = page_size
        try:
            raw = fetch(_simple_params(selection, low, high), limit)
        except AnswerTooSlowError as error:
            page_size = _smaller(page_size, error)
            span = max(ONE_MICROSECOND, (high - low) / 2)
            continue
        if len(raw) >= limit and high - low > ONE_MICROSECOND:
            # Full: the answer may be truncated (the newest `limit` only). Narrow and ask again.
            span = max(ONE_MICROSECOND, (high - low) / 2)
            continue
        while len(raw) >= limit:
            # One instant holds more samples than a page: only a larger limit can get them all.
            limit *= 4
            raw = fetch(_simple_params(selection, low, high), limit)
        page = sorted(
            (build(sample) for sample in raw), key=lambda r: (r["timestamp"], r["message_id"])
        )
        fresh = [record for record in page if cursor.is_before(record)]
        for record in fresh:
            if not low <= parse_api_time(record["timestamp"]) < high:
                msg = (
                    f"GET /v2/meters returned sample {record['message_id']!r} at "
                    f"{record['timestamp']}, outside the requested window; the server does not "
                    "honour timestamp bounds."
                )
                raise MalformedApiDataError(msg)
        if fresh:
            yield fresh
            cursor = Cursor(fresh[-1]["timestamp"], fresh[-1]["message_id"])
        low = high
        if len(raw) * 2 < page_size:
            span *= 2
