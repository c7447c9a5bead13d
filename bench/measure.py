"""Run one command; write its wall time, CPU seconds and peak RSS as JSON to a file.

    measure.py REPORT -- COMMAND [ARGS...]

procs.py puts this small process between the benchmark and each measured command. Linux
carries the memory high-water mark of the process a child was forked from into the child's
ru_maxrss, so a command started straight from the benchmark (hundreds of MB once it has
checked the 1M records) would report the benchmark's peak instead of its own. Forked from
here, it reports at least this process's ~10 MB and otherwise its own peak.
stdin, stdout and stderr pass through untouched; the exit code is the command's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    report, separator, cmd = argv[0], argv[1], argv[2:]
    if separator != "--" or not cmd:
        print("usage: measure.py REPORT -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    started = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    Path(report).write_text(
        json.dumps(
            {
                "wall": wall,
                "user": ru.ru_utime,
                "system": ru.ru_stime,
                "rss_mb": ru.ru_maxrss / 1024,  # kilobytes on Linux
                "returncode": code,
            }
        ),
        encoding="utf-8",
    )
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
