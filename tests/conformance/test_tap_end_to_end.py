"""The tap's end-to-end scenarios against the real Keystone 30 and Ceilometer 9.0.7.

The real `tap-ceilometer` command logs in to the real Keystone (v3 password), finds the metering
endpoint in the real service catalog (no endpoint_override), reads the real API, and its output
goes into both real targets at once (target-postgres and target-mysql, as meltano.yml configures
them). Then both databases are read back and compared with the rows Ceilometer itself stored
(`RealStack.stored_samples()`): the count per meter, the set of message_ids, and every column of
every sample, exactly.

Scenarios (the core issue's): more samples than a page and than the API's default limit of 100,
a tie of 2,500 samples at one instant, whole-second and microsecond timestamps mixed, a second
run from the first run's state that adds only the new samples, a late sample (an older timestamp
stored after a run) caught by lookback_window, a run killed midway and resumed from the state the
target confirmed, selections by project and by resource, and a non-admin user who gets only its
own project. The core scenario runs with query_method complex and simple both.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from ceilometer_simulator import flatten_metadata
from tap_ceilometer.naming import stream_names
from tap_ceilometer.tap import TapCeilometer
from tap_ceilometer.timestamps import parse_api_time
from tap_ceilometer.v2.schema import SAMPLE_SCHEMA
from tests.support.pipeline import run_pipeline
from tests.support.targets import (
    TARGETS,
    Target,
    fresh_namespace,
    prepare_tables,
    read_table,
    table_names,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from tests.conformance.stack import Credentials, RealStack

COLUMNS = tuple(SAMPLE_SCHEMA["properties"])
T0 = datetime(2024, 6, 1, tzinfo=UTC)
T_TIE = T0 + timedelta(hours=2)
TIE_SIZE = 2_500
MANY = "e2e.many"  # 1,200 samples, 10 s apart, every other one with microseconds
TIE = "e2e.tie"  # 2,500 samples at T_TIE, 10 on either side
CORE_METERS = [MANY, TIE]
PAGE_SIZE = 100
OTHER_PROJECT = "e2e-other-project"


# -- data ------------------------------------------------------------------------------------


def _sample(
    meter: str,
    moment: datetime,
    index: int,
    *,
    project: str = "e2e-project-a",
    resource: str | None = None,
    **metadata: Any,
) -> dict[str, Any]:
    """A storage-form sample for RealStack.seed; recorded_at is left to Ceilometer."""
    return {
        "counter_name": meter,
        "counter_type": ("gauge", "delta", "cumulative")[index % 3],
        "counter_unit": "B" if index % 5 else "",
        # Exact binary fractions and awkward decimals both: the targets must keep the double.
        "counter_volume": index * 0.1 if index % 2 else float(index) + 0.25,
        "message_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meter}/{moment.isoformat()}/{index}")),
        "project_id": project,
        "user_id": f"user-{index % 2}",
        "resource_id": resource or f"res-{index % 3}",
        "source": "openstack",
        "timestamp": moment,
        # Nested dicts, numbers, booleans and None: flattened to strings by the API. (Lists of
        # strings are left out: their rendering depends on the Python version, see the README.)
        "resource_metadata": {
            "display_name": f"vm-{index % 7}",
            "flavor": {"name": "m1.tiny", "ram": 512, "vcpus": index % 4},
            "ratio": 0.5,
            "public": index % 2 == 0,
            "nothing": None,
            "ports": [80, 443],
            **metadata,
        },
    }


def _many(count: int, start: datetime = T0, first: int = 0) -> list[dict[str, Any]]:
    """Samples 10 s apart; odd ones carry microseconds, even ones fall on a whole second."""
    return [
        _sample(MANY, start + timedelta(seconds=10 * i, microseconds=(i % 2) * 123_457), first + i)
        for i in range(count)
    ]


def _tie() -> list[dict[str, Any]]:
    around = [_sample(TIE, T_TIE + timedelta(seconds=k), 10_000 + k) for k in range(-10, 11) if k]
    return around + [_sample(TIE, T_TIE, i) for i in range(TIE_SIZE)]


def _seed(stack: RealStack, samples: list[dict[str, Any]]) -> None:
    assert stack.seed(samples) == len(samples)


# -- the tap's config for the real stack -------------------------------------------------------


def real_tap_config(
    stack: RealStack, credentials: Credentials | None = None, **overrides: Any
) -> dict[str, Any]:
    """Keystone v3 password auth against the real Keystone; the endpoint comes from its catalog."""
    who = credentials or stack.admin
    config: dict[str, Any] = {
        "auth_url": stack.auth_url,
        "username": who.username,
        "password": who.password,
        "project_name": who.project_name,
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "region_name": stack.region,
        "interface": "public",
        "start_date": "2000-01-01T00:00:00Z",
        "page_size": PAGE_SIZE,
        "max_retries": 2,
    }
    config.update(overrides)
    assert "endpoint_override" not in config
    return config


# -- tap | target-postgres and target-mysql ----------------------------------------------------


@pytest.fixture
def namespaces(real_stack: RealStack) -> Iterator[dict[Target, str]]:
    """A fresh PostgreSQL schema and a fresh MariaDB database; the Ceilometer storage emptied."""
    real_stack.reset_storage()
    with (
        fresh_namespace("target-postgres", prefix="conf") as pg,
        fresh_namespace("target-mysql", prefix="conf") as my,
    ):
        yield {"target-postgres": pg, "target-mysql": my}


def _prepare(namespaces: dict[Target, str], meters: Iterable[str]) -> None:
    names = stream_names(sorted(meters)).values()
    for target, namespace in namespaces.items():
        prepare_tables(target, namespace, names)


# -- comparing sample for sample ---------------------------------------------------------------

Rows = dict[str, dict[str, dict[str, Any]]]  # meter -> message_id -> column -> value


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)


def stored(stack: RealStack, keep: Callable[[dict[str, Any]], bool] = lambda _: True) -> Rows:
    """What Ceilometer stored, as each table row must hold it."""
    rows: Rows = {}
    for sample in stack.stored_samples():
        if not keep(sample):
            continue
        row = {
            "counter_name": sample["counter_name"],
            "counter_type": sample["counter_type"],
            "counter_unit": sample["counter_unit"],
            "counter_volume": sample["counter_volume"],
            "message_id": sample["message_id"],
            "project_id": sample["project_id"],
            "resource_id": sample["resource_id"],
            "source": sample["source"],
            "timestamp": _aware(sample["timestamp"]),
            "user_id": sample["user_id"],
            "recorded_at": _aware(sample["recorded_at"]),
            "resource_metadata": flatten_metadata(sample["resource_metadata"]),
        }
        assert sample["recorded_at"] is not None  # set by Ceilometer's storage
        rows.setdefault(sample["counter_name"], {})[sample["message_id"]] = row
    return rows


def loaded(target: Target, namespace: str, meters: Iterable[str]) -> Rows:
    """What the target wrote, per meter table."""
    meters = sorted(meters)
    names = stream_names(meters)
    existing = set(table_names(target, namespace))
    rows: Rows = {}
    for meter in meters:
        if names[meter] not in existing:
            continue
        table = {}
        for row in read_table(target, namespace, names[meter]):
            assert row["message_id"] not in table
            table[row["message_id"]] = {column: row[column] for column in COLUMNS}
        if table:
            rows[meter] = table
    return rows


def assert_same_samples(got: Rows, expected: Rows, where: str) -> None:
    """Count per meter, then the message_ids, then every column of every sample."""
    count = {meter: len(rows) for meter, rows in got.items()}
    assert count == {meter: len(rows) for meter, rows in expected.items()}, where
    for meter, rows in expected.items():
        assert set(got[meter]) == set(rows), f"{where}: {meter}"
        for message_id, row in rows.items():
            assert got[meter][message_id] == row, f"{where}: {meter} {message_id}"


def assert_loaded_as_stored(
    stack: RealStack,
    namespaces: dict[Target, str],
    meters: Iterable[str],
    keep: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> None:
    expected = stored(stack, keep)
    for target, namespace in namespaces.items():
        assert_same_samples(loaded(target, namespace, meters), expected, target)


# -- the scenarios -----------------------------------------------------------------------------


def test_the_tap_finds_the_metering_endpoint_in_the_real_catalog(real_stack: RealStack) -> None:
    """Keystone v3 password login; the catalog's public metering endpoint in RegionOne."""
    tap = TapCeilometer(config=real_tap_config(real_stack), validate_config=True)
    assert tap.ceilometer.endpoint == real_stack.ceilometer_url
    assert tap.ceilometer.complex_query_supported is True  # query_method auto picks complex


