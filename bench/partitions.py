"""Partition scaling (issue 14): samples/s of 1, 2 and 4 partitions of one export in parallel.

The simulator serves N samples of 12 meters, chosen so that each of 2 and each of 4
partitions owns the same number of meters (and so about the same number of samples). Each
partition gets its own simulator process on the same SQLite file: an API with as many workers
as partitions. For each count k, two measurements, each the wall time until the last process
ends:

* `tap`: the k taps alone, stdout to /dev/null;
* `pipeline`: k `tap | target-postgres` pipes into one fresh schema (its tables made first by
  `--test=schema | target`), checked: N rows;
* `pipeline_batch` (with `--batch`): the same with the SDK's BATCH messages (the tap writes
  jsonl.gz files, the target reads them).

The dimension streams are deselected (their cost is bench/dimensions.py's). The last line
printed is a JSON summary with the CPU count.

    .venv/bin/python bench/partitions.py [--samples 200000] [--counts 1,2,4] [--batch]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from baselines import checkpoint, count_rows, drop_schema  # noqa: E402
from dimensions import samples_only_catalog  # noqa: E402
from procs import BIN, CACHE, SimulatorProcess  # noqa: E402

from tests.support.targets import (  # noqa: E402
    psql_file_command,
    target_config,
    target_env,
    target_executable,
)

# Three meters in each of 4 partitions, six in each of 2 (Partition's hash, pinned by tests).
METERS = [
    "cpu",
    "disk.iops",
    "disk.write.requests",
    "bandwidth",
    "cpu.delta",
    "cpu_l3_cache",
    "disk.allocation",
    "disk.device.read.bytes",
    "disk.device.write.bytes",
    "compute.instance.booting.time",
    "cpu_util",
    "disk.write.bytes.rate",
]


def log(message: str) -> None:
    print(f"[{datetime.now(tz=UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


class Scaling:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = CACHE / f"partitions-{datetime.now(tz=UTC):%Y%m%dT%H%M%S}"
        self.work.mkdir(parents=True, exist_ok=True)
        self.target = str(target_executable("target-postgres"))
        self.target_env = {**os.environ, **target_env("target-postgres")}

    def taps(self, sims: list[SimulatorProcess], count: int, batch: Path | None) -> list[list[str]]:
        """One tap command per partition, each against its own simulator worker."""
        commands = []
        for index in range(count):
            settings: dict[str, Any] = {"partition": {"index": index, "count": count}}
            if batch is not None:
                root = batch / f"part-{index}"
                root.mkdir(parents=True, exist_ok=True)
                settings["batch_config"] = {
                    "encoding": {"format": "jsonl", "compression": "gzip"},
                    "storage": {"root": f"file://{root}", "prefix": "batch-"},
                }
            config = sims[index].write_tap_config(
                self.work / f"tap-{count}-{index}.json", **settings
            )
            catalog = samples_only_catalog(config)
            catalog = catalog.rename(self.work / f"catalog-{count}-{index}.json")
            commands.append(
                [str(BIN / "tap-ceilometer"), "--config", str(config), "--catalog", str(catalog)]
            )
        return commands

    def target_cmd(self, schema: str, settings: dict[str, Any] | None = None) -> list[str]:
        path = self.work / f"target-{schema}.json"
        config = {**target_config("target-postgres", schema), **(settings or {})}
        path.write_text(json.dumps(config), encoding="utf-8")
        return [self.target, "--config", str(path)]

    def tap_alone(self, commands: list[list[str]]) -> float:
        started = time.perf_counter()
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for cmd in commands
        ]
        codes = [p.wait() for p in procs]
        assert codes == [0] * len(codes), codes
        return time.perf_counter() - started

    def pipelines(
        self,
        commands: list[list[str]],
        schema: str,
        every_table: Path,
        *,
        env: dict[str, str] | None = None,
        settings: dict[str, Any] | None = None,
        prepare_sql: Path | None = None,
    ) -> tuple[float, int]:
        """k `tap | target` pipes at once into `schema`; `prepare_sql` runs once the tables
        exist, `env` is added to the targets' environment and `settings` to their config."""
        target = self.target_cmd(schema, settings)
        target_env = {**self.target_env, **(env or {})}
        # The tables first, as README "Scaling out" says: parallel targets race to create them.
        prep_tap = subprocess.Popen(
            [str(BIN / "tap-ceilometer"), "--config", str(every_table), "--test=schema"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        prep = subprocess.run(
            target, stdin=prep_tap.stdout, env=self.target_env, capture_output=True, check=False
        )
        assert prep_tap.wait() == 0
        assert prep.returncode == 0, prep.stderr[-2000:]
        if prepare_sql is not None:
            subprocess.run(psql_file_command(schema, prepare_sql), check=True, capture_output=True)
        checkpoint()
        started = time.perf_counter()
        pipes = []
        for cmd in commands:
            tap = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            tgt = subprocess.Popen(
                target,
                stdin=tap.stdout,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=target_env,
            )
            assert tap.stdout is not None
            tap.stdout.close()
            pipes.append((tap, tgt))
        codes = [(tap.wait(), tgt.wait()) for tap, tgt in pipes]
        wall = time.perf_counter() - started
        assert all(c == (0, 0) for c in codes), codes
        return wall, count_rows(schema)

    def measure(self, count: int) -> dict[str, Any]:
        n = self.args.samples
        sims = []
        try:
            for _ in range(count):  # the first loads (or reuses) the file; the others reuse it
                sims.append(  # noqa: PERF401 - started one by one, each stopped if a later fails
                    SimulatorProcess(n, METERS, self.args.seed, self.work).start()
                )
            out: dict[str, Any] = {"partitions": count}
            commands = self.taps(sims, count, None)
            log(f"{count} partition(s): taps alone")
            walls = [self.tap_alone(commands) for _ in range(self.args.repeat)]
            out["tap"] = {"wall_s": round(min(walls), 3), "samples_per_s": round(n / min(walls))}
            runs = [("pipeline", commands)]
            if self.args.batch:
                runs.append(("pipeline_batch", self.taps(sims, count, self.work / f"b{count}")))
            for label, cmds in runs:
                log(f"{count} partition(s): {label} into target-postgres")
                schema = f"bench_part_{label}_{count}_{os.getpid()}"
                try:
                    every_table = sims[0].write_tap_config(self.work / "tap-every-table.json")
                    wall, rows = self.pipelines(cmds, schema, every_table)
                finally:
                    drop_schema(schema)
                assert rows == n, f"{label}: {rows} rows, not {n}"
                out[label] = {"wall_s": round(wall, 3), "rows_per_s": round(n / wall)}
            return out
        finally:
            for sim in sims:
                sim.stop()


def summarise(args: argparse.Namespace, results: list[dict[str, Any]]) -> dict[str, Any]:
    one = results[0]
    return {
        "samples": args.samples,
        "cpus": os.cpu_count(),
        "results": results,
        "tap_speedup": {
            str(r["partitions"]): round(r["tap"]["samples_per_s"] / one["tap"]["samples_per_s"], 2)
            for r in results
        },
        "pipeline_speedup": {
            str(r["partitions"]): round(
                r["pipeline"]["rows_per_s"] / one["pipeline"]["rows_per_s"], 2
            )
            for r in results
        },
        "batch_over_record": {
            str(r["partitions"]): round(
                r["pipeline_batch"]["rows_per_s"] / r["pipeline"]["rows_per_s"], 2
            )
            for r in results
            if "pipeline_batch" in r
        },
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=200_000)
    p.add_argument("--counts", default="1,2,4")
    p.add_argument("--repeat", type=int, default=2, help="tap-alone runs per count (best kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", action="store_true", help="also load through BATCH messages")
    return p.parse_args(argv)


def partition_scaling(samples: int) -> dict[str, Any]:
    """For bench/run: 1, 2 and 4 partitions at `samples`, RECORD and BATCH."""
    args = parse(["--samples", str(samples), "--batch"])
    scaling = Scaling(args)
    return summarise(args, [scaling.measure(int(k)) for k in args.counts.split(",")])


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    scaling = Scaling(args)
    results = [scaling.measure(int(k)) for k in args.counts.split(",")]
    print(json.dumps(summarise(args, results), separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
