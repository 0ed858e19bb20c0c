"""Log lines for journald: to stderr, plain or JSON (``server.log_format``).

Each room request and each login form submission is one line with the
decision's fields (``decision`` and ``login`` lines), each other request to
the sidecar's pages an ``access`` line; everything else is a message. Field
values are what :class:`~sidecar.guard.DecisionRecord` holds: names, roles, rooms,
reasons in a few words, never a password, cookie or token.

Nobody can write a line of their own through a request: in the plain format
a value with anything but plain ASCII is quoted with its control, separator
and direction characters escaped, and so is whatever a message or a traceback
holds (a path, a user name, an exception's text); the JSON format escapes
the same as JSON, in ASCII only. Every line the daemon writes starts with
its time, level and logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from sidecar.config.settings import LogFormat
from sidecar.guest_links import PATH_PREFIX as GUEST_LINK_PREFIX

# The logger name decision lines carry.
DECISIONS = "sidecar.decisions"
# nginx's auth_request endpoint (sidecar.web.app): its decision line is the record of it.
VERIFY_PATH = "/auth/verify"
# A plain value needs no quotes when it is one run of printable ASCII but these.
_BARE = re.compile(r"[!#-&(-<>-\[\]-~]+")
# What a pipe writes whole (PIPE_BUF on Linux).
ATOMIC_WRITE_BYTES = 4096
# The longest a field value is written (a user name, a reason).
MAX_VALUE = 128
_FIELDS = "fields"
# The field a traceback goes into: written whole, however long.
EXCEPTION = "exception"
_MESSAGE_KEEPS = '"\\'


def _timestamp(moment: float) -> str:
    whole = int(moment)
    milliseconds = int((moment - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{milliseconds:03d}Z"


def _escaped(text: str, *, keep: str = "") -> str:
    """``text`` with every character that is not printable (control characters, line
    and paragraph separators, direction overrides, terminal escapes), every
    backslash and every double quote but those in ``keep`` written as JSON writes them."""
    return "".join(
        ch if ch.isprintable() and (ch not in '"\\' or ch in keep) else _json_escape(ch)
        for ch in text
    )


def _json_escape(character: str) -> str:
    return json.dumps(character, ensure_ascii=True)[1:-1]


def _bounded(key: str, value: object) -> object:
    """Field values as logged: a typed name of any length becomes at most MAX_VALUE."""
    if isinstance(value, str) and len(value) > MAX_VALUE and key != EXCEPTION:
        return value[:MAX_VALUE] + "..."
    return value


def _plain_value(value: object) -> str:
    text = str(value)
    if _BARE.fullmatch(text):
        return text
    # Quoted, with newlines and other unprintable characters escaped: a value
    # (a user name typed in) can never start a line of its own.
    return f'"{_escaped(text)}"'


def _fields(record: logging.LogRecord) -> Mapping[str, object]:
    fields = getattr(record, _FIELDS, None)
    return fields if isinstance(fields, dict) else {}


def render_plain(
    moment: float, level: str, logger: str, message: str, fields: Mapping[str, object]
) -> str:
    """``time level logger: message key=value ...``, all on one line."""
    # A message's arguments may come from a request (a path, a name): what is
    # unprintable escaped as in values, its quotes and backslashes left alone.
    if not message.isprintable():  # (the common case costs one C call)
        message = _escaped(message, keep=_MESSAGE_KEEPS)
    line = f"{_timestamp(moment)} {level} {logger}: {message}"
    for key, value in fields.items():
        line += f" {key}={_plain_value(_bounded(key, value))}"
    return line


def render_json(
    moment: float, level: str, logger: str, message: str, fields: Mapping[str, object]
) -> str:
    """One JSON object: time, level, logger, message and the fields."""
    document: dict[str, Any] = {
        "time": _timestamp(moment),
        "level": level,
        "logger": logger,
        "message": message,
        **{key: _bounded(key, value) for key, value in fields.items()},
    }
    # ASCII only: no separator or escape character a log viewer would act on.
    return json.dumps(document, ensure_ascii=True)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = dict(_fields(record))
        if record.exc_info:
            # On the line, escaped: an exception's text may quote a request
            # (aiohttp's own quote its bytes), and journald keeps one entry.
            fields[EXCEPTION] = self.formatException(record.exc_info)
        return render_plain(
            record.created, record.levelname, record.name, record.getMessage(), fields
        )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = dict(_fields(record))
        if record.exc_info:
            fields[EXCEPTION] = self.formatException(record.exc_info)
        return render_json(
            record.created, record.levelname, record.name, record.getMessage(), fields
        )


def configure(log_format: LogFormat) -> None:
    """Every line to stderr (journald), in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else PlainFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


class DecisionLog:
    """The decision lines (``decision``, ``login``), in the configured format.

    Written to stderr once per turn of the event loop, not through the logging
    machinery line by line: every room page load makes one, and a LogRecord,
    a handler's lock and a write of its own cost a sixth of a page load's work.
    """

    def __init__(self, log_format: LogFormat, *, stream: TextIO | None = None) -> None:
        self._render = render_json if log_format == "json" else render_plain
        self._stream = stream  # None: whatever sys.stderr is when written
        self._pending: list[str] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def write(self, kind: str, **fields: object) -> None:
        """One line with ``fields`` in the order given."""
        self._pending.append(self._render(time.time(), "INFO", DECISIONS, kind, fields))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._scheduled and loop is self._loop:
            return
        # (A flush scheduled on a loop that has ended since would never run.)
        self._scheduled, self._loop = True, loop
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        stream = self._stream or sys.stderr
        # Written in pieces a pipe takes whole (PIPE_BUF): the lines of several
        # workers on one pipe never interleave within a line.
        piece: list[str] = []
        size = 0
        for line in lines:
            length = len(line.encode("utf-8", "surrogateescape")) + 1
            if piece and size + length > ATOMIC_WRITE_BYTES:
                self._write(stream, piece)
                piece, size = [], 0
            piece.append(line)
            size += length
        self._write(stream, piece)

    @staticmethod
    def _write(stream: TextIO, lines: list[str]) -> None:
        with contextlib.suppress(OSError, ValueError):
            stream.write("\n".join(lines) + "\n")
            stream.flush()


class PathOnlyAccessLogger(AbstractAccessLogger):
    """An ``access`` line per request to the sidecar's pages: method, path (as
    sent, still percent-encoded, without its query string), status and time.

    Query strings carry ``jwt=`` and headers carry passwords and cookies, so
    neither is ever written. The path is a field like any other: quoted and
    escaped in the plain format, so ``%0a`` in it starts no line.
    """

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if request.path == VERIFY_PATH:
            return  # its decision line says more, at every room page load
        path = request.rel_url.raw_path
        if request.path.startswith(GUEST_LINK_PREFIX) or path.startswith(GUEST_LINK_PREFIX):
            # The rest of the path is the signed invitation: a credential.
            path = GUEST_LINK_PREFIX + "..."
        fields = {
            "method": request.method,
            "path": path,
            "status": response.status,
            "ms": round(time * 1000, 1),
        }
        self.logger.info("access", extra={_FIELDS: fields})
