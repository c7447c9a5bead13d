"""Baseline for the Gnocchi benchmark: one request per series, the way such scripts are written.

Lists every metric (``GET /v1/metric``, pages of 1000 by id), then for each metric and each
of its policy's methods among mean and rate:mean (``cpu`` on ceilometer-low-rate: both;
``vcpus`` on ceilometer-low: mean) makes one
``GET /v1/metric/<id>/measures?granularity=300&aggregation=<m>``, on one keep-alive session.
Each point is written to stdout as a JSON line, as an exporter would hand it on.

The idle sweep (``--since FILE``) asks each series from ``start=`` the last period the first
sweep saw of it (``--save FILE`` writes those), still one request per series.

    gnocchi_baseline.py --url URL [--user admin] [--save since.json | --since since.json] > out

The last line on stderr is JSON: requests (listing, archive policies, measures), series,
records.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from collections.abc import Callable

GRANULARITY = 300
METHODS = ("mean", "rate:mean")
PAGE = 1000


def list_metrics(get: Callable[[str, dict[str, Any], str], Any]) -> list[dict[str, Any]]:
    """Every metric, by id, in pages of 1000 (the next page after the last id)."""
    metrics: list[dict[str, Any]] = []
    marker = None
    while True:
        params: dict[str, Any] = {"limit": PAGE, "sort": "id:asc"}
        if marker:
            params["marker"] = marker
        page = get("/v1/metric", params, "list")
        metrics.extend(page)
        if len(page) < PAGE:
            return metrics
        marker = page[-1]["id"]


def methods(metric: dict[str, Any], methods_of: dict[str, list[str]]) -> list[str]:
    """mean and rate:mean, where the metric's archive policy has them."""
    policy = metric.get("archive_policy")
    if isinstance(policy, dict):
        have = policy["aggregation_methods"]
    else:
        have = methods_of.get(metric.get("archive_policy_name", ""), [])
    return [m for m in METHODS if m in have]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="Gnocchi's root (without /v1)")
    p.add_argument("--user", default="admin", help="basic-auth user (Gnocchi ignores passwords)")
    p.add_argument("--save", help="write each series' last period here (first sweep)")
    p.add_argument("--since", help="read each series from the period saved here (idle sweep)")
    args = p.parse_args(argv)
    url = args.url.rstrip("/")
    since: dict[str, str] = {}
    if args.since:
        with open(args.since, encoding="utf-8") as f:
            since = json.load(f)

    http = requests.Session()
    http.auth = (args.user, "")
    http.headers["Accept"] = "application/json"
    counts = {"list": 0, "archive_policy": 0, "measures": 0}

    def get(path: str, params: dict[str, Any], what: str) -> Any:
        counts[what] += 1
        r = http.get(f"{url}{path}", params=params, timeout=300)
        r.raise_for_status()
        return r.json()

    metrics = list_metrics(get)
    methods_of: dict[str, list[str]] = {}
    if any(not isinstance(m.get("archive_policy"), dict) for m in metrics):
        for policy in get("/v1/archive_policy", {}, "archive_policy"):
            methods_of[policy["name"]] = policy["aggregation_methods"]

    out = sys.stdout
    last: dict[str, str] = {}
    records = series = 0
    for metric in metrics:
        for method in methods(metric, methods_of):
            key = f"{metric['id']}:{method}"
            params = {"granularity": GRANULARITY, "aggregation": method}
            if key in since:
                params["start"] = since[key]
            points = get(f"/v1/metric/{metric['id']}/measures", params, "measures")
            series += 1
            for timestamp, _grain, value in points:
                out.write(
                    json.dumps(
                        {
                            "metric_id": metric["id"],
                            "metric_name": metric.get("name"),
                            "resource_id": metric.get("resource_id"),
                            "aggregation": method,
                            "granularity": GRANULARITY,
                            "timestamp": timestamp,
                            "value": value,
                        }
                    )
                    + "\n"
                )
                records += 1
            if points:
                last[key] = points[-1][0]
            elif key in since:
                last[key] = since[key]
    out.flush()
    if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
            json.dump(last, f)
    report = {"requests": sum(counts.values()), **counts, "series": series, "records": records}
    print(json.dumps(report), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
