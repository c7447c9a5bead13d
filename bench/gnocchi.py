"""Gnocchi: requests scale with data, not with metrics. The tap against one request per series.

For each N (metrics), a fresh real Gnocchi 4.7.1 (tests/gnocchi/stack.py: API under werkzeug,
one metricd worker, PostgreSQL indexer, file storage) is shaped the way Ceilometer shapes it:
N/2 `instance` resources, each with `cpu` (ceilometer-low-rate: mean and rate:mean) and `vcpus`
(ceilometer-low: mean), and 2 hours of 5-minute measures on every metric. Once metricd has
processed everything, one process at a time (wall, CPU, peak RSS from bench/measure.py):

1. the tap's first sweep, `tap-ceilometer --config c.json > out.jsonl` (gnocchi_basic_user
   admin, endpoint_override the stack): HTTP requests from its METRIC lines
   (`http_request_duration`), records, the size of the last STATE's value;
2. the tap's idle sweep: the same with `--state` of that value, nothing new posted;
3. the baseline's first sweep (bench/gnocchi_baseline.py: list the metrics, one
   `GET /v1/metric/<id>/measures` per series);
4. the baseline's idle sweep (each series from `start=` the last period it saw).

Gnocchi's own access log (werkzeug, api.log) counts the requests of each run as well.

    .venv/bin/python bench/gnocchi.py [--metrics 1000 10000] [--quick]

Figures go to bench/results/gnocchi-latest.json; the last line printed is the JSON summary.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from procs import BIN, CACHE, run  # noqa: E402
from run import log, machine  # noqa: E402

from tests.gnocchi.stack import GnocchiStack  # noqa: E402

RESULTS = REPO / "bench" / "results"
DEFAULT_METRICS = (1000, 10000)
QUICK_METRICS = (200, 1000)
STEP = 300
HOURS = 2
POINTS = HOURS * 3600 // STEP  # 24 measures per metric
INSTANCES_PER_BATCH = 250  # 500 metrics, 12,000 measures per batch POST
GOAL_REQUEST_RATIO = 10.0
# werkzeug's access log line: 127.0.0.1 - - [date] "GET /v1/... HTTP/1.1" 200 -
ACCESS = re.compile(rb'"(GET|POST|PATCH|PUT|DELETE|HEAD) (\S+) HTTP/[\d.]+" (\d{3})')
DIMENSIONS = ("resources", "metrics", "archive_policies")


class Cloud:
    """Creates the instances, their metrics and their measures; one Session per thread."""

    def __init__(self, stack: GnocchiStack, workers: int) -> None:
        self.stack = stack
        self.workers = workers
        self.local = threading.local()
        self.requests = 0
        self.lock = threading.Lock()

    def post(self, path: str, body: Any, expect: tuple[int, ...]) -> None:
        http = getattr(self.local, "http", None)
        if http is None:
            http = self.local.http = requests.Session()
            http.auth = ("admin", "")
        r = http.post(f"{self.stack.url}{path}", json=body, timeout=600)
        if r.status_code not in expect:
            raise RuntimeError(f"POST {path} answered {r.status_code}: {r.text[:1000]}")
        with self.lock:
            self.requests += 1

    def populate(self, n: int, method: str) -> dict[str, Any]:
        """n metrics on n/2 instances. `inline`: each resource POST names its two metrics;
        `batch`: resources alone, metrics created by the measures batch (create_metrics)."""
        instances = n // 2
        end = datetime.now(tz=UTC).replace(second=0, microsecond=0)
        end -= timedelta(minutes=end.minute % 5)
        times = [end - timedelta(seconds=STEP * (POINTS - i)) for i in range(POINTS)]
        stamps = [t.strftime("%Y-%m-%dT%H:%M:%S+00:00") for t in times]
        ids = [str(uuid.UUID(int=(n << 64) + i, version=4)) for i in range(instances)]
        cpu_def = {"archive_policy_name": "ceilometer-low-rate", "unit": "ns"}
        vcpus_def = {"archive_policy_name": "ceilometer-low", "unit": "vcpu"}

        def resource(i: int) -> None:
            body: dict[str, Any] = {
                "id": ids[i],
                "project_id": str(uuid.UUID(int=i % 20 + 1)),
                "user_id": str(uuid.UUID(int=i % 50 + 1000)),
                "display_name": f"vm-{i}",
                "flavor_id": str(i % 4 + 1),
                "flavor_name": f"m1.f{i % 4 + 1}",
                "host": f"compute-{i % 8}",
                "started_at": stamps[0],
            }
            if method == "inline":
                body["metrics"] = {"cpu": cpu_def, "vcpus": vcpus_def}
            self.post("/v1/resource/instance", body, (201,))

        def measures(chunk: range) -> None:
            body = {}
            for i in chunk:
                vcpus = i % 4 + 1
                body[ids[i]] = {
                    # cumulative CPU time in ns: about 40 % of the instance's vCPUs busy
                    "cpu": {
                        **cpu_def,
                        "measures": [
                            {"timestamp": s, "value": float(k * STEP * 4e8 * vcpus + i)}
                            for k, s in enumerate(stamps)
                        ],
                    },
                    "vcpus": {
                        **vcpus_def,
                        "measures": [{"timestamp": s, "value": float(vcpus)} for s in stamps],
                    },
                }
            self.post("/v1/batch/resources/metrics/measures?create_metrics=true", body, (202,))

        out: dict[str, Any] = {"instances": instances, "method": method, "workers": self.workers}
        started = time.perf_counter()
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(resource, range(instances)))
        out["resources_s"] = round(time.perf_counter() - started, 1)
        mark = time.perf_counter()
        chunks = [
            range(i, min(i + INSTANCES_PER_BATCH, instances))
            for i in range(0, instances, INSTANCES_PER_BATCH)
        ]
        with ThreadPoolExecutor(min(self.workers, 2)) as pool:
            list(pool.map(measures, chunks))
        out["measures_post_s"] = round(time.perf_counter() - mark, 1)
        mark = time.perf_counter()
        self.stack.wait_until_processed(timeout=1800)
        out["metricd_s"] = round(time.perf_counter() - mark, 1)
        out["total_s"] = round(time.perf_counter() - started, 1)
        out["requests"] = self.requests
        out["measures"] = n * POINTS
        out["first_point"], out["last_point"] = stamps[0], stamps[-1]
        return out


def access_count(stack: GnocchiStack, offset: int) -> tuple[int, dict[str, int], int]:
    """Requests in Gnocchi's access log after `offset` (by method and path, ids folded)."""
    with stack.api_log.open("rb") as f:
        f.seek(offset)
        data = f.read()
    routes: dict[str, int] = {}
    for method, path, _status in ACCESS.findall(data):
        route = re.sub(rb"[0-9a-f]{8}-[0-9a-f-]{27}", b"<id>", path.split(b"?", 1)[0])
        key = f"{method.decode()} {route.decode()}"
        routes[key] = routes.get(key, 0) + 1
    return sum(routes.values()), routes, offset + len(data)


