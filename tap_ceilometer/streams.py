"""What every stream of the tap shares, whichever API it reads."""

from __future__ import annotations

import logging
import sys
from typing import Any

from singer_sdk import Stream
from typing_extensions import override

from tap_ceilometer.errors import is_expected


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
