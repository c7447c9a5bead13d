"""Dagster definitions for tap-ceilometer: one export cut into n partitions, run in parallel.

`ceilometer_export` fans one export (a tap config and a target) out into `partitions` ops,
each running `tap-ceilometer --config <tap config + partition i of n> --state <its state> |
<target> --config <target config>`. Every partition keeps its own state file, written each time
the target confirms a state, so a retried or later run goes on from what the target committed:
a failed op is retried (RetryPolicy) and loses and doubles nothing. The n partitions together
export every meter once (tap setting `partition`).

Run it on one machine (the multiprocess executor, one process per op):

    DAGSTER_HOME=~/dagster dagster job execute -f orchestrate/definitions.py \\
        -j ceilometer_export -c orchestrate/run-config.example.yaml

and across machines with Dagster's own executors: `ORCHESTRATE_EXECUTOR=celery` (dagster-celery,
workers on each machine) or `ORCHESTRATE_EXECUTOR=k8s` (dagster-k8s, one Kubernetes job per op),
with the `execution` section of orchestrate/celery.yaml or orchestrate/k8s.yaml
(orchestrate/README.md). Only Dagster and the standard library are imported here: the tap and
the target are commands, each in its own environment.
"""

# No `from __future__ import annotations`: Dagster reads the ops' annotations at import.
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dagster import (
    Backoff,
    ConfigurableResource,
    Definitions,
    DynamicOut,
    DynamicOutput,
    ExecutorDefinition,
    Failure,
    In,
    Jitter,
    Nothing,
    OpExecutionContext,
    Out,
    RetryPolicy,
    job,
    multiprocess_executor,
    op,
)

LOG_TAIL = 3000  # characters of a failed command's log shown in the failure


class CeilometerExport(ConfigurableResource["CeilometerExport"]):
    """One export: the tap's config, the target, how many partitions, where states are kept."""

    tap_config: str  # the tap's JSON config (credentials: keep it readable by the runner only)
    target_config: str  # the target's JSON config
    state_dir: str  # one state file per partition: partition-<i>-of-<n>.json
    partitions: int = 3
    tap_command: list[str] = ["tap-ceilometer"]  # noqa: RUF012 - pydantic copies defaults
    target_command: list[str] = ["target-postgres"]  # noqa: RUF012
    target_env: dict[str, str] = {}  # noqa: RUF012 - e.g. SINGER_SDK_LOG_CONFIG, PGOPTIONS
    # Run once the tables exist, before the partitions: e.g. psql with
    # config/target-postgres-backfill.sql for a large backfill (README "Large backfills").
    ready_command: list[str] = []  # noqa: RUF012

    def state_file(self, index: int) -> Path:
        # The count is in the name: another count shares the meters out anew (a new export).
        return Path(self.state_dir) / f"partition-{index}-of-{self.partitions}.json"


@op(out=Out(Nothing))
def prepare_tables(context: OpExecutionContext, export: CeilometerExport) -> None:
    """`tap --test=schema | target`: the schema and every table (each SCHEMA, no RECORD)
    before the partitions start, so that parallel targets do not race to create them."""
    state_dir = Path(export.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    codes, logs = _pipe(
        [*export.tap_command, "--config", export.tap_config, "--test=schema"],
        export,
        state_dir / "prepare",
        on_state=lambda _line: None,
    )
    if any(codes):
        raise Failure(
            description=f"Preparing the tables failed (tap, target exit codes {codes}).",
            metadata={name: _tail(path) for name, path in logs.items()},
        )
    context.log.info("The target's schema and tables exist.")
    if export.ready_command:
        # The deployment's own command, as the tap and target commands are.
        ready = subprocess.run(export.ready_command, capture_output=True, text=True, check=False)  # noqa: S603
        if ready.returncode:
            raise Failure(
                description=f"The ready command exited {ready.returncode}.",
                metadata={"output": (ready.stdout + ready.stderr)[-LOG_TAIL:]},
            )
        context.log.info(f"Ready command done: {' '.join(export.ready_command)}")


@op(ins={"ready": In(Nothing)}, out=DynamicOut(int))
def plan_partitions(export: CeilometerExport) -> Any:
    """One output per partition: Dagster maps the export over them, in parallel."""
    if export.partitions < 1:
        raise Failure(description=f"partitions must be at least 1, not {export.partitions}.")
    for index in range(export.partitions):
        yield DynamicOutput(index, mapping_key=f"partition_{index}")


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)  # a reader, or a kill, sees the old state or the new one


