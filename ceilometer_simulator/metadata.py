"""Resource metadata: flattening for responses and key/value expansion for metadata queries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def _keypairs(data: Mapping[str, Any], separator: str) -> Iterator[tuple[str, Any]]:
    # Sorted, like ceilometer.utils.recursive_keypairs, so equal dicts flatten equally.
    for name, value in sorted(data.items()):
        if isinstance(value, Mapping):
            for subname, subvalue in _keypairs(value, separator):
                yield f"{name}{separator}{subname}", subvalue
        else:
            yield name, value


def flatten_metadata(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    """Flatten nested metadata to a string->string map exactly as the v2 API prints it (spec 5).

    Keys are joined with ``.``, then every ``.`` becomes ``:`` and the first ``:`` becomes ``.``
    again; this is why a key that already holds a ``:`` has it turned into a ``.``. Values are
    ``str()``-ed (lists keep their Python repr); sets are dropped.
    """
    if not metadata:
        return {}
    return {
        key.replace(".", ":").replace(":", ".", 1): str(value)
        for key, value in _keypairs(metadata, ".")
        if type(value) is not set
    }


def posted_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Metadata POSTed to /v2/meters/<name>, as the API echoes it: keys as written (nested
    dicts joined with ``.``), values as text.

    Unlike ``flatten_metadata`` no ``.`` becomes ``:``, so ``restore_nesting`` gives back the
    nesting the real server stores: ``{"instance.flavor.ram": "512"}`` is found by the complex
    query ``metadata.instance.flavor.ram``.
    """
    return {key: str(value) for key, value in _keypairs(metadata, ".") if type(value) is not set}


def dict_to_keyval(value: Any, key_base: str | None = None) -> Iterator[tuple[str, Any]]:
    """Expand metadata to the dotted keys of Ceilometer's typed metadata side tables.

    Nested dicts use ``a.b`` and list items ``a[0]``; this is what ``metadata.<key>`` queries
    are matched against in the SQL driver.
    """
    items: Iterator[tuple[str, Any]]
    if isinstance(value, Mapping):
        items = ((f"{key_base}.{k}" if key_base else str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{key_base}[{i}]", v) for i, v in enumerate(value))
    else:
        return
    for key, item in items:
        if isinstance(item, Mapping | list | tuple):
            yield from dict_to_keyval(item, key)
        else:
            yield key, item


def restore_nesting(flat: Mapping[str, Any], separator: str = ".") -> dict[str, Any]:
    """Undo dotted flattening, as the API does with metadata POSTed to /v2/meters/<name>."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(separator)
        target = nested
        for part in parts[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = {}
                target[part] = child
            target = child
        target[parts[-1]] = value
    return nested
