"""Turn Ceilometer's samples (either API shape) into checked Singer records.

A page whose every sample has the documented shape is decoded by type (`decode_sample_page`):
msgspec checks the JSON types in C, and a sample that needs no repair becomes its record in
one step, at about half the CPU of the checked path (bench/README.md, "Large backfills").
Every other page, and every sample of a typed page that is not plainly valid, takes the
checked path, which fails or repairs exactly as it always did.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

import msgspec

from tap_ceilometer.errors import MalformedApiDataError
from tap_ceilometer.timestamps import utc_text
from tap_ceilometer.v2.schema import MESSAGE_ID_MAX_LENGTH

if TYPE_CHECKING:
    import logging

COUNTER_TYPES = frozenset({"gauge", "delta", "cumulative"})

# GET /v2/samples and POST /v2/query/samples name the fields differently from
# GET /v2/meters/{name} (spec 1.2 and 1.3); records always use the OldSample names.
NEW_TO_OLD = {
    "id": "message_id",
    "meter": "counter_name",
    "type": "counter_type",
    "unit": "counter_unit",
    "volume": "counter_volume",
    "metadata": "resource_metadata",
}
_PLAIN = ("project_id", "resource_id", "source", "user_id")


class WireSample(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A sample as GET /v2/meters/{name} writes it (OldSample), decoded by type.

    Any field may be absent or null, as on the checked path; only a JSON type the API never
    writes or a key it does not have makes the page fall back (`decode_sample_page`).
    """

    counter_name: str | None = None
    counter_type: str | None = None
    counter_unit: str | None = None
    counter_volume: float | None = None
    message_id: str | None = None
    timestamp: str | None = None
    recorded_at: str | None = None
    resource_metadata: dict[str, str] | None = None
    project_id: str | None = None
    resource_id: str | None = None
    source: str | None = None
    user_id: str | None = None


# The new Sample shape: the same fields under NEW_TO_OLD's names (a subclass's `rename`
# applies only to the fields it declares, so each is declared again).
_NEW_WIRE_SAMPLE = msgspec.defstruct(
    "Sample",
    [(f.name, f.type, f.default) for f in msgspec.structs.fields(WireSample)],
    bases=(WireSample,),
    kw_only=True,
    rename={old: new for new, old in NEW_TO_OLD.items()},
)
_TYPED_PAGES = {
    False: msgspec.json.Decoder(list[WireSample]),
    True: msgspec.json.Decoder(list[_NEW_WIRE_SAMPLE]),  # type: ignore[valid-type]
}


def decode_sample_page(content: bytes, *, new_format: bool) -> Any:
    """A page of samples: a list of WireSamples when every sample has the API's shape, else
    plain JSON for RecordBuilder's checked path. Raises msgspec.DecodeError for what is not
    JSON, as `msgspec.json.decode` does."""
    try:
        return _TYPED_PAGES[new_format].decode(content)
    except msgspec.ValidationError:
        return msgspec.json.decode(content)


