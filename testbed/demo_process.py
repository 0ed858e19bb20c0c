"""``make demo`` as a process: where it runs from, and its banner once it is up."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def wait_for_banner(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    seen = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        if "Ctrl-C stops everything" in line:
            return seen
    raise AssertionError(f"no banner; output so far:\n{seen}")