def log_size(stack: GnocchiStack) -> int:
    return stack.api_log.stat().st_size


def tap_metrics(stderr: Path) -> dict[str, int]:
    """HTTP requests by endpoint from the tap's METRIC lines (`http_request_duration`)."""
    by_endpoint: dict[str, int] = {}
    for line in stderr.read_text(errors="replace").splitlines():
        if "METRIC: " not in line:
            continue
        point = json.loads(line.split("METRIC: ", 1)[1])
        if point.get("metric") == "http_request_duration":
            endpoint = str(point.get("tags", {}).get("endpoint"))
            by_endpoint[endpoint] = by_endpoint.get(endpoint, 0) + 1
    return by_endpoint


def read_output(path: Path) -> tuple[dict[str, int], Any]:
    records: dict[str, int] = {}
    state = None
    with path.open("rb") as f:
        for raw in f:
            if raw.startswith(b'{"type":"RECORD"') or b'"type":"RECORD"' in raw[:40]:
                stream = json.loads(raw)["stream"]
                records[stream] = records.get(stream, 0) + 1
            elif b'"STATE"' in raw[:40]:
                state = json.loads(raw)["value"]
    return records, state


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S")
        self.run_dir = CACHE / f"gnocchi-{stamp}"
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def tap(self, stack: GnocchiStack, n: int, what: str, state: Any) -> dict[str, Any]:
        cfg = self.run_dir / f"tap-{n}.json"
        cfg.write_text(
            json.dumps({"gnocchi_basic_user": "admin", "endpoint_override": stack.url}),
            encoding="utf-8",
        )
        cmd = [str(BIN / "tap-ceilometer"), "--config", str(cfg)]
        if state is not None:
            state_file = self.run_dir / f"tap-{n}-{what}-state-in.json"
            state_file.write_text(json.dumps(state), encoding="utf-8")
            cmd += ["--state", str(state_file)]
        out_file = self.run_dir / f"tap-{n}-{what}.jsonl"
        err_file = self.run_dir / f"tap-{n}-{what}.log"
        offset = log_size(stack)
        with out_file.open("wb") as out:
            usage = run(cmd, stdout=out, log=err_file)
        server, routes, _ = access_count(stack, offset)
        by_endpoint = tap_metrics(err_file)
        records, last_state = read_output(out_file)
        measure_records = sum(v for k, v in records.items() if k not in DIMENSIONS)
        result = {
            **usage.as_json(),
            "requests": sum(by_endpoint.values()),
            "requests_by_endpoint": by_endpoint,
            "server_requests": server,
            "server_routes": routes,
            "records": sum(records.values()),
            "measure_records": measure_records,
            "records_by_stream": records,
            "state_bytes": len(json.dumps(last_state, separators=(",", ":")).encode()),
            "output_bytes": out_file.stat().st_size,
        }
        if not self.args.keep_output:
            out_file.unlink()
        return result | {"_state": last_state}

    def baseline(self, stack: GnocchiStack, n: int, what: str) -> dict[str, Any]:
        since = self.run_dir / f"baseline-{n}-since.json"
        cmd = [
            str(BIN / "python"),
            str(REPO / "bench" / "gnocchi_baseline.py"),
            "--url",
            stack.url,
            *(("--save", str(since)) if what == "first" else ("--since", str(since))),
        ]
        out_file = self.run_dir / f"baseline-{n}-{what}.jsonl"
        err_file = self.run_dir / f"baseline-{n}-{what}.log"
        offset = log_size(stack)
        with out_file.open("wb") as out:
            usage = run(cmd, stdout=out, log=err_file)
        server, routes, _ = access_count(stack, offset)
        report = json.loads(err_file.read_text().strip().splitlines()[-1])
        if not self.args.keep_output:
            out_file.unlink()
        return {**usage.as_json(), **report, "server_requests": server, "server_routes": routes}

    def measure(self, n: int) -> dict[str, Any]:
        out: dict[str, Any] = {"metrics": n}
        log(f"N={n}: starting Gnocchi")
        started = time.perf_counter()
        with GnocchiStack(metric_processing_delay=1) as stack:
            stack.create_ceilometer_archive_policies()
            stack.create_ceilometer_resource_types()
            out["stack_start_s"] = round(time.perf_counter() - started, 1)
            log(f"N={n}: creating {n // 2} instances, {n} metrics ({self.args.create})")
            cloud = Cloud(stack, self.args.workers)
            out["populate"] = cloud.populate(n, self.args.create)
            log(f"N={n}: populated: {out['populate']}")
            for what in ("first", "idle"):
                state = out["tap_first"].pop("_state") if what == "idle" else None
                log(f"N={n}: tap, {what} sweep")
                out[f"tap_{what}"] = self.tap(stack, n, what, state)
                log(f"N={n}: baseline, {what} sweep")
                out[f"baseline_{what}"] = self.baseline(stack, n, what)
            out["tap_idle"].pop("_state")
        for what in ("first", "idle"):
            tap, base = out[f"tap_{what}"], out[f"baseline_{what}"]
            out[f"ratios_{what}"] = {
                "requests": round(base["requests"] / tap["requests"], 1),
                "wall": round(base["wall_s"] / tap["wall_s"], 2),
            }
        log(f"N={n}: ratios first {out['ratios_first']}, idle {out['ratios_idle']}")
        return out


