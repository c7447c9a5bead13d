"""`tap-ceilometer --config c [--state s] | tee >(target-postgres) >(target-mysql)`, for tests.

The one pipeline runner of the test suite: the real tap command, its output copied line by line
to each real target (one or several), optionally killed with SIGKILL after N records.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from tests.support.tap import DIMENSION_STREAMS, prepared_tap_command
from tests.support.targets import (
    MYSQL_EXACT_MAPPER,
    REPO_ROOT,
    target_env,
    target_executable,
    write_target_config,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from tests.support.targets import Target


@dataclass
class PipelineRun:
    """How the tap ended, what it sent, what each target confirmed, and what the tap logged."""

    tap_returncode: int = 0
    tap_log: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)  # the samples'
    dimensions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    batches: int = 0  # BATCH messages (batch_config): their records are in files
    confirmed: dict[Target, list[dict[str, Any]]] = field(default_factory=dict)

    def state(self, target: Target) -> dict[str, Any] | None:
        """The last state `target` printed: where the next run starts."""
        states = self.confirmed[target]
        return states[-1] if states else None

    @property
    def confirmed_state(self) -> dict[str, Any] | None:
        """The last state the (only) target printed."""
        (target,) = self.confirmed
        return self.state(target)

    def ids(self) -> set[str]:
        return {record["message_id"] for record in self.records}


def _start_target(
    target: Target,
    namespace: str,
    workdir: Path,
    handles: list[IO[bytes]],
    *,
    mapper: bool = False,
) -> tuple[subprocess.Popen[bytes], list[subprocess.Popen[bytes]]]:
    """The real target, reading stdin (behind tap-ceilometer-mysql-exact with `mapper`); its
    stdout (STATE lines) and stderr go to files. Returns what reads the tap's lines, and every
    process to wait for."""
    out = (workdir / f"{target}.out").open("wb")
    err = (workdir / f"{target}.log").open("wb")
    handles += [out, err]
    config = str(write_target_config(target, namespace, workdir))
    entry = None
    if mapper:
        entry = subprocess.Popen(
            [str(MYSQL_EXACT_MAPPER), "--config", config],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=REPO_ROOT,
        )
    loader = subprocess.Popen(
        [str(target_executable(target)), "--config", config],
        stdin=entry.stdout if entry is not None else subprocess.PIPE,
        stdout=out,  # files, not pipes: a target can never block on its output
        stderr=err,
        env=target_env(target),
        cwd=REPO_ROOT,
    )
    if entry is None:
        return loader, [loader]
    assert entry.stdout is not None
    entry.stdout.close()  # the target holds it now
    return entry, [entry, loader]


def _forward(
    tap: subprocess.Popen[bytes],
    loaders: Iterable[subprocess.Popen[bytes]],
    run: PipelineRun,
    kill_after: int | None,
    kill_after_batches: int | None = None,
) -> None:
    """Copy each line of the tap's output to every target; SIGKILL the tap at `kill_after`
    sample records or `kill_after_batches` BATCH messages."""
    assert tap.stdout is not None
    for line in tap.stdout:
        for loader in loaders:
            assert loader.stdin is not None
            loader.stdin.write(line)
        message = json.loads(line)
        if message["type"] == "RECORD" and message["stream"] in DIMENSION_STREAMS:
            run.dimensions.setdefault(message["stream"], []).append(message["record"])
        elif message["type"] == "RECORD":
            run.records.append(message["record"])
            if len(run.records) == kill_after:
                tap.kill()
                return
        elif message["type"] == "BATCH":
            run.batches += 1
            if run.batches == kill_after_batches:
                tap.kill()
                return


def run_pipeline(
    config: Mapping[str, Any],
    namespaces: Mapping[Target, str],
    workdir: Path,
    *,
    state: Mapping[str, Any] | None = None,
    kill_after: int | None = None,
    mysql_exact: bool = False,
    catalog: Mapping[str, Any] | None = None,
    kill_after_batches: int | None = None,
) -> PipelineRun:
    """Runs the tap (its own process) into each target, writing their files in workdir.

    Each line the tap writes goes to every target, in order. With `kill_after`, the tap gets
    SIGKILL right after that many sample RECORD lines (no chance to write anything more) and the
    targets then see the end of their input, as in a pipeline whose tap died. The targets
    must succeed; how the tap ended is in `tap_returncode`. With `mysql_exact`, target-mysql
    reads through tap-ceilometer-mysql-exact, as the product's MySQL pipe does.
    """
    command = prepared_tap_command(workdir, config, state, catalog)
    run = PipelineRun()
    tap_log = workdir / "tap.log"
    loaders: dict[Target, subprocess.Popen[bytes]] = {}
    waits: dict[Target, list[subprocess.Popen[bytes]]] = {}
    handles: list[IO[bytes]] = []
    try:
        for target, namespace in namespaces.items():
            loaders[target], waits[target] = _start_target(
                target, namespace, workdir, handles, mapper=mysql_exact and target == "target-mysql"
            )
        tap_err = tap_log.open("wb")
        handles.append(tap_err)
        tap = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=tap_err)
        _forward(tap, loaders.values(), run, kill_after, kill_after_batches)
        run.tap_returncode = tap.wait(timeout=300)
        for target, loader in loaders.items():
            assert loader.stdin is not None
            loader.stdin.close()
            for process in waits[target]:
                assert process.wait(timeout=300) == 0, (workdir / f"{target}.log").read_text(
                    errors="replace"
                )[-4000:]
    finally:
        for process in (p for ps in waits.values() for p in ps):
            if process.poll() is None:
                process.kill()
                process.wait()
        for handle in handles:
            handle.close()
    run.tap_log = tap_log.read_text(encoding="utf-8", errors="replace")
    for target in namespaces:
        lines = (workdir / f"{target}.out").read_text(encoding="utf-8").splitlines()
        run.confirmed[target] = [json.loads(line) for line in lines if line.strip()]
    return run
