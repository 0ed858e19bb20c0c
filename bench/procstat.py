"""What the kernel counts for a process: CPU time and resident memory, from ``/proc``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# Fields after the command name in /proc/<pid>/stat, counted from "state" (field 3).
_UTIME_INDEX = 14 - 3
_STIME_INDEX = 15 - 3


def cpu_seconds(pid: int) -> float:
    """User plus system time of one process so far; 0 once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text("ascii")
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # The command name may hold spaces and parentheses: split after the last ")".
    fields = stat.rpartition(")")[2].split()
    ticks = int(fields[_UTIME_INDEX]) + int(fields[_STIME_INDEX])
    return ticks / CLOCK_TICKS_PER_SECOND


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (nginx's workers, for its master)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text("ascii").split()]
        except FileNotFoundError:
            continue
    return found


def total_cpu_seconds(pids: Iterable[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


@dataclass(frozen=True)
class Memory:
    """Resident memory of one process, in KiB: now and its peak so far."""

    resident_kib: int
    peak_resident_kib: int

    @property
    def resident_mb(self) -> float:
        return self.resident_kib * 1024 / 1e6

    @property
    def peak_mb(self) -> float:
        """In MB of 10^6 bytes: the stricter reading of a target in "MB"."""
        return self.peak_resident_kib * 1024 / 1e6


def memory(pid: int) -> Memory:
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text("ascii").splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])  # "12345 kB"
    return Memory(resident_kib=values["VmRSS"], peak_resident_kib=values["VmHWM"])