class RecordBuilder:
    """Checks each sample of one meter and shapes it as a record; counts what it repaired."""

    def __init__(self, meter: str, logger: logging.Logger) -> None:
        self.meter = meter
        self.logger = logger
        self.repairs: Counter[str] = Counter()

    def _fail(self, sample: Any, problem: str) -> MalformedApiDataError:
        ident = sample.get("message_id") or sample.get("id") if isinstance(sample, dict) else None
        where = f"sample {ident!r} of meter {self.meter!r}" if ident else f"meter {self.meter!r}"
        return MalformedApiDataError(
            f"Ceilometer sent malformed data for {where}: {problem}. Nothing of this page was "
            "exported and the bookmark did not move past it; fix the data or report it upstream."
        )

    def _time(self, sample: dict[str, Any], field: str, *, required: bool) -> str | None:
        value = sample.get(field)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise self._fail(sample, f"{field} is {value!r}, not a timestamp")
        try:
            return utc_text(value)
        except ValueError:
            raise self._fail(sample, f"{field} {value!r} does not parse as ISO 8601") from None

    def _repair(self, what: str) -> None:
        if not self.repairs[what]:
            self.logger.warning("Meter %s: %s (counted; logged once).", self.meter, what)
        self.repairs[what] += 1

    def build(self, sample: Any, *, new_format: bool) -> dict[str, Any]:
        if isinstance(sample, WireSample):
            plain = self._plainly_valid(sample)
            if plain is not None:
                return plain
            sample, new_format = msgspec.structs.asdict(sample), False
        if not isinstance(sample, dict):
            raise self._fail(sample, f"a list item is {type(sample).__name__}, not an object")
        if new_format:
            sample = {NEW_TO_OLD.get(key, key): value for key, value in sample.items()}
        message_id = sample.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise self._fail(sample, "it has no message_id")
        if len(message_id) > MESSAGE_ID_MAX_LENGTH:
            raise self._fail(sample, f"message_id is longer than {MESSAGE_ID_MAX_LENGTH}")
        if sample.get("counter_name") != self.meter:
            raise self._fail(sample, f"it belongs to meter {sample.get('counter_name')!r}")

        record: dict[str, Any] = {
            "counter_name": self.meter,
            "counter_type": self._text(sample, "counter_type"),
            "counter_unit": self._text(sample, "counter_unit"),
            "counter_volume": self._volume(sample),
            "message_id": message_id,
            "timestamp": self._time(sample, "timestamp", required=True),
            "recorded_at": self._time(sample, "recorded_at", required=False),
            "resource_metadata": self._metadata(sample),
        }
        for key in _PLAIN:
            record[key] = self._text(sample, key)
        if record["counter_type"] not in COUNTER_TYPES:
            self._repair(f"unknown counter_type {record['counter_type']!r} kept as is")
        return record

    def _plainly_valid(self, sample: WireSample) -> dict[str, Any] | None:
        """The record of a typed sample that no check fails and nothing needs repairing, built
        as `build` builds it; None for any other, which then takes the checked path."""
        message_id, volume, timestamp = sample.message_id, sample.counter_volume, sample.timestamp
        if (
            not message_id
            or len(message_id) > MESSAGE_ID_MAX_LENGTH
            or sample.counter_name != self.meter
            or sample.counter_type not in COUNTER_TYPES
            or volume is None
            or not math.isfinite(volume)
            or timestamp is None
        ):
            return None
        recorded_at = sample.recorded_at
        try:
            timestamp = utc_text(timestamp)
            recorded_at = None if recorded_at is None else utc_text(recorded_at)
        except ValueError:
            return None
        return {
            "counter_name": self.meter,
            "counter_type": sample.counter_type,
            "counter_unit": sample.counter_unit,
            "counter_volume": volume,
            "message_id": message_id,
            "timestamp": timestamp,
            "recorded_at": recorded_at,
            "resource_metadata": sample.resource_metadata,
            "project_id": sample.project_id,
            "resource_id": sample.resource_id,
            "source": sample.source,
            "user_id": sample.user_id,
        }

    def _text(self, sample: dict[str, Any], key: str) -> str | None:
        value = sample.get(key)
        if value is not None and not isinstance(value, str):
            self._repair(f"{key} values that are not strings were converted to strings")
            value = str(value)
        return value

    def _volume(self, sample: dict[str, Any]) -> float | None:
        volume = sample.get("counter_volume")
        if volume is None:
            self._repair("samples without a volume were kept with a null volume")
            return None
        if isinstance(volume, bool) or not isinstance(volume, int | float | str):
            raise self._fail(sample, f"counter_volume is {volume!r}, not a number")
        try:
            number = float(volume)
        except (ValueError, OverflowError):
            raise self._fail(sample, f"counter_volume {volume!r} is not a number") from None
        if not math.isfinite(number):
            # JSON has no NaN or infinity; null is what the SDK's writers made of them.
            self._repair("volumes that are not finite (NaN, infinity) were kept as null")
            return None
        return number

    def _metadata(self, sample: dict[str, Any]) -> dict[str, str] | None:
        metadata = sample.get("resource_metadata")
        if metadata is None:
            return None
        if not isinstance(metadata, dict):
            raise self._fail(sample, "resource_metadata is not an object")
        if all(isinstance(value, str) for value in metadata.values()):
            return metadata
        self._repair("metadata values that are not strings were converted as Ceilometer does")
        return {str(key): str(value) for key, value in metadata.items()}