@pytest.mark.parametrize("query_method", ["complex", "simple"])
def test_runs_export_exactly_what_ceilometer_stored(
    real_stack: RealStack, namespaces: dict[Target, str], tmp_path: Path, query_method: str
) -> None:
    """> page size and > 100, a 2,500 tie, mixed precision; a second run; a late sample."""
    stack = real_stack
    _seed(stack, _many(1_200) + _tie())
    _prepare(namespaces, CORE_METERS)
    config = real_tap_config(stack, query_method=query_method)

    first = run_pipeline(config, namespaces, tmp_path)
    assert Counter(r["counter_name"] for r in first.records) == {MANY: 1_200, TIE: TIE_SIZE + 20}
    assert len(first.ids()) == len(first.records)  # exactly once
    assert_loaded_as_stored(stack, namespaces, CORE_METERS)
    state = first.state("target-postgres")
    assert state is not None
    assert first.state("target-mysql") == state

    # Second run from that state: only what is new is read. One sample arrives late: its
    # timestamp lies before the bookmark, so a run without lookback_window cannot see it.
    last = max(parse_api_time(r["timestamp"]) for r in first.records if r["counter_name"] == MANY)
    new = _many(30, start=T0 + timedelta(seconds=12_000), first=5_000)
    new += [_sample(TIE, T_TIE + timedelta(hours=3, microseconds=i), 20_000 + i) for i in range(5)]
    # Older than the first run's bookmark, and within an hour of the second run's.
    late = _sample(MANY, T0 + timedelta(seconds=11_500, microseconds=1), 9_999)
    assert late["timestamp"] < last
    _seed(stack, [*new, late])
    second = run_pipeline(config, namespaces, tmp_path, state=state)
    assert second.ids() == {s["message_id"] for s in new}
    assert len(second.records) == len(new)
    assert_loaded_as_stored(
        stack, namespaces, CORE_METERS, keep=lambda s: s["message_id"] != late["message_id"]
    )

    # Third run with a lookback window of an hour: the late sample is caught, nothing is lost
    # or doubled in the tables (the re-read samples are upserted on message_id).
    state = second.state("target-postgres")
    assert state is not None
    assert second.state("target-mysql") == state
    third = run_pipeline({**config, "lookback_window": 3_600}, namespaces, tmp_path, state=state)
    assert late["message_id"] in third.ids()
    assert len(third.ids()) == len(third.records)
    assert_loaded_as_stored(stack, namespaces, CORE_METERS)


