"""Archive policies, and which of a metric's aggregates can still change (gnocchi-api.md 4.4).

Times here are whole epoch seconds: Gnocchi renders every aggregate's period start truncated to
the second, so a granularity under one second cannot give distinct keys (T15) and is not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tap_ceilometer.errors import MalformedApiDataError

# str(datetime.timedelta): "0:05:00", "1 day, 0:00:00", "30 days, 0:00:00", "0:00:00.500000"
_TIMEDELTA = re.compile(
    r"^(?:(?P<days>-?\d+) days?, )?(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)$"
)


def parse_timespan(value: Any) -> float | None:
    """Seconds of a definition field: a number, or Gnocchi's str(timedelta); None stays None."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _TIMEDELTA.match(str(value)) if isinstance(value, str) else None
    if match is None:
        msg = f"Gnocchi sent an archive policy timespan {value!r} that is not a time span."
        raise MalformedApiDataError(msg)
    days = int(match["days"] or 0)
    return days * 86400 + int(match["h"]) * 3600 + int(match["m"]) * 60 + float(match["s"])


def floor_to(moment: int, granularity: int) -> int:
    """The start of the period of `granularity` seconds holding `moment` (aligned on the
    epoch, as Gnocchi aligns them)."""
    return moment - moment % granularity


@dataclass(frozen=True)
class Level:
    """One definition of an archive policy: a granularity and how long it is kept."""

    granularity: float
    timespan: float | None  # None: kept forever


@dataclass(frozen=True)
class ArchivePolicy:
    """What an archive policy keeps, and from it the line below which aggregates are final."""

    name: str
    back_window: int
    methods: frozenset[str]
    levels: tuple[Level, ...]

    @classmethod
    def from_api(cls, body: Any) -> ArchivePolicy:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            msg = f"Gnocchi sent an archive policy that is not an object with a name: {body!r}"
            raise MalformedApiDataError(msg)
        name = body["name"]
        try:
            levels = tuple(
                Level(
                    granularity=float(parse_timespan(item["granularity"]) or 0),
                    timespan=parse_timespan(item.get("timespan")),
                )
                for item in body.get("definition") or []
            )
            back_window = int(body.get("back_window") or 0)
            methods = frozenset(str(m) for m in body.get("aggregation_methods") or [])
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"Gnocchi sent archive policy {name!r} in a shape the tap cannot read ({exc})."
            raise MalformedApiDataError(msg) from None
        if not levels or any(level.granularity <= 0 for level in levels):
            msg = f"Gnocchi sent archive policy {name!r} without a valid definition."
            raise MalformedApiDataError(msg)
        return cls(name, back_window, methods, levels)

    @property
    def granularities(self) -> list[int]:
        """The whole-second granularities, finest first (see the module's docstring)."""
        return sorted(
            int(lv.granularity) for lv in self.levels if float(lv.granularity).is_integer()
        )

    def timespan(self, granularity: int) -> float | None:
        for level in self.levels:
            if level.granularity == granularity:
                return level.timespan
        return None

    @property
    def block(self) -> int:
        """B: the coarsest granularity, the size of the raw buffer's blocks (4.3)."""
        return int(max(level.granularity for level in self.levels))

    @property
    def blocks_back(self) -> int:
        """bw: back_window, plus one for a policy with a rate method (storage/__init__.py)."""
        rate = any(method.startswith("rate:") for method in self.methods)
        return self.back_window + (1 if rate else 0)

    def first_block(self, newest: int) -> int:
        """The first block timestamp, given (a lower bound of) the newest measure processed.

        Gnocchi drops a new measure older than this and recomputes from the period holding the
        oldest accepted one (4.3), so no aggregate of a period before it ever changes again.
        With a lower bound of `newest` the line is only ever earlier: safe.
        """
        return floor_to(newest, self.block) - self.blocks_back * self.block

    def final_until(self, newest: int, granularity: int) -> int:
        """Periods of `granularity` starting before this are final: a period that straddles
        the first block (granularities need not divide each other) still counts as open."""
        return floor_to(self.first_block(newest), granularity)

    def default_granularity(self) -> int | None:
        """The finest granularity kept for at least 7 days (all kept longer, the coarsest)."""
        grains = self.granularities
        for grain in grains:
            span = self.timespan(grain)
            if span is None or span >= 7 * 86400:
                return grain
        return grains[-1] if grains else None
