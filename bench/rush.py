"""The morning rush: every person logs in once and loads the page twice more, 64 at once.

Each of ``clients`` clients keeps one keep-alive connection (a new one when
nginx closes it) and takes the next person from a shared list until none is
left: it sends that person's request, then the same request ``loads - 1``
times more (the reloads), each after the answer before. Every answer's status
is checked. The round's time is the time until the last person is done: what
a school waits for at 8 o'clock. Latency is per answer.

``python -m bench.rush JOB RESULT`` (JSON files; bench/driver_io.py's result).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.driver_io import write_result
from bench.fixed_rate import ANSWER_TIMEOUT, HEADER_LIMIT, ProtocolError, read_answer
from bench.prepared import read_requests

CLIENTS = 64
LOADS_PER_PERSON = 3  # the login and two reloads


@dataclass(frozen=True)
class RushJob:
    host: str
    port: int
    requests_file: str  # one request per person
    status: int  # what every answer must be
    clients: int = CLIENTS
    loads: int = LOADS_PER_PERSON


@dataclass
class Tally:
    latency_us: Counter[int] = field(default_factory=Counter)
    unexpected: int = 0
    socket_errors: int = 0
    timeouts: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, example: str) -> None:
        if len(self.examples) < 3:
            self.examples.append(example[:120])


class Client:
    """One browser-like client: one connection at a time, one request at a time."""

    def __init__(self, job: RushJob, tally: Tally) -> None:
        self._job = job
        self._tally = tally
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _send(self, request: bytes) -> int:
        if self._streams is None:
            self._streams = await asyncio.open_connection(
                self._job.host, self._job.port, limit=HEADER_LIMIT
            )
        reader, writer = self._streams
        writer.write(request)
        status, reusable = await read_answer(reader)
        if not reusable:
            self.close()
        return status

    async def load(self, request: bytes) -> None:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                status = await self._send(request)
        except TimeoutError:
            self.close()
            self._tally.timeouts += 1
            return
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ProtocolError,
        ) as e:
            self.close()
            self._tally.socket_errors += 1
            self._tally.note(f"{type(e).__name__}: {e}")
            return
        self._tally.latency_us[int((loop.time() - sent) * 1e6)] += 1
        if status != self._job.status:
            self._tally.unexpected += 1
            self._tally.note(f"status {status}")

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _one_client(job: RushJob, people: Iterator[bytes], tally: Tally) -> None:
    client = Client(job, tally)
    try:
        # One event loop: taking the next person from the shared iterator is never raced.
        for request in people:
            for _ in range(job.loads):
                await client.load(request)
    finally:
        client.close()


async def measure(job: RushJob) -> dict[str, Any]:
    people = iter(read_requests(Path(job.requests_file)))
    tally = Tally()
    loop = asyncio.get_running_loop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = loop.time()
    await asyncio.gather(*(_one_client(job, people, tally) for _ in range(job.clients)))
    elapsed = loop.time() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    failures = tally.unexpected + tally.socket_errors + tally.timeouts
    return {
        # Answers with a wrong status count as operations too: they were answered.
        "operations": sum(tally.latency_us.values()),
        "seconds": elapsed,
        "latency_us": tally.latency_us,
        "unexpected": tally.unexpected,
        "socket_errors": tally.socket_errors,
        "timeouts": tally.timeouts,
        "failures": failures,
        "cpu_seconds": (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime),
        "examples": tally.examples,
    }


def write_job(path: Path, job: RushJob) -> None:
    path.write_text(json.dumps(job.__dict__), "utf-8")


def main() -> int:
    job_path, result_path = sys.argv[1:3]
    job = RushJob(**json.loads(Path(job_path).read_text("utf-8")))
    write_result(result_path, asyncio.run(measure(job)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
