"""What every stream of the tap shares, whichever API it reads."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from singer_sdk import Stream
from typing_extensions import override

from tap_ceilometer.errors import EXPECTED_FAILURES, is_expected

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context


class QuietStream(Stream):
    """A stream whose expected failures are reported once, in the tap's one sentence."""

    @override
    def log(self, message: str, *args: Any, level: int = logging.INFO, **kwargs: Any) -> None:
        # singer-sdk logs every failure that ends a sync as an ERROR ("An unhandled error
        # occurred while syncing"), `--test`'s planned stop after one record included. A
        # failure the tap reports in one sentence (errors.py) needs no second line.
        if level >= logging.ERROR and is_expected(sys.exc_info()[1]):
            level = logging.DEBUG
        super().log(message, *args, level=level, **kwargs)


class DimensionStream(QuietStream):
    """A table read whole each run and upserted by its primary key (FULL_TABLE): entities
    that are gone upstream stay, so that old samples keep their names.

    `rows()` makes the requests when the stream syncs, never at discovery, so a deselected
    dimension costs nothing.
    """

    def __init__(
        self,
        tap: Tap,
        *,
        name: str,
        schema: dict[str, Any],
        primary_keys: Sequence[str],
        rows: Callable[[], Iterable[Mapping[str, Any]]],
    ) -> None:
        super().__init__(tap, name=name, schema=schema)
        self.primary_keys = primary_keys
        self.rows = rows

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        keys = tuple(self.schema["properties"])
        sent = 0
        try:
            for row in self.rows():
                yield {key: row.get(key) for key in keys}  # whitelisted: nothing unasked passes
                sent += 1
        except EXPECTED_FAILURES as exc:
            # The samples are what the run is for: a dimension the API cannot give now (a
            # refusal, an endpoint this host cannot reach, malformed data) keeps the rows the
            # table holds, and the next run reads it again.
            self.logger.warning(
                "The %s stream stopped after %d rows, the table keeps its other rows: %s",
                self.name,
                sent,
                exc,
            )