def summarise(results: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    per_n: dict[str, Any] = {}
    for r in results:
        row: dict[str, Any] = {"populate_s": r["populate"]["total_s"]}
        for what in ("first", "idle"):
            tap, base = r[f"tap_{what}"], r[f"baseline_{what}"]
            row[what] = {
                "tap_requests": tap["requests"],
                "tap_wall_s": tap["wall_s"],
                "tap_rss_mb": tap["rss_mb"],
                "tap_records": tap["measure_records"],
                "state_bytes": tap["state_bytes"],
                "baseline_requests": base["requests"],
                "baseline_wall_s": base["wall_s"],
                "baseline_records": base["records"],
                "request_ratio": r[f"ratios_{what}"]["requests"],
                "wall_ratio": r[f"ratios_{what}"]["wall"],
            }
        per_n[str(r["metrics"])] = row
    ratios = [r[f"ratios_{w}"]["requests"] for r in results for w in ("first", "idle")]
    return {
        "date": info["date"],
        "cores": info["cores"],
        "metrics": [r["metrics"] for r in results],
        "by_metrics": per_n,
        "goals": {"requests_10x_fewer": min(ratios) >= GOAL_REQUEST_RATIO},
    }


def table(results: list[dict[str, Any]]) -> str:
    cols = [(r, w) for r in results for w in ("first", "idle")]
    lines = [
        "| measure | " + " | ".join(f"N = {r['metrics']:,}, {w}" for r, w in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]

    def row(label: str, fn: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(fn(r, w) for r, w in cols) + " |")

    row("tap requests (METRIC lines)", lambda r, w: f"{r[f'tap_{w}']['requests']:,}")
    row("· seen by Gnocchi", lambda r, w: f"{r[f'tap_{w}']['server_requests']:,}")
    row(
        "· of which POST /v1/aggregates",
        lambda r, w: f"{r[f'tap_{w}']['requests_by_endpoint'].get('POST /v1/aggregates', 0):,}",
    )
    row("tap wall s", lambda r, w: f"{r[f'tap_{w}']['wall_s']:.2f}")
    row("tap CPU s", lambda r, w: f"{r[f'tap_{w}']['cpu_s']:.2f}")
    row("tap peak RSS MB", lambda r, w: f"{r[f'tap_{w}']['rss_mb']:.1f}")
    row("tap measure records", lambda r, w: f"{r[f'tap_{w}']['measure_records']:,}")
    row("tap records, all streams", lambda r, w: f"{r[f'tap_{w}']['records']:,}")
    row("final STATE value, bytes (compact JSON)", lambda r, w: f"{r[f'tap_{w}']['state_bytes']:,}")
    row("baseline requests", lambda r, w: f"{r[f'baseline_{w}']['requests']:,}")
    row("· seen by Gnocchi", lambda r, w: f"{r[f'baseline_{w}']['server_requests']:,}")
    row("baseline wall s", lambda r, w: f"{r[f'baseline_{w}']['wall_s']:.2f}")
    row("baseline CPU s", lambda r, w: f"{r[f'baseline_{w}']['cpu_s']:.2f}")
    row("baseline peak RSS MB", lambda r, w: f"{r[f'baseline_{w}']['rss_mb']:.1f}")
    row("baseline records", lambda r, w: f"{r[f'baseline_{w}']['records']:,}")
    row("**baseline / tap requests**", lambda r, w: f"**{r[f'ratios_{w}']['requests']:,}**")
    row("**baseline / tap wall**", lambda r, w: f"**{r[f'ratios_{w}']['wall']:.2f}**")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Gnocchi: the tap against one request per series")
    p.add_argument("--metrics", type=int, nargs="+", help=f"default {DEFAULT_METRICS}")
    p.add_argument("--quick", action="store_true", help=f"smoke run: --metrics {QUICK_METRICS}")
    p.add_argument(
        "--create",
        choices=("inline", "batch"),
        default="batch",
        help=(
            "batch (default, faster): resources alone, then the metrics created by the"
            " measures batch (create_metrics=true, as Ceilometer's publisher does); inline:"
            " each resource POST names its two metrics"
        ),
    )
    p.add_argument("--workers", type=int, default=4, help="threads creating resources")
    p.add_argument("--keep-output", action="store_true", help="keep the recorded outputs")
    args = p.parse_args(argv)
    sizes = sorted(args.metrics or (QUICK_METRICS if args.quick else DEFAULT_METRICS))

    started = time.perf_counter()
    bench = Bench(args)
    info = machine()
    log(f"machine: {info}; logs in {bench.run_dir}")
    results = [bench.measure(n) for n in sizes]
    summary = summarise(results, info)
    summary["bench_wall_s"] = round(time.perf_counter() - started)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gnocchi-latest.json").write_text(
        json.dumps({"machine": info, "summary": summary, "results": results}, indent=2) + "\n",
        encoding="utf-8",
    )
    md = table(results)
    (RESULTS / "gnocchi-latest.md").write_text(md + "\n", encoding="utf-8")
    print(md)
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