@pytest.mark.parametrize(
    "kill_after",
    [150, 1_200 + 1_000],
    ids=["first-meter", "inside-the-tie"],
)
@pytest.mark.parametrize("target", TARGETS)
def test_a_run_killed_midway_resumes_from_the_confirmed_state(
    real_stack: RealStack,
    namespaces: dict[Target, str],
    tmp_path: Path,
    target: Target,
    kill_after: int,
) -> None:
    stack = real_stack
    _seed(stack, _many(1_200) + _tie())
    only = {target: namespaces[target]}
    _prepare(only, CORE_METERS)
    config = real_tap_config(stack, query_method="auto")
    killed = run_pipeline(config, only, tmp_path, kill_after=kill_after)
    assert len(killed.records) == kill_after
    partial = loaded(target, only[target], CORE_METERS)
    assert 0 < sum(len(rows) for rows in partial.values()) <= kill_after
    confirmed = killed.state(target)
    covered = _covered(killed.records, confirmed)
    assert covered <= {mid for rows in partial.values() for mid in rows}
    resumed = run_pipeline(config, only, tmp_path, state=confirmed)
    # Resumed right after the confirmed bookmark (inside the tie too): what the state covers is
    # not read again, and together the two runs read every stored sample exactly once.
    assert resumed.ids().isdisjoint(covered)
    assert len(resumed.ids()) == len(resumed.records)
    everything = {mid for rows in stored(stack).values() for mid in rows}
    assert resumed.ids() | covered == everything
    assert_loaded_as_stored(stack, only, CORE_METERS)


