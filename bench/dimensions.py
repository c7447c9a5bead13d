"""What the dimension streams cost the sample export (issue 12): the tap alone at N samples,
with every stream selected (the default) and with the dimension streams deselected in the
catalog, alternately, `--repeat` times each; the fastest wall time of each, and the requests
the simulator counted by route. The last line printed is a JSON summary.

    .venv/bin/python bench/dimensions.py [--samples 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from procs import BIN, CACHE, SimulatorProcess, run  # noqa: E402

from tap_ceilometer.keystone.streams import KEYSTONE_STREAMS  # noqa: E402
from tap_ceilometer.v2.dimensions import V2_DIMENSION_STREAMS  # noqa: E402

DIMENSION_STREAMS = (*V2_DIMENSION_STREAMS, *KEYSTONE_STREAMS)
METERS = "cpu_util,memory.usage,disk.read.bytes,network.incoming.bytes"


def samples_only_catalog(tap_cfg: Path) -> Path:
    """`--discover`, with the dimension streams' `selected` set to false (SDK metadata)."""
    found = subprocess.run(
        [str(BIN / "tap-ceilometer"), "--config", str(tap_cfg), "--discover"],
        capture_output=True,
        check=True,
    )
    catalog = json.loads(found.stdout)
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] in DIMENSION_STREAMS:
            for item in entry["metadata"]:
                if not item["breadcrumb"]:
                    item["metadata"]["selected"] = False
    path = tap_cfg.with_name("catalog-samples-only.json")
    path.write_text(json.dumps(catalog), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    work = CACHE / f"dimensions-{datetime.now(tz=UTC):%Y%m%dT%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    sim = SimulatorProcess(args.samples, METERS.split(","), args.seed, work).start()
    try:
        tap_cfg = sim.write_tap_config(work / "tap.json")
        tap = [str(BIN / "tap-ceilometer"), "--config", str(tap_cfg)]
        kinds = {
            "all_streams": tap,
            "samples_only": [*tap, "--catalog", str(samples_only_catalog(tap_cfg))],
        }
        walls: dict[str, list[float]] = {kind: [] for kind in kinds}
        counts: dict[str, dict[str, int]] = {}
        for i in range(args.repeat):
            for kind, cmd in kinds.items():
                sim.reset_requests()
                usage = run(cmd, log=work / f"{kind}-{i}.log")
                walls[kind].append(usage.wall)
                counts[kind] = sim.request_counts()
    finally:
        sim.stop()
    best = {kind: min(w) for kind, w in walls.items()}
    extra = {
        route: n - counts["samples_only"].get(route, 0)
        for route, n in counts["all_streams"].items()
        if n != counts["samples_only"].get(route, 0)
    }
    summary: dict[str, Any] = {
        "samples": args.samples,
        "wall_s": {kind: round(w, 3) for kind, w in best.items()},
        "walls_s": {kind: [round(x, 3) for x in w] for kind, w in walls.items()},
        "all_over_samples_only": round(best["all_streams"] / best["samples_only"], 3),
        "requests": {kind: sum(c.values()) for kind, c in counts.items()},
        "extra_requests_by_route": extra,
    }
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
