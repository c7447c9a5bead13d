"""Import-time bridges that let Ceilometer 9.0.7 (2019) run on Python 3.11 and today's libraries.

Nothing installed is edited: each bridge adjusts a module object in memory, before or just after
Ceilometer imports it. Import this module before anything from ``ceilometer``.

1. ``oslo_utils.fnmatch`` is gone from oslo.utils; it was a thread-safe copy of the standard
   ``fnmatch``, which serves the same calls.
2. ``inspect.getargspec`` was removed in Python 3.11; Ceilometer uses it to list the argument names
   of storage filters and models (``getargspec(f)[0]``), which ``getfullargspec`` gives too.
3. ``ceilometer.utils.lowercase_keys`` deletes and re-adds keys of the dict it is iterating over,
   which Python 3 refuses ("dictionary keys changed during iteration"), so every complex query with
   a filter (``POST /v2/query/samples``) fails with 500. ``lowercase_values`` iterates a live view
   too. Both are replaced by versions that iterate over a snapshot, with the same results.
"""

# Imports are deferred on purpose: these launchers run in the servers' own virtualenvs, where
# the compat bridges must be in place before Ceilometer loads and oslo.config must not see
# our arguments.
# ruff: noqa: PLC0415

from __future__ import annotations

import collections
import fnmatch
import inspect
import sys
from typing import Any

_ArgSpec = collections.namedtuple("_ArgSpec", ["args", "varargs", "keywords", "defaults"])


def _getargspec(func: Any) -> _ArgSpec:
    spec = inspect.getfullargspec(func)
    return _ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


def _lowercase_keys(mapping: dict[str, Any]) -> None:
    for key, value in list(mapping.items()):
        del mapping[key]
        mapping[key.lower()] = value


def _lowercase_values(mapping: dict[str, Any]) -> None:
    for key, value in list(mapping.items()):
        mapping[key] = value.lower()


def apply() -> None:
    """Install the three bridges; safe to call more than once."""
    import oslo_utils

    if "oslo_utils.fnmatch" not in sys.modules:
        sys.modules["oslo_utils.fnmatch"] = fnmatch
        oslo_utils.fnmatch = fnmatch  # type: ignore[attr-defined]
    if not hasattr(inspect, "getargspec"):
        inspect.getargspec = _getargspec  # type: ignore[attr-defined]

    from ceilometer import utils as ceilometer_utils

    ceilometer_utils.lowercase_keys = _lowercase_keys
    ceilometer_utils.lowercase_values = _lowercase_values


apply()