def _covered(records: list[dict[str, Any]], state: dict[str, Any] | None) -> set[str]:
    """The records at or before their stream's bookmark in `state` (by timestamp, message_id)."""
    if state is None:
        return set()
    names = stream_names(CORE_METERS)
    covered = set()
    for record in records:
        bookmark = state["bookmarks"].get(names[record["counter_name"]], {})
        if "replication_key_value" not in bookmark:
            continue
        position = (bookmark["replication_key_value"], bookmark["replication_key_message_id"])
        if (record["timestamp"], record["message_id"]) <= position:
            covered.add(record["message_id"])
    return covered


def test_selections_by_project_and_by_resource(
    real_stack: RealStack, namespaces: dict[Target, str], tmp_path: Path
) -> None:
    stack = real_stack
    meters = ["e2e.sel.a", "e2e.sel.b"]
    _seed(
        stack,
        [
            _sample(meter, T0 + timedelta(seconds=i, microseconds=i % 2), i, project=f"p-{i % 4}")
            for meter in meters
            for i in range(400)
        ],
    )
    _prepare(namespaces, meters)
    selections = [
        {"name": "tenant-1", "query": [{"field": "project_id", "op": "eq", "value": "p-1"}]},
        {
            "name": "res-2",
            "query": [{"field": "resource_id", "value": "res-2"}],
            "meters": ["e2e.sel.b"],
        },
    ]
    run_pipeline(real_tap_config(stack, selections=selections), namespaces, tmp_path)
    assert_loaded_as_stored(
        stack,
        namespaces,
        meters,
        keep=lambda s: (
            s["project_id"] == "p-1"
            or (s["counter_name"] == "e2e.sel.b" and s["resource_id"] == "res-2")
        ),
    )


def test_a_non_admin_user_exports_only_its_own_project(
    real_stack: RealStack, namespaces: dict[Target, str], tmp_path: Path
) -> None:
    stack = real_stack
    demo_project = stack.project_id(stack.demo)
    meters = ["e2e.demo.a", "e2e.demo.b"]
    samples = []
    for m, meter in enumerate(meters):
        for i in range(300):
            project = (demo_project, OTHER_PROJECT, stack.project_id(stack.admin))[i % 3]
            # The newest sample of each meter belongs to the demo project.
            samples.append(_sample(meter, T0 + timedelta(seconds=i - m), i, project=project))
    samples.append(_sample(meters[0], T0 + timedelta(hours=1), 999, project=demo_project))
    samples.append(_sample(meters[1], T0 + timedelta(hours=1), 999, project=demo_project))
    _seed(stack, samples)
    _prepare(namespaces, meters)
    config = real_tap_config(stack, stack.demo)
    run = run_pipeline(config, namespaces, tmp_path)
    assert {r["project_id"] for r in run.records} == {demo_project}
    assert_loaded_as_stored(
        stack, namespaces, meters, keep=lambda s: s["project_id"] == demo_project
    )


def test_a_non_admin_user_gets_meters_whose_newest_sample_is_another_projects(
    real_stack: RealStack, namespaces: dict[Target, str], tmp_path: Path
) -> None:
    stack = real_stack
    demo_project = stack.project_id(stack.demo)
    meters = ["e2e.demo.seen", "e2e.demo.hidden"]
    # One meter row (name, type, unit) per meter, as a real meter has.
    one_row = {"counter_type": "gauge", "counter_unit": "B"}
    samples = [
        {**_sample(meter, T0 + timedelta(seconds=i), i, project=demo_project), **one_row}
        for meter in meters
        for i in range(50)
    ]
    # The newest sample of e2e.demo.hidden belongs to another project.
    samples.append(
        {**_sample(meters[1], T0 + timedelta(hours=1), 999, project=OTHER_PROJECT), **one_row}
    )
    _seed(stack, samples)
    _prepare(namespaces, meters)
    run = run_pipeline(real_tap_config(stack, stack.demo), namespaces, tmp_path)
    assert Counter(r["counter_name"] for r in run.records) == {meters[0]: 50, meters[1]: 50}
    assert_loaded_as_stored(
        stack, namespaces, meters, keep=lambda s: s["project_id"] == demo_project
    )
