"""A large backfill into PostgreSQL (issue 14): today's pipeline against the backfill recipe.

Both load N samples of bench/run's four meters (those of its pipeline_rows_per_s; two in each
of 2 partitions) from the simulator (one process per partition) into target-postgres with
meltano.yml's settings, each into a fresh schema whose tables were made first (`--test=schema
| target`), timed to the last process's end:

* `record`: one `tap | target-postgres` pipe, RECORD lines (the default setup);
* `backfill`: the recipe of meltano.yml's `backfill` environment (its batch_config, its
  target-postgres settings and its env, read from meltano.yml):
  config/target-postgres-backfill.sql run once the tables exist, then `--partitions` pipes at
  once, each tap sending BATCH files.

The two schemas are then compared row for row on every sample column (EXCEPT both ways) and
must each hold N rows. Raw COPY of the same records into an indexed table (baselines.py) gives
the machine's load limit. The last line printed is the JSON summary.

    .venv/bin/python bench/backfill.py [--samples 1000000] [--partitions 2] [--meters a,b]
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

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from baselines import COLUMNS, PG_CONNINFO, drop_schema, run_baselines  # noqa: E402
from partitions import Scaling, log  # noqa: E402
from procs import BIN, DEFAULT_METERS, SimulatorProcess  # noqa: E402

from tests.support.targets import BACKFILL_SQL, backfill_environment  # noqa: E402

SAMPLE_COLUMNS = [name for name, _ in COLUMNS]


def sample_tables(schema: str) -> list[str]:
    """The tables of `schema` that hold samples (not the dimension tables)."""
    with psycopg.connect(PG_CONNINFO) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = %s"
            " AND column_name = 'counter_name' ORDER BY 1",
            (schema,),
        ).fetchall()
    return [name for (name,) in rows]


def differing_rows(left: str, right: str) -> int:
    """Rows of one schema's sample tables that the other lacks, both ways, over every column."""
    columns = sql.SQL(", ").join(map(sql.Identifier, SAMPLE_COLUMNS))
    differ = 0
    with psycopg.connect(PG_CONNINFO) as conn:
        for table in sorted(set(sample_tables(left)) | set(sample_tables(right))):
            for a, b in ((left, right), (right, left)):
                query = sql.SQL(
                    "SELECT count(*) FROM (SELECT {c} FROM {a} EXCEPT ALL SELECT {c} FROM {b}) d"
                ).format(c=columns, a=sql.Identifier(a, table), b=sql.Identifier(b, table))
                differ += int(conn.execute(query).fetchone()[0])  # type: ignore[index]
    return differ


class Backfill(Scaling):
    def batch_taps(self, sims: list[SimulatorProcess], count: int) -> list[list[str]]:
        batch_config, _, _ = backfill_environment()
        commands = self.taps(sims, count, None)
        for index, command in enumerate(commands):
            config_path = command[command.index("--config") + 1]
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
            root = self.work / f"batches-{index}"
            config["batch_config"] = {
                **batch_config,
                "storage": {**batch_config["storage"], "root": root.as_uri()},
            }
            with open(config_path, "w", encoding="utf-8") as f:
                json.dump(config, f)
        return commands

    def raw_copy(self, sim: SimulatorProcess) -> float:
        """Rows/s of raw COPY of the tap's records (recorded once, not timed)."""
        config = sim.write_tap_config(self.work / "tap-record.json")
        recorded = self.work / "records.jsonl"
        with recorded.open("wb") as out:
            subprocess.run(
                [
                    str(BIN / "tap-ceilometer"),
                    "--config",
                    str(config),
                    "--catalog",
                    str(self.taps([sim], 1, None)[0][-1]),
                ],
                stdout=out,
                stderr=subprocess.DEVNULL,
                check=True,
            )
        _, times = run_baselines(recorded, f"bench_backfill_copy_{os.getpid()}")
        recorded.unlink()
        return times.rows / times.copy_s

    def compare(self) -> dict[str, Any]:
        n, k = self.args.samples, self.args.partitions
        _, settings, env = backfill_environment()
        sims = [
            SimulatorProcess(n, self.args.meters.split(","), self.args.seed, self.work).start()
            for _ in range(k)
        ]
        record_schema = f"bench_backfill_record_{os.getpid()}"
        recipe_schema = f"bench_backfill_recipe_{os.getpid()}"
        try:
            every_table = sims[0].write_tap_config(self.work / "tap-every-table.json")
            log(f"record: one tap | target-postgres, {n} samples")
            record_wall, record_rows = self.pipelines(
                self.taps(sims, 1, None), record_schema, every_table
            )
            log(f"backfill: {k} partitions, BATCH files, the backfill SQL, {env}, {settings}")
            recipe_wall, recipe_rows = self.pipelines(
                self.batch_taps(sims, k),
                recipe_schema,
                every_table,
                env=env,
                settings=settings,
                prepare_sql=BACKFILL_SQL,
            )
            log(f"record: {record_wall:.1f} s; backfill: {recipe_wall:.1f} s")
            assert record_rows == n, f"record: {record_rows} rows, not {n}"
            assert recipe_rows == n, f"backfill: {recipe_rows} rows, not {n}"
            differ = differing_rows(record_schema, recipe_schema)
            assert differ == 0, f"{differ} rows differ between the two loads"
            log("raw COPY of the same records")
            copy_rate = self.raw_copy(sims[0])
        finally:
            for schema in (record_schema, recipe_schema):
                drop_schema(schema)
            for sim in sims:
                sim.stop()
        record_rate, recipe_rate = n / record_wall, n / recipe_wall
        return {
            "samples": n,
            "cpus": os.cpu_count(),
            "partitions": k,
            "record_rows_per_s": round(record_rate),
            "backfill_rows_per_s": round(recipe_rate),
            "backfill_over_record": round(recipe_rate / record_rate, 2),
            "copy_rows_per_s": round(copy_rate),
            "copy_over_record": round(copy_rate / record_rate, 2),
            "copy_over_backfill": round(copy_rate / recipe_rate, 2),
            "rows_differing": differ,
        }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--partitions", type=int, default=2)
    p.add_argument("--meters", default=DEFAULT_METERS, help="default: bench/run's four")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def backfill_figures(samples: int, meters: str) -> dict[str, Any]:
    """For bench/run: the comparison at `samples`, over bench/run's meters."""
    return Backfill(parse(["--samples", str(samples), "--meters", meters])).compare()


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    summary = Backfill(parse(argv)).compare()
    summary["date"] = f"{datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC"
    summary["bench_wall_s"] = round(time.perf_counter() - started)
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
