"""`tap-ceilometer --config c [--state s] | target --config t`, as a user runs it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.support.tap import prepared_tap_command
from tests.support.targets import run_target

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.targets import Target


@dataclass
class PipelineRun:
    """How the tap ended, what the target confirmed, and what the tap logged."""

    tap_returncode: int
    states: list[dict[str, Any]]
    tap_log: str

    @property
    def confirmed_state(self) -> dict[str, Any] | None:
        """The last state the target printed: where the next run starts."""
        return self.states[-1] if self.states else None


def run_pipeline(
    target: Target,
    namespace: str,
    config: dict[str, Any],
    workdir: Path,
    state: dict[str, Any] | None = None,
) -> PipelineRun:
    """Runs the tap (its own process) into the real target, writing their files in workdir."""
    command = prepared_tap_command(workdir, config, state)
    log_path = workdir / "tap.log"
    with log_path.open("wb") as log:
        tap = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
        assert tap.stdout is not None
        loaded = run_target(target, namespace, tap.stdout)
        code = tap.wait(timeout=300)
    return PipelineRun(code, loaded.states, log_path.read_text(encoding="utf-8"))
