"""SQL-safe, collision-free stream (table) names for whatever names an API uses."""

from __future__ import annotations

import difflib
import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

# PostgreSQL truncates identifiers at 63 bytes, MySQL at 64, and thk-target-mysql loads
# through `<table>_temp`: 64 - 5.
STREAM_NAME_MAX_LENGTH = 59
_HASH_LENGTH = 8

_UNSAFE = re.compile(r"[^a-z0-9_]+")


def _sanitize(meter: str) -> str:
    name = _UNSAFE.sub("_", meter.lower()).strip("_") or "meter"
    if name[0].isdigit():
        name = f"m_{name}"
    return name


def _with_hash(base: str, meter: str) -> str:
    digest = hashlib.sha1(meter.encode(), usedforsecurity=False).hexdigest()[:_HASH_LENGTH]
    return f"{base[: STREAM_NAME_MAX_LENGTH - _HASH_LENGTH - 1]}_{digest}"


def with_close_matches(unknown: Iterable[str], known: Iterable[str]) -> str:
    """`'cpux' (did you mean cpu, vcpus?), 'x'`: names an API does not know, with hints."""
    choices = sorted(known)
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, choices, n=3)
        hints.append(f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    return ", ".join(hints)


def stream_names(meters: Iterable[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """Map each meter name to a distinct SQL-safe stream name.

    `disk.read.bytes` becomes `disk_read_bytes`. Targets choke on dots (target-postgres
    crashes on two or more), dashes (read as a schema separator) and mixed case (target-mysql
    lower-cases), so names keep only [a-z0-9_]. Where two meters would meet on one name, a
    meter that is already safe keeps it and the others take a hash of their exact name, so
    no two meters ever share a table. A name in `reserved` (another stream's) is hashed too.
    """
    unique = sorted(set(meters))
    by_base: dict[str, list[str]] = {}
    for meter in unique:
        base = _sanitize(meter)
        if len(base) > STREAM_NAME_MAX_LENGTH:
            base = _with_hash(base, meter)
        by_base.setdefault(base, []).append(meter)

    names: dict[str, str] = {}
    for base, group in by_base.items():
        for meter in group:
            keeps_base = meter == base or (len(group) == 1)
            names[meter] = base if keeps_base else _with_hash(base, meter)
    taken = set(reserved)
    for meter in unique:
        if names[meter] in taken:  # a hashed name met a real meter of the same spelling
            names[meter] = _with_hash(names[meter], meter)
        taken.add(names[meter])
    return names
