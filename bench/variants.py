"""target-postgres fed the same recorded tap output with different settings.

Which of the stock target's settings bring it closest to raw COPY: its defaults (INSERT,
every record validated), COPY alone, validation off alone, both (meltano.yml), and
batch_size_rows around meltano.yml's value. Every variant loads into a fresh schema,
dropped afterwards.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from baselines import count_rows, drop_schema
from procs import run

from tests.support.targets import target_config

if TYPE_CHECKING:
    from pathlib import Path

# (label, settings over meltano.yml's). The SDK's defaults are use_copy false (INSERT),
# validate_records true and batch_size_rows 10000.
VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("SDK defaults: INSERT, validation on", {"use_copy": False, "validate_records": True}),
    ("use_copy only", {"use_copy": True, "validate_records": True}),
    ("validate_records false only", {"use_copy": False, "validate_records": False}),
    ("meltano.yml: COPY, no validation, 10000/batch", {}),
    ("COPY, no validation, 1000/batch", {"batch_size_rows": 1000}),
    ("COPY, no validation, 50000/batch", {"batch_size_rows": 50000}),
    ("COPY, no validation, 100000/batch", {"batch_size_rows": 100000}),
)


def run_variants(
    recorded: Path,
    *,
    rows_expected: int,
    target: str,
    env: dict[str, str],
    work: Path,
    schema_prefix: str,
) -> list[dict[str, Any]]:
    """Load `recorded` once per variant; wall, CPU, RSS and rows/s of each."""
    results = []
    for i, (label, overrides) in enumerate(VARIANTS):
        schema = f"{schema_prefix}_v{i}"
        config = {**target_config("target-postgres", schema), **overrides}
        path = work / f"target-variant-{i}.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        try:
            with recorded.open("rb") as f:
                usage = run(
                    [target, "--config", str(path)],
                    stdin=f,
                    log=work / f"target-variant-{i}.log",
                    env=env,
                )
            rows = count_rows(schema)
        finally:
            drop_schema(schema)
        if rows != rows_expected:
            msg = f"variant {label!r} loaded {rows} rows, not {rows_expected}"
            raise RuntimeError(msg)
        results.append(
            {
                "label": label,
                "settings": {
                    k: config.get(k) for k in ("use_copy", "validate_records", "batch_size_rows")
                },
                **usage.as_json(),
                "rows": rows,
                "rows_per_s": round(rows / usage.wall),
            }
        )
    return results
