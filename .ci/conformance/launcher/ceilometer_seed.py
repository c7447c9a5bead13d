"""Write samples into the conformance Ceilometer's storage through Ceilometer's own code.

Runs with the Ceilometer virtualenv's python. Reads JSON lines on stdin, one storage-form sample per
line::

    {"counter_name": "cpu", "counter_type": "cumulative", "counter_unit": "ns",
     "counter_volume": 1.5, "message_id": "...", "project_id": "...", "user_id": "...",
     "resource_id": "...", "source": "openstack", "timestamp": "2024-01-01T00:00:00.123456",
     "resource_metadata": {"display_name": "vm", "flavor": {"name": "m1.tiny"}}}

Each becomes a ``ceilometer.sample.Sample`` and is published with the pipeline's ``database://``
publisher (``DirectPublisher``), which signs it (``meter_message_from_counter``) and hands it to
the database dispatcher's ``record_metering_data``; that parses the timestamp and calls the SQL
driver's ``record_metering_data`` for each sample. ``recorded_at`` is set by the driver.

Speed, without changing what is stored: the driver opens one transaction per sample and looks up
(or creates) the meter and resource rows of every sample with a savepoint and a SELECT each. Here a
whole batch runs inside one outer transaction (the driver's per-sample ``engine.begin()`` joins
it), and within it the driver's own ``_create_meter`` / ``_create_resource`` are memoised on the
same keys they search by (its code carries a TODO asking for exactly this cache). 10,000 samples
take seconds instead of half a minute.

A blank line commits what was read so far and answers ``{"stored": <count>}`` on stdout, so one
seeder process can serve many seeding calls; end of input commits and answers the same way.
"""

# Imports are deferred on purpose: these launchers run in the servers' own virtualenvs, where
# the compat bridges must be in place before Ceilometer loads and oslo.config must not see
# our arguments.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path
from typing import Any

warnings.simplefilter("ignore")

import ceilometer_compat  # noqa: E402

ceilometer_compat.apply()

from ceilometer_api import config_path, load_conf, use_workdir_as_home  # noqa: E402

BATCH = 1000


class _JoinedTransaction:
    """Stands in for the SQLAlchemy engine: ``begin()`` hands out one open connection."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @contextlib.contextmanager
    def begin(self) -> Any:
        yield self._connection


class _Facade:
    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def get_engine(self) -> Any:
        return self._engine


def _to_sample(line: dict[str, Any]) -> Any:
    from ceilometer import sample

    return sample.Sample(
        name=line["counter_name"],
        type=line["counter_type"],
        unit=line["counter_unit"],
        volume=line["counter_volume"],
        user_id=line.get("user_id"),
        project_id=line.get("project_id"),
        resource_id=line["resource_id"],
        timestamp=line["timestamp"],
        resource_metadata=line.get("resource_metadata") or {},
        source=line.get("source"),
        id=line["message_id"],
    )


def _memoised_meter(create: Any) -> Any:
    ids: dict[tuple[Any, ...], Any] = {}

    def lookup(conn: Any, name: str, type: str, unit: str) -> Any:
        key = (name, type, unit)
        if key not in ids:
            ids[key] = create(conn, name, type, unit)
        return ids[key]

    return lookup


def _memoised_resource(create: Any) -> Any:
    ids: dict[tuple[Any, ...], Any] = {}

    def lookup(conn: Any, *row: Any) -> Any:
        # row: resource_id, user_id, project_id, source_id, resource_metadata
        key = (*row[:4], json.dumps(row[4], sort_keys=True))
        if key not in ids:
            ids[key] = create(conn, *row)
        return ids[key]

    return lookup


class Seeder:
    def __init__(self, conf: Any) -> None:
        from ceilometer.publisher import direct
        from oslo_utils import netutils

        self._publisher = direct.DirectPublisher(conf, netutils.urlsplit("database://"))
        self._dispatcher = self._publisher.get_sample_dispatcher()
        self._storage = self._dispatcher.conn
        self._real_facade = self._storage._engine_facade

    def store(self, samples: list[Any]) -> None:
        engine = self._real_facade.get_engine()
        with engine.begin() as connection:
            storage = self._storage
            storage._engine_facade = _Facade(_JoinedTransaction(connection))
            storage._create_meter = _memoised_meter(type(storage)._create_meter)
            storage._create_resource = _memoised_resource(type(storage)._create_resource)
            try:
                for start in range(0, len(samples), BATCH):
                    self._publisher.publish_samples(samples[start : start + BATCH])
            finally:
                storage._engine_facade = self._real_facade
                del storage._create_meter, storage._create_resource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="the API launcher's workdir")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    use_workdir_as_home(workdir)
    seeder = Seeder(load_conf(config_path(workdir)))

    pending: list[Any] = []
    total = 0

    def flush() -> None:
        nonlocal total
        seeder.store(pending)
        total += len(pending)
        sys.stdout.write(json.dumps({"stored": len(pending), "total": total}) + "\n")
        sys.stdout.flush()
        pending.clear()

    for raw in sys.stdin:
        if raw.strip():
            pending.append(_to_sample(json.loads(raw)))
        else:
            flush()
    flush()


if __name__ == "__main__":
    main()
