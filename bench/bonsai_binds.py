"""Baseline: raw bonsai, asyncio connect + simple bind, many at once, for a fixed time.

Each of ``concurrency`` tasks connects as one person after another (a new
connection each time, as the sidecar checks a password) and closes again.
No pool, no timeouts of the sidecar's own, bonsai's default connection class:
what bonsai itself can do against this slapd, on one event loop.

``python -m bench.bonsai_binds JOB RESULT`` (JSON files; see bench/driver_io.py).
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import bonsai

from bench.driver_io import DriverJob, read_job, write_result

OPERATION_TIMEOUT = 10.0


@dataclass
class Tally:
    latency_us: Counter[int] = field(default_factory=Counter)
    failures: int = 0
    examples: list[str] = field(default_factory=list)


async def _bind_in_turn(job: DriverJob, first: int, deadline: float, tally: Tally) -> None:
    people = job.people
    index = first
    while time.monotonic() < deadline:
        person = people[index % len(people)]
        index += 1
        client = bonsai.LDAPClient(job.ldap_url)
        client.set_credentials("SIMPLE", user=person.dn, password=person.password)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT):
                connection: Any = await client.connect(is_async=True, timeout=OPERATION_TIMEOUT)
        except (bonsai.LDAPError, TimeoutError, OSError) as error:
            tally.failures += 1
            if len(tally.examples) < 3:
                tally.examples.append(f"{type(error).__name__}: {error}"[:120])
            continue
        connection.close()
        tally.latency_us[int((time.perf_counter() - started) * 1e6)] += 1


async def measure(job: DriverJob) -> dict[str, Any]:
    tally = Tally()
    spacing = max(1, len(job.people) // job.concurrency)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    deadline = started + job.seconds
    await asyncio.gather(
        *(_bind_in_turn(job, task * spacing, deadline, tally) for task in range(job.concurrency))
    )
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
    return {
        "operations": sum(tally.latency_us.values()),
        "seconds": elapsed,
        "latency_us": tally.latency_us,
        "failures": tally.failures,
        "cpu_seconds": cpu,
        "examples": tally.examples,
    }


def main() -> int:
    job_path, result_path = sys.argv[1:3]
    write_result(result_path, asyncio.run(measure(read_job(job_path))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
