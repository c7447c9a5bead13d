"""``tap-ceilometer-simulator``: load a generated cloud and serve it until interrupted."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from typing import Any

from ceilometer_simulator.generator import DEFAULT_METERS, CloudSpec
from ceilometer_simulator.server import Simulator


def build_parser() -> argparse.ArgumentParser:
    """The command line options."""
    p = argparse.ArgumentParser(
        prog="tap-ceilometer-simulator",
        description="Serve a simulated OpenStack Ceilometer v2 API and Keystone on one port.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8777, help="0: any free port (the banner says)")
    p.add_argument("--db", default=None, help="SQLite file (default: a temporary file)")
    p.add_argument(
        "--samples", type=int, default=1000, help="samples to generate into an empty database"
    )
    p.add_argument(
        "--advance",
        type=int,
        default=0,
        help="samples to add after the newest one when the database holds some (the cloud"
        " moves on)",
    )
    p.add_argument(
        "--advance-span", type=float, default=3600.0, help="seconds the added samples cover"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--meters", default=",".join(DEFAULT_METERS), help="comma-separated names")
    p.add_argument("--tie-size", type=int, default=None)
    p.add_argument("--tie-fraction", type=float, default=None)
    p.add_argument("--gnocchi", action="store_true", help="answer 410 like a Gnocchi install")
    p.add_argument("--default-limit", type=int, default=100)
    p.add_argument("--token-ttl", type=float, default=3600.0)
    p.add_argument("--tls-cert", default=None, help="serve HTTPS with this certificate")
    p.add_argument("--tls-key", default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: load data, print one line with URLs and the user, serve until signalled."""
    args = build_parser().parse_args(argv)
    sim = Simulator(
        db_path=args.db,
        gnocchi=args.gnocchi,
        default_limit=args.default_limit,
        token_ttl=args.token_ttl,
        seed=args.seed,
        host=args.host,
        port=args.port,
        certfile=args.tls_cert,
        keyfile=args.tls_key,
    )
    extra: dict[str, Any] = {}
    if args.tie_size is not None:
        extra["tie_size"] = args.tie_size
    if args.tie_fraction is not None:
        extra["tie_fraction"] = args.tie_fraction
    meters = [m.strip() for m in args.meters.split(",") if m.strip()]
    newest = sim.store.newest_timestamp()
    if newest is None and args.samples > 0:
        sim.store.load(CloudSpec(seed=args.seed, samples=args.samples, meters=meters, **extra))
    elif newest is not None and args.advance > 0:
        # The same projects and resources (the seed), newer samples: new message ids.
        start = newest + dt.timedelta(seconds=1)
        end = start + dt.timedelta(seconds=args.advance_span)
        spec = CloudSpec(
            seed=args.seed, samples=args.advance, meters=meters, start=start, end=end, **extra
        )
        sim.store.load(spec)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        sim.start()
    except OSError as exc:
        print(
            f"tap-ceilometer-simulator: cannot listen on {args.host}:{args.port} ({exc.strerror});"
            " choose another --port, or 0 for any free port.",
            file=sys.stderr,
        )
        return 1
    print(
        f"ceilometer-simulator url={sim.url} auth_url={sim.auth_url} "
        f"auth_url_v2={sim.auth_url_v2} username=admin project=admin domain=Default "
        f"samples={sim.store.count()}",
        flush=True,
    )
    try:
        while not stop.wait(0.2):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
