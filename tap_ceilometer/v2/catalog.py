"""Which meters to export, and the streams that read them: one per meter, or one for all."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import TYPE_CHECKING

from tap_ceilometer.errors import ConfigError
from tap_ceilometer.naming import stream_names, with_close_matches
from tap_ceilometer.settings import Partition
from tap_ceilometer.v2.dimensions import V2_DIMENSION_STREAMS, MeterPairs, v2_dimension_streams
from tap_ceilometer.v2.streams import Read, SampleStream

if TYPE_CHECKING:
    import threading
    from collections.abc import Sequence

    from singer_sdk import Stream, Tap

    from tap_ceilometer.settings import ReadSettings
    from tap_ceilometer.v2.client import CeilometerClient
    from tap_ceilometer.v2.query import Selection


# The stream (table) of `layout: single`, the original request's one table for all meters.
SINGLE_STREAM = "samples"


@dataclass(frozen=True)
class MeterCatalog:
    """The `meters` and `selections` settings, resolved against what Ceilometer lists."""

    client: CeilometerClient
    meters: Sequence[str] | None
    selections: Sequence[Selection]
    sees_every_project: bool
    partition: Partition = field(default_factory=Partition)

    @cached_property
    def pairs(self) -> MeterPairs:
        """The meter and resource pairs, read at most once per discovery: for the meter
        names of a non-admin, and for the dimension streams."""
        return MeterPairs(self.client)

    def meter_names(self) -> list[str]:
        """The meters to export: every visible one, or the named ones after checking them."""
        named = set(self.meters or [])
        for selection in self.selections:
            named.update(selection.meters or [])
        everything_wanted = not self.meters and (
            not self.selections or any(s.meters is None for s in self.selections)
        )
        available = self.client.meter_names(None if self.sees_every_project else self.pairs.entries)
        if everything_wanted:
            return available
        # A meter the list leaves out may still have samples this user sees (see meter_names).
        unknown = sorted(m for m in named - set(available) if not self.client.has_samples(m))
        if unknown:
            msg = (
                f"Ceilometer has no samples of meter {with_close_matches(unknown, available)}"
                " visible to this user. "
                "Check the names (GET /v2/meters) and that the user may see the project."
            )
            raise ConfigError(msg)
        return sorted(named)

    def selections_for(self, meter: str) -> list[Selection]:
        """The selections that apply to `meter`: those naming it, and those naming none."""
        return [
            s
            for s in self.selections
            if (s.meters is not None and meter in s.meters)
            or (s.meters is None and (self.meters is None or meter in self.meters))
        ]

    def partition_meters(self, meters: list[str]) -> list[str]:
        """The meters to export in this run: all of `meters`, or this partition's share."""
        if self.partition.count == 1:
            return meters
        mine = [meter for meter in meters if self.partition.owns(meter)]
        self.client.log.info(
            "Partition %d of %d: %d of the %d meters.",
            self.partition.index,
            self.partition.count,
            len(mine),
            len(meters),
        )
        return mine

    def streams(
        self,
        tap: Tap,
        *,
        read: ReadSettings,
        stop: threading.Event,
        layout: str = "per_meter",
        reserved: Sequence[str] = (),
    ) -> list[Stream]:
        """`per_meter`: one stream per meter, named for SQL (naming.py), with its selections.
        `single`: one stream `samples` for every meter, bookmarks still per meter. Then the
        dimension streams (resources, meters), in the first partition only: every partition
        would send the same rows. `reserved`: the names of the tap's other streams."""
        every_meter = self.meter_names()
        meters = self.partition_meters(every_meter)
        reads: dict[str, list[Read]] = {}
        for meter in meters:
            selections = self.selections_for(meter)
            if self.selections and not selections:
                msg = f"Meter {meter!r} is in 'meters' but no selection applies to it."
                raise ConfigError(msg)
            reads[meter] = [Read(meter, s) for s in selections] or [Read(meter)]
        stream = partial(SampleStream, tap, client=self.client, read=read, stop=stop)
        reserved = (*V2_DIMENSION_STREAMS, *reserved)
        if layout == "single":
            tables = dict.fromkeys(every_meter, SINGLE_STREAM)
            every = [r for meter in meters for r in reads[meter]]
            streams: list[Stream] = [stream(name=SINGLE_STREAM, reads=every, by_meter=True)]
        else:
            # Named over the whole export, so that every partition names a meter alike.
            tables = stream_names(every_meter, reserved=reserved)
            streams = [stream(name=tables[meter], reads=reads[meter]) for meter in meters]
        if self.partition.index == 0:
            streams += v2_dimension_streams(tap, self.client, self.pairs, tables)
        else:
            self.client.log.info(
                "Partition %d: the dimension streams are exported by partition 0.",
                self.partition.index,
            )
        return streams
