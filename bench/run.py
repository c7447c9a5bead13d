"""The tap-ceilometer benchmark (issue 6): one command, figures for every size, a JSON last line.

For each size N the simulator (its own process, SQLite file cached in bench/.cache/) holds N
samples over a few meters, and the benchmark measures, one process at a time:

1. the tap alone, stdout to /dev/null: wall time, CPU seconds and peak RSS (wait4), HTTP
   requests (the simulator's /_sim/stats);
2. the tap again, its output recorded to a file (checked: N records, no message_id twice);
3. target-postgres fed that file (the target's own ceiling), meltano.yml's settings;
4. tap | target-postgres;
5. baseline (a), a naive exporter (bench/naive_export.py);
6. baselines (b) raw psycopg COPY and (c) json.dumps of the same records (bench/baselines.py);
7. at one size (--variants-size), target-postgres < file again with other settings
   (bench/variants.py): which bring it closest to raw COPY.

Each load goes into a fresh PostgreSQL schema, dropped afterwards. Results are written to
bench/results/latest.{json,md}; the last line printed is the JSON summary.

    bench/run [--sizes 10000,100000,1000000] [--quick] [--meters a,b] [--page-size 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backfill import backfill_figures  # noqa: E402
from baselines import count_rows, drop_schema, run_baselines, server_version  # noqa: E402
from dimensions import samples_only_catalog  # noqa: E402
from partitions import partition_scaling  # noqa: E402
from procs import (  # noqa: E402
    BIN,
    CACHE,
    DEFAULT_METERS,
    SimulatorProcess,
    Usage,
    check,
    measured,
    reap,
    run,
)
from variants import VARIANTS, run_variants  # noqa: E402

from tap_ceilometer.naming import stream_names  # noqa: E402
from tests.support.targets import target_config, target_env, target_executable  # noqa: E402

DEFAULT_SIZES = "10000,100000,1000000"
QUICK_SIZES = "10000,50000"
# Requests that are not sample pages: Keystone version document, token, GET /v2/meters
# (stream discovery) and GET /v2/capabilities (complex query or not).
DISCOVERY_ALLOWANCE = 4
RESULTS = REPO / "bench" / "results"

GOAL_TAP_OVER_TARGET = 4.0
GOAL_PIPELINE_OVER_FILE = 1.10
GOAL_RSS_GROWTH = 1.5
GOAL_TIME_LINEARITY = 1.10


def log(msg: str) -> None:
    print(f"[{datetime.now(tz=UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as f:
        mem_kb = int(f.readline().split()[1])
    target_py = target_executable("target-postgres").parent / "python"
    target_version = subprocess.run(
        [str(target_py), "-c", "import importlib.metadata as m; print(m.version('singer-sdk'))"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "date": datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": server_version(),
        "singer_sdk_tap": metadata.version("singer-sdk"),
        "singer_sdk_target": target_version,
        "load_avg_at_start": os.getloadavg(),
    }


def sample_requests(counts: dict[str, int]) -> int:
    return sum(
        n
        for route, n in counts.items()
        if route == "POST /v2/query/samples" or route.startswith("GET /v2/meters/")
    )


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.meters = [m for m in args.meters.split(",") if m]
        stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S")
        self.run_dir = CACHE / f"run-{stamp}"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.target = str(target_executable("target-postgres"))
        self.target_env = target_env("target-postgres")

    def schema(self, what: str, n: int) -> str:
        return f"bench_{what}_{n}_{os.getpid()}"

    def target_cmd(self, schema: str) -> list[str]:
        path = self.run_dir / f"target-{schema}.json"
        path.write_text(json.dumps(target_config("target-postgres", schema)), encoding="utf-8")
        return [self.target, "--config", str(path)]

    def measure(self, n: int) -> dict[str, Any]:
        out: dict[str, Any] = {"samples": n}
        sim = SimulatorProcess(n, self.meters, self.args.seed, self.run_dir)
        log(f"N={n}: simulator {'reusing' if sim.db.exists() else 'loading'} {sim.db.name}")
        sim.start()
        out["simulator"] = {"startup_s": round(sim.load_seconds, 1), "reused_db": sim.reused}
        recorded = self.run_dir / f"tap-output-{n}.jsonl"
        try:
            tap_cfg = sim.write_tap_config(
                self.run_dir / f"tap-{n}.json", page_size=self.args.page_size
            )
            # The sample streams: what the figures have always measured; the dimension
            # streams' cost is bench/dimensions.py's.
            catalog = samples_only_catalog(tap_cfg)
            tap_cmd = [
                str(BIN / "tap-ceilometer"),
                "--config",
                str(tap_cfg),
                "--catalog",
                str(catalog),
            ]

            runs, all_counts = [], []
            for i in range(self.args.repeat):
                log(f"N={n}: tap > /dev/null ({i + 1}/{self.args.repeat})")
                sim.reset_requests()
                runs.append(run(tap_cmd, log=self.run_dir / f"tap-{n}-{i}.log"))
                all_counts.append(sim.request_counts())
            counts = max(all_counts, key=lambda c: sum(c.values()))  # the run that asked most
            # The fastest run's time; the largest peak RSS of all runs (the memory goal
            # is about the worst case).
            tap = min(runs, key=lambda u: u.wall)
            out["tap"] = {
                **tap.as_json(),
                "rss_mb": round(max(u.rss_mb for u in runs), 1),
                "samples_per_s": round(n / tap.wall),
                "cpu_us_per_sample": round(tap.cpu / n * 1e6, 1),
                "walls_s": [round(u.wall, 2) for u in runs],
                "rss_mbs": [round(u.rss_mb, 1) for u in runs],
            }
            bound = math.ceil(n / self.args.page_size) + len(self.meters) + DISCOVERY_ALLOWANCE
            out["requests"] = {
                "total": sum(counts.values()),
                "sample_pages": sample_requests(counts),
                "bound": bound,
                "by_route": counts,
            }

            if n == self.args.variants_size:
                out["tap_sdk_record_path"] = self.sdk_record_path(tap_cfg, catalog, n, tap.wall)

            log(f"N={n}: tap > file (recording)")
            sim.reset_requests()
            with recorded.open("wb") as f:
                rec = run(tap_cmd, stdout=f, log=self.run_dir / f"tap-{n}-record.log")
            out["tap_recording"] = rec.as_json()
            out["requests"]["recording_total"] = sum(sim.request_counts().values())

            log(f"N={n}: target-postgres < file")
            schema = self.schema("file", n)
            try:
                with recorded.open("rb") as f:
                    tgt = run(
                        self.target_cmd(schema),
                        stdin=f,
                        log=self.run_dir / f"target-file-{n}.log",
                        env=self.target_env,
                    )
                rows = count_rows(schema)
            finally:
                drop_schema(schema)
            out["target_file"] = {
                **tgt.as_json(),
                "rows": rows,
                "rows_per_s": round(rows / tgt.wall),
            }

            log(f"N={n}: tap | target-postgres")
            sim.reset_requests()
            schema = self.schema("pipe", n)
            try:
                tap_u, tgt_u, wall = self.pipeline(tap_cmd, self.target_cmd(schema), n)
                rows = count_rows(schema)
            finally:
                drop_schema(schema)
            out["pipeline"] = {
                "wall_s": round(wall, 3),
                "rows": rows,
                "rows_per_s": round(rows / wall),
                "tap": tap_u.as_json(),
                "target": tgt_u.as_json(),
                "over_target_file": round(wall / tgt.wall, 3),
            }

            if n <= self.args.naive_max:
                log(f"N={n}: naive exporter")
                schema = self.schema("naive", n)
                try:
                    naive = run(
                        [
                            str(BIN / "python"),
                            str(REPO / "bench" / "naive_export.py"),
                            "--auth-url",
                            sim.auth_url,
                            "--schema",
                            schema,
                            "--meters",
                            ",".join(self.meters),
                        ],
                        log=self.run_dir / f"naive-{n}.log",
                    )
                    rows = count_rows(schema)
                finally:
                    drop_schema(schema)
                out["naive"] = {
                    **naive.as_json(),
                    "rows": rows,
                    "rows_per_s": round(rows / naive.wall),
                }
        finally:
            sim.stop()

        log(f"N={n}: raw COPY and JSON encode of the recorded records")
        checked, times = run_baselines(recorded, self.schema("copy", n))
        out["output"] = {
            "records": checked.records,
            "duplicates": checked.duplicates,
            "per_stream": checked.per_stream,
            "bytes_per_record": round(checked.bytes / max(1, checked.records)),
        }
        out["copy"] = {
            "wall_s": round(times.copy_s, 3),
            "rows": times.rows,
            "rows_per_s": round(times.rows / times.copy_s),
        }
        out["json"] = {
            "json_dumps_s": round(times.json_dumps_s, 3),
            "json_dumps_per_s": round(checked.records / times.json_dumps_s),
            "msgspec_encode_s": round(times.msgspec_encode_s, 3),
            "msgspec_encode_per_s": round(checked.records / times.msgspec_encode_s),
        }
        out["tap_over_target_file"] = round(
            n / out["tap"]["wall_s"] / out["target_file"]["rows_per_s"], 2
        )
        if n == self.args.variants_size:
            log(f"N={n}: target-postgres < file, {len(VARIANTS)} settings variants")
            out["target_variants"] = run_variants(
                recorded,
                rows_expected=n,
                target=self.target,
                env=self.target_env,
                work=self.run_dir,
                schema_prefix=self.schema("var", n),
            )
        if not self.args.keep_output:
            recorded.unlink()
        return out

    def sdk_record_path(
        self, tap_cfg: Path, catalog: Path, n: int, fast_wall: float
    ) -> dict[str, Any]:
        """The tap alone with every record on the SDK's own path: an identity stream map per
        stream turns off SampleStream's fast `_write_record_message` and writes the same rows
        (tests/test_sdk_paths.py). Its time over the fast path's is the fast path's gain."""
        config = json.loads(tap_cfg.read_text(encoding="utf-8"))
        config["stream_maps"] = {name: {} for name in stream_names(self.meters).values()}
        sdk_cfg = tap_cfg.with_name(f"tap-{n}-sdk-path.json")
        sdk_cfg.write_text(json.dumps(config), encoding="utf-8")
        cmd = [str(BIN / "tap-ceilometer"), "--config", str(sdk_cfg), "--catalog", str(catalog)]
        walls = []
        for i in range(self.args.repeat):
            log(f"N={n}: tap > /dev/null, SDK record path ({i + 1}/{self.args.repeat})")
            walls.append(run(cmd, log=self.run_dir / f"tap-{n}-sdk-path-{i}.log").wall)
        return {
            "wall_s": round(min(walls), 3),
            "samples_per_s": round(n / min(walls)),
            "fast_path_gain": round(min(walls) / fast_wall, 2),
        }

    def pipeline(
        self, tap_cmd: list[str], target_cmd: list[str], n: int
    ) -> tuple[Usage, Usage, float]:
        tap_log = self.run_dir / f"pipe-tap-{n}.log"
        tgt_log = self.run_dir / f"pipe-target-{n}.log"
        tap_report = tap_log.with_suffix(".usage.json")
        tgt_report = tgt_log.with_suffix(".usage.json")
        with tap_log.open("wb") as tap_err, tgt_log.open("wb") as tgt_err:
            started = time.perf_counter()
            tap = subprocess.Popen(
                measured(tap_cmd, tap_report), stdout=subprocess.PIPE, stderr=tap_err
            )
            tgt = subprocess.Popen(
                measured(target_cmd, tgt_report),
                stdin=tap.stdout,
                stdout=subprocess.DEVNULL,
                stderr=tgt_err,
                env=self.target_env,
            )
            assert tap.stdout is not None
            tap.stdout.close()  # the target holds the only read end: the tap sees EPIPE if it dies
            tap_u = reap(tap, started, tap_report)
            tgt_u = reap(tgt, started, tgt_report)
            # Both start together: the pipeline's wall time is the parent's, to the last exit.
            wall = time.perf_counter() - started
        check(tap_u, tap_cmd, tap_log)
        check(tgt_u, target_cmd, tgt_log)
        return tap_u, tgt_u, wall


def summarise(
    results: list[dict[str, Any]], info: dict[str, Any], page_size: int
) -> dict[str, Any]:
    by_size = {r["samples"]: r for r in results}
    sizes = sorted(by_size)
    big, small = by_size[sizes[-1]], by_size[sizes[0]]
    mid = by_size[sizes[-2]] if len(sizes) > 1 else small

    tap_rate = big["tap"]["samples_per_s"]
    target_rate = big["target_file"]["rows_per_s"]
    ratio = big["pipeline"]["over_target_file"]
    rss_growth = big["tap"]["rss_mb"] / small["tap"]["rss_mb"]
    # Seconds per sample at the largest size over that at the next one (start-up, about
    # 0.5 s, weighs on the smallest size and would flatter the growth).
    linearity = (big["tap"]["wall_s"] / big["samples"]) / (mid["tap"]["wall_s"] / mid["samples"])
    cpu_linearity = (big["tap"]["cpu_s"] / big["samples"]) / (mid["tap"]["cpu_s"] / mid["samples"])
    exact = all(
        r["output"]["records"] == r["samples"] and r["output"]["duplicates"] == 0 for r in results
    )
    goals = {
        "tap_over_target_file_ge_4": tap_rate >= GOAL_TAP_OVER_TARGET * target_rate,
        "pipeline_over_target_file_le_1_10": ratio <= GOAL_PIPELINE_OVER_FILE,
        "rss_largest_over_smallest_le_1_5": rss_growth <= GOAL_RSS_GROWTH,
        "tap_time_linear": linearity <= GOAL_TIME_LINEARITY,
        "requests_within_bound": all(
            r["requests"]["total"] <= r["requests"]["bound"] for r in results
        ),
        "no_sample_twice": exact,
    }
    summary: dict[str, Any] = {
        "date": info["date"],
        "samples": big["samples"],
        "sizes": sizes,
        "page_size": page_size,
        "tap_samples_per_s": tap_rate,
        "tap_cpu_s": big["tap"]["cpu_s"],
        "tap_cpu_us_per_sample": big["tap"]["cpu_us_per_sample"],
        "target_file_rows_per_s": target_rate,
        "pipeline_rows_per_s": big["pipeline"]["rows_per_s"],
        "pipeline_over_target_file": ratio,
        "tap_over_target_file": round(tap_rate / target_rate, 2),
        "naive_rows_per_s": big.get("naive", {}).get("rows_per_s"),
        "copy_rows_per_s": big["copy"]["rows_per_s"],
        "copy_over_target_file": round(big["copy"]["rows_per_s"] / target_rate, 1),
        "json_dumps_records_per_s": big["json"]["json_dumps_per_s"],
        "rss_mb_10k": by_size.get(10_000, {}).get("tap", {}).get("rss_mb"),
        "rss_mb_1m": by_size.get(1_000_000, {}).get("tap", {}).get("rss_mb"),
        "rss_mb_by_size": {str(s): by_size[s]["tap"]["rss_mb"] for s in sizes},
        "tap_wall_s_by_size": {str(s): by_size[s]["tap"]["wall_s"] for s in sizes},
        "pipeline_over_target_file_by_size": {
            str(s): by_size[s]["pipeline"]["over_target_file"] for s in sizes
        },
        "rss_growth": round(rss_growth, 2),
        "time_per_sample_growth": round(linearity, 3),
        "cpu_per_sample_growth": round(cpu_linearity, 3),
        "requests": big["requests"]["total"],
        "requests_bound": big["requests"]["bound"],
        "goals": goals,
    }
    sdk_path = next((r for r in results if "tap_sdk_record_path" in r), None)
    if sdk_path:
        summary["fast_path_gain"] = sdk_path["tap_sdk_record_path"]["fast_path_gain"]
        summary["fast_path_gain_at"] = sdk_path["samples"]
    variants = next((r["target_variants"] for r in results if "target_variants" in r), None)
    if variants:
        best = max(variants, key=lambda v: v["rows_per_s"])
        summary["target_variants_rows_per_s"] = {v["label"]: v["rows_per_s"] for v in variants}
        summary["target_best_settings"] = best["settings"]
    return summary


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _get(result: dict[str, Any], path: str) -> Any:
    value: Any = result
    for key in path.split("."):
        value = value[key]
    return value


ROWS: tuple[tuple[str, str], ...] = (
    ("**tap → /dev/null** samples/s", "tap.samples_per_s"),
    ("· wall s", "tap.wall_s"),
    ("· CPU s (user+sys)", "tap.cpu_s"),
    ("· CPU µs/sample", "tap.cpu_us_per_sample"),
    ("· peak RSS MB", "tap.rss_mb"),
    ("· HTTP requests / bound", "requests.total requests.bound"),
    ("· sample pages (POST /v2/query/samples)", "requests.sample_pages"),
    ("· records out / duplicates", "output.records output.duplicates"),
    ("· Singer bytes/record", "output.bytes_per_record"),
    ("**target-postgres < file** rows/s", "target_file.rows_per_s"),
    ("· wall s", "target_file.wall_s"),
    ("· CPU s", "target_file.cpu_s"),
    ("· peak RSS MB", "target_file.rss_mb"),
    ("**tap \\| target-postgres** rows/s", "pipeline.rows_per_s"),
    ("· wall s", "pipeline.wall_s"),
    ("· wall / target-from-file wall", "pipeline.over_target_file"),
    ("· tap CPU s / target CPU s", "pipeline.tap.cpu_s pipeline.target.cpu_s"),
    ("· tap RSS MB / target RSS MB", "pipeline.tap.rss_mb pipeline.target.rss_mb"),
    ("tap rate / target-from-file rate", "tap_over_target_file"),
    ("**(a) naive exporter** rows/s", "naive.rows_per_s"),
    ("· wall s", "naive.wall_s"),
    ("· CPU s", "naive.cpu_s"),
    ("· peak RSS MB", "naive.rss_mb"),
    ("**(b) raw COPY** rows/s", "copy.rows_per_s"),
    ("· wall s", "copy.wall_s"),
    ("**(c) json.dumps** records/s", "json.json_dumps_per_s"),
    ("· msgspec encode records/s", "json.msgspec_encode_per_s"),
    ("simulator start s / DB reused", "simulator.startup_s simulator.reused_db"),
)


def table(results: list[dict[str, Any]]) -> str:
    """The figures as a Markdown table, one column per size."""
    lines = [
        "| measure | " + " | ".join(f"N = {r['samples']:,}" for r in results) + " |",
        "|---|" + "---:|" * len(results),
    ]
    for label, paths in ROWS:
        cells = []
        for r in results:
            try:
                cells.append(" / ".join(fmt(_get(r, path)) for path in paths.split()))
            except KeyError:
                cells.append("n/a")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def variants_table(results: list[dict[str, Any]]) -> str:
    for r in results:
        if "target_variants" not in r:
            continue
        copy_rate = r["copy"]["rows_per_s"]
        lines = [
            "",
            "",
            f"target-postgres < file, N = {r['samples']:,}, raw COPY = {copy_rate:,} rows/s",
            "",
            "| settings | rows/s | wall s | CPU s | peak RSS MB | raw COPY / this |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {v['label']} | {v['rows_per_s']:,} | {v['wall_s']:.1f} | {v['cpu_s']:.1f} | "
            f"{v['rss_mb']:.0f} | {copy_rate / v['rows_per_s']:.1f} |"
            for v in r["target_variants"]
        ]
        return "\n".join(lines)
    return ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="tap-ceilometer benchmark (issue 6)")
    p.add_argument(
        "--sizes", default=DEFAULT_SIZES, help=f"sample counts (default {DEFAULT_SIZES})"
    )
    p.add_argument("--quick", action="store_true", help=f"smoke run: --sizes {QUICK_SIZES}")
    p.add_argument("--meters", default=DEFAULT_METERS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--page-size", type=int, default=1000, help="the tap's page_size (its default: 1000)"
    )
    p.add_argument("--repeat", type=int, default=3, help="tap-alone runs per size (best kept)")
    p.add_argument(
        "--variants-size",
        type=int,
        default=100_000,
        help="size at which to try target-postgres settings (0: skip; must be in --sizes)",
    )
    p.add_argument(
        "--naive-max", type=int, default=10**9, help="skip the naive exporter above this size"
    )
    p.add_argument("--keep-output", action="store_true", help="keep the recorded tap output")
    p.add_argument(
        "--partitions-size",
        type=int,
        default=200_000,
        help="samples for the partition scaling table (bench/partitions.py; 0: skip)",
    )
    p.add_argument(
        "--backfill-size",
        type=int,
        default=1_000_000,
        help="samples for the large-backfill comparison (bench/backfill.py; 0: skip)",
    )
    args = p.parse_args(argv)
    sizes = sorted(int(s) for s in (QUICK_SIZES if args.quick else args.sizes).split(","))

    started = time.perf_counter()
    bench = Bench(args)
    info = machine()
    log(f"machine: {info}; logs in {bench.run_dir}")
    results = [bench.measure(n) for n in sizes]
    summary = summarise(results, info, args.page_size)
    scaling: dict[str, Any] = {}
    if args.partitions_size:
        log(f"partition scaling at N={args.partitions_size} (bench/partitions.py)")
        scaling = partition_scaling(args.partitions_size)
        summary["partition_scaling"] = {
            "samples": scaling["samples"],
            "cpus": scaling["cpus"],
            "tap_speedup": scaling["tap_speedup"],
            "pipeline_speedup": scaling["pipeline_speedup"],
            "batch_over_record": scaling["batch_over_record"],
        }
    if args.backfill_size:
        backfill_size = min(args.backfill_size, sizes[-1])
        log(f"large backfill at N={backfill_size} (bench/backfill.py)")
        summary["backfill"] = backfill_figures(backfill_size, args.meters)
    summary["bench_wall_s"] = round(time.perf_counter() - started)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(
        json.dumps(
            {"machine": info, "summary": summary, "results": results, "partitions": scaling},
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    md = table(results) + variants_table(results)
    (RESULTS / "latest.md").write_text(md + "\n", encoding="utf-8")
    print(md)
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
