"""Just enough HTTP/1.1 over asyncio for the load: keep-alive connections to nginx
from a few loopback addresses, the answer's status, headers and body.

A connection that nginx closed while it sat idle is the client's race, not a
failed request: a browser sends again on a new connection, and so does this
client (once, and only when nothing of the answer had arrived).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

HEADER_LIMIT = 1 << 17  # a room redirect's Location holds a whole token twice
ANSWER_TIMEOUT = 30.0  # above nginx's proxy_read_timeout (15 s): nginx answers first
# How long a request may wait for one of the pool's connections. One that
# waited longer was never sent: the client's backlog, not the server's failure.
QUEUE_TIMEOUT = 30.0


class NoConnection(Exception):
    """Every connection of the pool stayed busy for QUEUE_TIMEOUT: the request was not sent."""


class ProtocolError(Exception):
    """An answer this client cannot read as HTTP/1.1."""


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    reusable: bool

    def header(self, name: str) -> str:
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), "")

    def all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: bool = False

    def close(self) -> None:
        self.writer.close()


def request_bytes(
    method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ProtocolError(f"status line {lines[0][:60]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers.append((name.strip().lower(), value.strip()))
    found = dict(headers)
    if "content-length" in found:
        body = await reader.readexactly(int(found["content-length"]))
    elif "chunked" in found.get("transfer-encoding", "").lower():
        pieces = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            pieces.append((await reader.readexactly(size + 2))[:size])
            if size == 0:
                break
        body = b"".join(pieces)
    else:
        body = b""
    reusable = found.get("connection", "").lower() != "close"
    return Answer(int(parts[1]), headers, body, reusable)


@dataclass
class Pool:
    """At most ``limit`` keep-alive connections to ``host``:``port``, spread over
    ``sources`` (loopback addresses the connections come from)."""

    host: str
    port: int
    limit: int
    sources: tuple[str, ...] = ("127.0.0.1",)
    _open: int = 0
    _made: int = 0
    _idle: asyncio.Queue[Connection | None] = field(default_factory=asyncio.Queue)

    async def _new(self) -> Connection:
        source = self.sources[self._made % len(self.sources)]
        self._made += 1
        reader, writer = await asyncio.open_connection(
            self.host, self.port, limit=HEADER_LIMIT, local_addr=(source, 0)
        )
        return Connection(reader, writer)

    async def _slot(self) -> Connection | None:
        """An idle connection, or None for room to open a new one."""
        try:
            return self._idle.get_nowait()
        except asyncio.QueueEmpty:
            if self._open < self.limit:
                self._open += 1
                return None
        try:
            async with asyncio.timeout(QUEUE_TIMEOUT):
                return await self._idle.get()
        except TimeoutError:
            raise NoConnection from None

    async def _take(self) -> Connection:
        idle = await self._slot()
        if idle is not None:
            return idle
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                return await self._new()
        except BaseException:
            self._idle.put_nowait(None)
            raise

    def _drop(self, connection: Connection) -> None:
        connection.close()
        self._idle.put_nowait(None)

    async def send(self, raw: bytes) -> Answer:
        for attempt in range(2):
            connection = await self._take()
            reused = connection.used
            try:
                async with asyncio.timeout(ANSWER_TIMEOUT):
                    connection.writer.write(raw)
                    answer = await read_answer(connection.reader)
            except TimeoutError:
                self._drop(connection)
                raise
            except (OSError, asyncio.IncompleteReadError) as error:
                self._drop(connection)
                nothing_read = not isinstance(error, asyncio.IncompleteReadError) or (
                    not error.partial
                )
                if reused and nothing_read and attempt == 0:
                    continue  # closed while idle: send again on a new connection
                raise
            except BaseException:
                self._drop(connection)
                raise
            connection.used = True
            if answer.reusable:
                self._idle.put_nowait(connection)
            else:
                self._drop(connection)
            return answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        while not self._idle.empty():
            connection = self._idle.get_nowait()
            if connection is not None:
                connection.close()


async def send_once(host: str, port: int, raw: bytes, source: str) -> Answer:
    """One request on a connection of its own, from ``source``."""
    async with asyncio.timeout(ANSWER_TIMEOUT):
        reader, writer = await asyncio.open_connection(
            host, port, limit=HEADER_LIMIT, local_addr=(source, 0)
        )
        try:
            writer.write(raw)
            return await read_answer(reader)
        finally:
            writer.close()
