"""Partition scaling against the real Ceilometer 9.0.7 (issue 14): 1, 2 and 4 partitions, each
reading its own API worker.

The conformance tier's stack (tests/conformance/stack.py: the real Keystone 30 and Ceilometer
9.0.7 on PostgreSQL) is started, N samples of bench/partitions.py's 12 meters are stored
through Ceilometer's own storage path, and more API processes are started on the same
database: an API with one worker per partition. For each count k, the k taps (Keystone password
auth, `endpoint_override` = their worker, dimension streams deselected) run at once with
stdout to /dev/null; the wall time until the last one ends gives samples/s. The last line
printed is a JSON summary with the CPU count.

    .venv/bin/python bench/ceilometer_partitions.py [--samples 50000] [--counts 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dimensions import samples_only_catalog  # noqa: E402
from partitions import METERS  # noqa: E402
from procs import BIN, CACHE  # noqa: E402

from tests.conformance.stack import RealStack, free_port, venv_python  # noqa: E402

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def log(message: str) -> None:
    print(f"[{datetime.now(tz=UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def samples(n: int) -> Any:
    for i in range(n):
        meter = METERS[i % len(METERS)]
        yield {
            "counter_name": meter,
            "counter_type": "gauge",
            "counter_unit": "B",
            "counter_volume": i * 0.5,
            "message_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{i}")),
            "project_id": f"project-{i % 7}",
            "user_id": f"user-{i % 3}",
            "resource_id": f"res-{i % 50}",
            "source": "openstack",
            "timestamp": T0 + timedelta(seconds=i // len(METERS)),
            "resource_metadata": {"display_name": f"vm-{i % 50}", "flavor": {"name": "m1"}},
        }


def start_worker(stack: RealStack, name: str) -> str:
    """One more Ceilometer API process on the stack's database; its URL."""
    port = free_port()
    # The stack's own launcher, for one more worker of the same API.
    stack._spawn(
        name=name,
        python=venv_python("ceilometer"),
        script="ceilometer_api.py",
        args=[
            *("--port", str(port)),
            *("--workdir", str(stack.workdir / name)),
            *("--keystone-url", stack.keystone_url),
            *("--db-url", f"postgresql+psycopg2://postgres@127.0.0.1:5432/{stack.db_name}"),
        ],
        log=stack.workdir / f"{name}.log",
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/", timeout=2)
        except requests.RequestException:
            time.sleep(0.2)
            continue
        return url
    msg = f"the API worker {name} did not answer; see {stack.workdir / name}.log"
    raise RuntimeError(msg)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=50_000)
    p.add_argument("--counts", default="1,2,4")
    args = p.parse_args(argv)
    counts = [int(k) for k in args.counts.split(",")]
    work = CACHE / f"ceilometer-partitions-{datetime.now(tz=UTC):%Y%m%dT%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    results = []
    with RealStack() as stack:
        stack.reset_storage()
        started = time.perf_counter()
        assert stack.seed(samples(args.samples)) == args.samples
        log(f"{args.samples} samples stored in {time.perf_counter() - started:.0f} s")
        workers = [stack.ceilometer_url]
        while len(workers) < max(counts):
            workers.append(start_worker(stack, f"ceilometer-{len(workers)}"))
        for count in counts:
            commands = []
            for index in range(count):
                config = work / f"tap-{count}-{index}.json"
                config.write_text(
                    json.dumps(
                        {
                            "auth_url": stack.auth_url,
                            "username": stack.admin.username,
                            "password": stack.admin.password,
                            "project_name": stack.admin.project_name,
                            "endpoint_override": workers[index],
                            "start_date": "2000-01-01T00:00:00Z",
                            "partition": {"index": index, "count": count},
                        }
                    ),
                    encoding="utf-8",
                )
                catalog = samples_only_catalog(config).rename(work / f"cat-{count}-{index}.json")
                commands.append(
                    [
                        str(BIN / "tap-ceilometer"),
                        "--config",
                        str(config),
                        "--catalog",
                        str(catalog),
                    ]
                )
            log(f"{count} partition(s), {count} API worker(s)")
            began = time.perf_counter()
            procs = [
                subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for c in commands
            ]
            codes = [proc.wait() for proc in procs]
            wall = time.perf_counter() - began
            assert codes == [0] * count, codes
            results.append(
                {
                    "partitions": count,
                    "wall_s": round(wall, 2),
                    "samples_per_s": round(args.samples / wall),
                }
            )
    one = results[0]["samples_per_s"]
    summary = {
        "samples": args.samples,
        "cpus": os.cpu_count(),
        "results": results,
        "speedup": {str(r["partitions"]): round(r["samples_per_s"] / one, 2) for r in results},
    }
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
