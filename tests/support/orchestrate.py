"""The Dagster of orchestrate/, in the venv .ci/orchestrate/setup.sh builds, for the tests."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.targets import REPO_ROOT

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFINITIONS = REPO_ROOT / "orchestrate" / "definitions.py"
REQUIREMENTS = REPO_ROOT / "orchestrate" / "requirements.txt"
SETUP_COMMAND = "bash .ci/orchestrate/setup.sh"


def dagster_venv() -> Path:
    """The cached venv (the rule of .ci/orchestrate/setup.sh); an AssertionError, never a skip,
    when it is missing."""
    base = os.environ.get("TAP_CEILOMETER_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "tap-ceilometer"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    venv = root / "orchestrate" / f"dagster-{digest}"
    assert (venv / ".complete").is_file(), f"no Dagster venv at {venv}: run `{SETUP_COMMAND}`"
    return venv


def execute_job(
    run_config: Mapping[str, Any], workdir: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`dagster job execute -f orchestrate/definitions.py -j ceilometer_export -c <config>`,
    with an instance of its own in `workdir`."""
    home = workdir / "dagster-home"
    home.mkdir(parents=True, exist_ok=True)
    config = workdir / "run-config.json"  # JSON is YAML
    config.write_text(json.dumps(run_config), encoding="utf-8")
    command = [
        str(dagster_venv() / "bin" / "dagster"),
        *("job", "execute", "-f", str(DEFINITIONS), "-j", "ceilometer_export", "-c", str(config)),
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd=workdir,
        env={**os.environ, "DAGSTER_HOME": str(home), **(env or {})},
    )


def validate_config(run_config: Mapping[str, Any], executor: str) -> list[str]:
    """The errors Dagster finds in a run config for `executor` (empty: valid), without a run."""
    script = (
        "import json, sys, runpy\n"
        "import dagster\n"
        f"defs = runpy.run_path({str(DEFINITIONS)!r})\n"
        "try:\n"
        "    job = defs['defs'].resolve_job_def('ceilometer_export')\n"
        "    dagster.validate_run_config(job, json.load(sys.stdin))\n"
        "except dagster.DagsterInvalidConfigError as exc:\n"
        "    print(json.dumps([e.message for e in exc.errors]))\n"
        "else:\n"
        "    print('[]')\n"
    )
    done = subprocess.run(
        [str(dagster_venv() / "bin" / "python"), "-c", script],
        input=json.dumps(run_config),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ORCHESTRATE_EXECUTOR": executor},
    )
    errors: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return errors
