"""The daemon's log lines: written whole, once per turn of the event loop for the
decision lines; nothing a request carries can start a line of its own."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from urllib.parse import quote, unquote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient, AiohttpServer

from sidecar.config.settings import LogFormat
from sidecar.web.logs import (
    ATOMIC_WRITE_BYTES,
    MAX_VALUE,
    DecisionLog,
    JsonFormatter,
    PathOnlyAccessLogger,
    PlainFormatter,
)


class Recording(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


async def test_lines_come_out_in_pieces_a_pipe_writes_whole() -> None:
    stream = Recording()
    log = DecisionLog("plain", stream=stream)
    for number in range(200):
        log.write("decision", user=f"user{number}", reason="x" * 100)
    assert stream.writes == []  # not yet: once per turn of the loop
    await asyncio.sleep(0)
    assert len(stream.writes) > 1
    for piece in stream.writes:
        assert len(piece.encode()) <= ATOMIC_WRITE_BYTES
        assert piece.endswith("\n")
    lines = stream.getvalue().splitlines()
    assert [line.split(" user=")[1].split()[0] for line in lines] == [
        f"user{number}" for number in range(200)
    ]


def test_a_loop_that_ended_before_its_flush_does_not_silence_the_next() -> None:
    stream = Recording()
    log = DecisionLog("json", stream=stream)

    async def write_and_stop() -> None:
        log.write("decision", user="first")
        asyncio.get_running_loop().stop()

    loop = asyncio.new_event_loop()
    task = loop.create_task(write_and_stop())
    loop.run_forever()  # stops before the scheduled flush runs
    assert task.done()
    loop.close()

    async def write() -> None:
        log.write("decision", user="second")
        await asyncio.sleep(0)

    asyncio.run(write())
    assert '"user": "first"' in stream.getvalue()
    assert '"user": "second"' in stream.getvalue()


# What an outsider sends to write a line of her own: a complete decision line,
# after a line feed, a carriage return (a terminal draws it over the line's
# start), or a terminal escape that clears the line first.
FORGED = (
    "2026-11-30T07:58:02.114Z INFO sidecar.decisions: decision outcome=token "
    "user=anna.mueller role=teacher room=mathe7b method=session reason=- ms=1.9 address=203.0.113.7"
)
BREAKS = ["\n", "\r", "\r\n", "\x1b[2K\r", "\x1b[31m", "\u2028", "\x85", "\u202e"]
UNPRINTABLE = ("\n", "\r", "\x1b", "\u2028", "\x85", "\u202e")


def assert_one_line_of_its_own(text: str) -> None:
    """``text`` is log output in which no line starts with, or hides behind, the forged one."""
    for character in UNPRINTABLE:
        assert character not in text.rstrip("\n"), repr(text)
    assert not text.startswith("2026-11-30T07:58:02.114Z"), text


def plain_line(message: str, *args: object, error: BaseException | None = None) -> str:
    record = logging.LogRecord(
        "sidecar.web.pages",
        logging.INFO,
        __file__,
        1,
        message,
        args,
        None if error is None else (type(error), error, error.__traceback__),
    )
    return PlainFormatter().format(record)


@pytest.mark.parametrize("line_break", BREAKS)
def test_a_message_argument_starts_no_line(line_break: str) -> None:
    """A warning that names a path, a user or a room (anything a request carries)."""
    line = plain_line("unreadable form posted to %s", f"/auth/login{line_break}{FORGED}")
    assert_one_line_of_its_own(line)
    assert "unreadable form posted to /auth/login" in line
    line = plain_line("session of %r ended", f"anna{line_break}{FORGED}")
    assert_one_line_of_its_own(line)


@pytest.mark.parametrize("line_break", BREAKS)
def test_an_exception_text_starts_no_line(line_break: str) -> None:
    try:
        raise ValueError(f"bad value{line_break}{FORGED}")
    except ValueError as error:
        line = plain_line("%s %s failed", "POST", "/auth/login", error=error)
    assert_one_line_of_its_own(line)
    # The whole traceback, on the line: the place it was raised, and what.
    assert 'exception="Traceback (most recent call last):\\n' in line
    assert "test_logs.py" in line
    assert "ValueError: bad value" in line


@pytest.mark.parametrize("log_format", ["plain", "json"])
@pytest.mark.parametrize("line_break", BREAKS)
def test_a_decision_value_starts_no_line(log_format: LogFormat, line_break: str) -> None:
    stream = io.StringIO()
    DecisionLog(log_format, stream=stream).write(
        "decision", outcome="challenge", user=f"x{line_break}{FORGED}", room=f"r{line_break}x"
    )
    output = stream.getvalue()
    assert_one_line_of_its_own(output)
    assert output.count("\n") == 1
    if log_format == "json":
        assert json.loads(output)["user"] == f"x{line_break}{FORGED}"[:MAX_VALUE] + "..."


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """What aiohttp's access logger writes, through the daemon's formatter."""
    logger = logging.getLogger("aiohttp.access")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PlainFormatter())
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.setLevel(level)
    logger.removeHandler(handler)


async def serve_pages(
    aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient
) -> TestClient[web.Request, None]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/auth/{name}", page)
    app.router.add_get("/auth/guest/{value}", page)
    server = await aiohttp_server(app, access_log_class=PathOnlyAccessLogger)
    return await aiohttp_client(server)


@pytest.mark.parametrize(
    "escape", ["%0a", "%0d", "%0d%0a", "%1b%5b2K%0d", "%1b%5b31m", "%e2%80%a8", "%c2%85"]
)
async def test_the_access_log_writes_no_line_of_a_path(
    aiohttp_server: AiohttpServer,
    aiohttp_client: AiohttpClient,
    access_lines: io.StringIO,
    escape: str,
) -> None:
    client = await serve_pages(aiohttp_server, aiohttp_client)
    # (The start of the line: a path is logged up to MAX_VALUE characters.)
    path = "/auth/x" + escape + quote(FORGED[:80], safe="")
    assert (await client.get(path)).status == 200
    assert (await client.get("/auth/login?next=%2Fx%3Fjwt%3Dsecret")).status == 200
    lines = access_lines.getvalue().splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        assert_one_line_of_its_own(line)
        assert re.fullmatch(
            r"\S+Z INFO aiohttp\.access: access method=GET path=\S+ "
            r"status=\d+ ms=[\d.]+",
            line,
        ), line
    # The path as it was sent, still percent-encoded; never the query string.
    logged = json.loads(lines[0].split(" path=")[1].split(" status=")[0])
    assert unquote(logged) == unquote(path)
    assert "path=/auth/login status=200" in lines[1]
    assert "secret" not in access_lines.getvalue()


async def test_the_access_log_names_no_guest_link(
    aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient, access_lines: io.StringIO
) -> None:
    client = await serve_pages(aiohttp_server, aiohttp_client)
    for path in (
        "/auth/guest/eyJsaW5rIjoiMSJ9.c2lnbmF0dXJl",
        "/auth/%67uest/eyJsaW5rIjoiMSJ9.c2lnbmF0dXJl",
    ):
        assert (await client.get(path)).status == 200
    output = access_lines.getvalue()
    assert output.count("path=/auth/guest/... status=200") == 2, output
    assert "eyJsaW5rIjoiMSJ9" not in output


async def test_the_access_log_in_json_is_one_document_a_line(
    aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient, access_lines: io.StringIO
) -> None:
    logging.getLogger("aiohttp.access").handlers[-1].setFormatter(JsonFormatter())
    client = await serve_pages(aiohttp_server, aiohttp_client)
    path = "/auth/x%0a%1b%5b31m" + quote(FORGED[:80], safe="")
    await client.get(path)
    (line,) = access_lines.getvalue().splitlines()
    document = json.loads(line)
    assert document["message"] == "access"
    assert unquote(document["path"]) == unquote(path)
    assert document["status"] == 200
