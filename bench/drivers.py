"""Running the load drivers that are processes of their own, one round each.

The two LDAP baselines and the fixed-rate client are started per round with
a job file and leave a result file (bench/driver_io.py); each times itself
and reports its own CPU time (``Sample.load_cpu``). What else a round cost
(nginx, the sidecar, slapd) the caller measures around it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.samples import Sample

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = sys.executable
# Debian's python3-ldap is installed for Debian's python, not for the virtualenv.
SYSTEM_PYTHON = "/usr/bin/python3"
# A driver needs a moment beyond its own time: to start, to connect, to finish.
GRACE_SECONDS = 60


class DriverError(RuntimeError):
    """A driver did not run to its end."""


def run_driver(
    python: str, module: str, job_file: Path, result_file: Path, seconds: float
) -> Sample:
    result_file.unlink(missing_ok=True)
    # Every argument is the bench's own: an interpreter, a module of it, files it wrote.
    finished = subprocess.run(  # noqa: S603
        [python, "-m", module, str(job_file), str(result_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + GRACE_SECONDS,
        check=False,
    )
    if finished.returncode != 0 or not result_file.exists():
        raise DriverError(
            f"{module} failed ({finished.returncode}): {finished.stderr.strip()[-2000:]}"
        )
    return sample_of(json.loads(result_file.read_text("utf-8")))


def sample_of(result: dict[str, Any]) -> Sample:
    """A driver's result (bench/driver_io.py) as one round."""
    histogram = _histogram(result["latency_us"])
    failures = int(result.get("failures", 0))
    return Sample(
        requests=int(result["operations"]),
        seconds=float(result["seconds"]),
        latency_us=histogram,
        # The LDAP drivers tell failures apart only in their examples.
        unexpected=int(result.get("unexpected", failures)),
        socket_errors=int(result.get("socket_errors", 0)),
        timeouts=int(result.get("timeouts", 0)),
        load_cpu=float(result["cpu_seconds"]),
        examples=[str(example) for example in result.get("examples", [])],
        schedule_lag_us=_histogram(result.get("schedule_lag_us", {})),
    )


def _histogram(counts: dict[str, int]) -> Counter[int]:
    return Counter(
        {int(value): int(count) for value, count in counts.items()}
    )  # JSON keys are text
