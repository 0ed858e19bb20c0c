"""A load at a fixed rate (open loop): what latency looks like at a given load.

wrk keeps a fixed number of requests in flight and sends the next as soon as
an answer comes (closed loop): when the server stalls, wrk stalls with it and
the requests it would have sent meanwhile are never timed. Here requests
follow a schedule (``rate`` per second, evenly spaced) whatever the answers
do, each on a free keep-alive connection or a new one (up to
``max_connections``, then it waits for one): a stall is paid for by every
request sent during it, as with wrk2 (which Debian does not package).

A request is timed from the moment this client sends it, waiting for a free
connection included. Not from its place in the schedule, as wrk2 does: this
loop's timers wake in steps of a millisecond, and that lateness is the
client's, not the server's. How late the client was is reported apart
(``schedule_lag_us``), so that a client falling behind shows.

It reads the same prepared requests as wrk and checks each answer's status.
``python -m bench.fixed_rate JOB RESULT`` (JSON files).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.driver_io import write_result
from bench.prepared import read_requests

ANSWER_TIMEOUT = 10.0
HEADER_LIMIT = 1 << 17  # a redirect's Location holds a whole token twice


@dataclass(frozen=True)
class FixedRateJob:
    host: str
    port: int
    requests_file: str
    rate: float
    seconds: float
    status: int
    max_connections: int


@dataclass
class Tally:
    latency_us: Counter[int] = field(default_factory=Counter)
    schedule_lag_us: Counter[int] = field(default_factory=Counter)
    unexpected: int = 0
    socket_errors: int = 0
    timeouts: int = 0
    examples: list[str] = field(default_factory=list)


class ProtocolError(Exception):
    """An answer this client cannot read as HTTP/1.1."""


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.close()


class Connections:
    """Keep-alive connections to nginx, at most ``limit`` of them."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self._host = host
        self._port = port
        self._limit = limit
        self._open = 0
        # Idle connections; None stands for a slot freed by a connection that broke.
        self._idle: asyncio.Queue[Connection | None] = asyncio.Queue()

    async def _new(self) -> Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port, limit=HEADER_LIMIT)
        return Connection(reader, writer)

    async def take(self) -> Connection:
        try:
            idle = self._idle.get_nowait()
        except asyncio.QueueEmpty:
            if self._open >= self._limit:
                idle = await self._idle.get()
            else:
                self._open += 1
                idle = None
        if idle is not None:
            return idle
        try:
            return await self._new()
        except BaseException:
            self._idle.put_nowait(None)
            raise

    def give_back(self, connection: Connection) -> None:
        self._idle.put_nowait(connection)

    def drop(self, connection: Connection) -> None:
        connection.close()
        self._idle.put_nowait(None)

    def close(self) -> None:
        while not self._idle.empty():
            connection = self._idle.get_nowait()
            if connection is not None:
                connection.close()


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of one answer, read to its end, and whether the connection may be reused."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ProtocolError(f"status line {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF; the last is empty
            if size == 0:
                break
    reusable = headers.get("connection", "").lower() != "close"
    return int(parts[1]), reusable


async def _one(
    job: FixedRateJob, connections: Connections, request: bytes, due: float, tally: Tally
) -> None:
    loop = asyncio.get_running_loop()
    sent = loop.time()
    tally.schedule_lag_us[int((sent - due) * 1e6)] += 1
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT):
            connection = await connections.take()
            try:
                connection.writer.write(request)
                status, reusable = await read_answer(connection.reader)
            except BaseException:
                connections.drop(connection)
                raise
    except TimeoutError:
        tally.timeouts += 1
        return
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError) as e:
        tally.socket_errors += 1
        if len(tally.examples) < 3:
            tally.examples.append(f"{type(e).__name__}: {e}"[:120])
        return
    if reusable:
        connections.give_back(connection)
    else:
        connections.drop(connection)
    tally.latency_us[int((loop.time() - sent) * 1e6)] += 1
    if status != job.status:
        tally.unexpected += 1
        if len(tally.examples) < 3:
            tally.examples.append(f"status {status}")


async def measure(job: FixedRateJob) -> dict[str, Any]:
    requests = read_requests(Path(job.requests_file))
    connections = Connections(job.host, job.port, job.max_connections)
    tally = Tally()
    loop = asyncio.get_running_loop()
    total = int(job.rate * job.seconds)
    in_flight: set[asyncio.Task[None]] = set()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = loop.time() + 0.05
    for index in range(total):
        due = start + index / job.rate
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(
            _one(job, connections, requests[index % len(requests)], due, tally)
        )
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight, timeout=ANSWER_TIMEOUT * 2)
    elapsed = loop.time() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    connections.close()
    return {
        "operations": sum(tally.latency_us.values()),
        "seconds": elapsed,
        "latency_us": tally.latency_us,
        "schedule_lag_us": tally.schedule_lag_us,
        "unexpected": tally.unexpected,
        "socket_errors": tally.socket_errors,
        "timeouts": tally.timeouts,
        "failures": tally.unexpected + tally.socket_errors + tally.timeouts,
        "cpu_seconds": (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime),
        "examples": tally.examples,
    }


def write_job(path: Path, job: FixedRateJob) -> None:
    path.write_text(json.dumps(job.__dict__), "utf-8")


def main() -> int:
    job_path, result_path = sys.argv[1:3]
    job = FixedRateJob(**json.loads(Path(job_path).read_text("utf-8")))
    write_result(result_path, asyncio.run(measure(job)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