def _pipe(
    tap_cmd: list[str], export: CeilometerExport, logs_at: Path, on_state: Callable[[bytes], None]
) -> tuple[tuple[int, int], dict[str, Path]]:
    """`tap_cmd | target`, each state line the target prints handed to `on_state`; the exit
    codes, and the two logs (`<logs_at>.tap.log`, `.target.log`)."""
    logs = {"tap log": Path(f"{logs_at}.tap.log"), "target log": Path(f"{logs_at}.target.log")}
    target_cmd = [*export.target_command, "--config", export.target_config]
    with logs["tap log"].open("wb") as tap_err, logs["target log"].open("wb") as tgt_err:
        # The commands are the deployment's own configuration, not outside input.
        tap = subprocess.Popen(tap_cmd, stdout=subprocess.PIPE, stderr=tap_err)  # noqa: S603
        target = subprocess.Popen(  # noqa: S603
            target_cmd,
            stdin=tap.stdout,
            stdout=subprocess.PIPE,
            stderr=tgt_err,
            env={**os.environ, **export.target_env},
        )
        assert tap.stdout is not None
        assert target.stdout is not None
        tap.stdout.close()  # the target holds the only read end: the tap sees EPIPE if it dies
        for line in target.stdout:  # each line: a state the target has committed
            if line.strip():
                json.loads(line)  # a state, or the target is not a Singer target
                on_state(line)
        target_code, tap_code = target.wait(), tap.wait()
    return (tap_code, target_code), logs


def _tail(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:] if path.exists() else ""


@op(
    retry_policy=RetryPolicy(
        max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
    )
)
def export_partition(
    context: OpExecutionContext, export: CeilometerExport, index: int
) -> dict[str, Any]:
    """tap (partition `index`) | target, from and to this partition's state file."""
    state_dir = Path(export.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    state_file = export.state_file(index)
    tap_config = json.loads(Path(export.tap_config).read_text(encoding="utf-8"))
    tap_config["partition"] = {"index": index, "count": export.partitions}
    config_file = state_dir / f".tap-config-{index}.json"
    config_file.touch(mode=0o600)
    config_file.write_text(json.dumps(tap_config), encoding="utf-8")
    tap_cmd = [*export.tap_command, "--config", str(config_file)]
    if state_file.exists():
        tap_cmd += ["--state", str(state_file)]
    attempt = context.retry_number + 1
    resumed = state_file.exists()
    logs_at = state_dir / f"partition-{index}.attempt-{attempt}"
    started = time.time()
    context.log.info(
        f"Partition {index} of {export.partitions}, attempt {attempt}: "
        f"{'from ' + state_file.name if resumed else 'from the start'}."
    )
    states = 0

    def confirmed(line: bytes) -> None:
        nonlocal states
        _write_atomically(state_file, line.decode())
        states += 1

    (tap_code, target_code), logs = _pipe(tap_cmd, export, logs_at, on_state=confirmed)
    finished = time.time()
    record = {
        "index": index,
        "attempt": attempt,
        "resumed": resumed,
        "started": started,
        "finished": finished,
    }
    with (state_dir / f"partition-{index}.attempts.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({**record, "tap": tap_code, "target": target_code}) + "\n")
    if tap_code or target_code:
        raise Failure(
            description=(
                f"Partition {index}: the tap exited {tap_code}, the target {target_code}; "
                f"the next try resumes from {state_file.name}."
            ),
            metadata={name: _tail(path) for name, path in logs.items()},
        )
    context.log.info(
        f"Partition {index}: done in {finished - started:.1f} s, {states} states confirmed."
    )
    return {**record, "state_file": str(state_file)}


@op
def export_done(context: OpExecutionContext, partitions: list[dict[str, Any]]) -> None:
    """Every partition finished: the whole export is in the target."""
    slowest = max(p["finished"] - p["started"] for p in partitions)
    context.log.info(f"{len(partitions)} partitions exported; the slowest took {slowest:.1f} s.")


def _executor() -> ExecutorDefinition:
    """The multiprocess executor on one machine; Celery or Kubernetes across machines."""
    chosen = os.environ.get("ORCHESTRATE_EXECUTOR", "multiprocess")
    if chosen == "celery":
        from dagster_celery import celery_executor  # noqa: PLC0415 - only where chosen

        return celery_executor
    if chosen == "k8s":
        from dagster_k8s import k8s_job_executor  # noqa: PLC0415

        return k8s_job_executor
    if chosen != "multiprocess":
        msg = f"ORCHESTRATE_EXECUTOR must be multiprocess, celery or k8s, not {chosen!r}."
        raise ValueError(msg)
    return multiprocess_executor


@job(executor_def=_executor())
def ceilometer_export() -> None:
    partitions = plan_partitions(ready=prepare_tables())
    export_done(partitions.map(export_partition).collect())


defs = Definitions(
    jobs=[ceilometer_export],
    resources={"export": CeilometerExport.configure_at_launch()},
)
