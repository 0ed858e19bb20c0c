"""Log lines for journald: to stderr, plain or JSON (``server.log_format``).

Each room request and each login form submission is one line with the
decision's fields (``decision`` and ``login`` lines); everything else is a
message. Field values are what :class:`~sidecar.guard.Decision` holds: names,
roles, rooms, reasons in a few words, never a password, cookie or token.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

from sidecar.config import LogFormat

DECISIONS = logging.getLogger("sidecar.decisions")
# A plain value needs no quotes when it is one run of printable ASCII but these.
_BARE = re.compile(r"[!#-&(-<>-\[\]-~]+")
# The longest a field value is written (a user name, a reason).
MAX_VALUE = 128
_FIELDS = "fields"


def _timestamp(record: logging.LogRecord) -> str:
    moment = time.gmtime(record.created)
    milliseconds = int(record.msecs)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{milliseconds:03d}Z"


def _escaped(text: str) -> str:
    """``text`` with every character that is not printable (control characters, line
    and paragraph separators, terminal escapes) written as ``\\uXXXX``."""
    return "".join(
        ch if ch.isprintable() and ch not in '"\\' else json.dumps(ch, ensure_ascii=True)[1:-1]
        for ch in text
    )


def _bounded(value: object) -> object:
    """Field values as logged: a typed name of any length becomes at most MAX_VALUE."""
    if isinstance(value, str) and len(value) > MAX_VALUE:
        return value[:MAX_VALUE] + "..."
    return value


def _plain_value(value: object) -> str:
    text = str(value)
    if _BARE.fullmatch(text):
        return text
    # Quoted, with newlines and other unprintable characters escaped: a value
    # (a user name typed in) can never start a line of its own.
    return f'"{_escaped(text)}"'


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, _FIELDS, None)
    if not isinstance(fields, dict):
        return {}
    return {key: _bounded(value) for key, value in fields.items()}


class PlainFormatter(logging.Formatter):
    """``time level logger: message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        pairs = " ".join(f"{key}={_plain_value(value)}" for key, value in _fields(record).items())
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {message}"
        if pairs:
            line += " " + pairs
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and the decision's fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        # ASCII only: no separator or escape character a log viewer would act on.
        return json.dumps(document, ensure_ascii=True)


def configure(log_format: LogFormat) -> None:
    """Every line to stderr (journald), in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else PlainFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def log_decision(kind: str, **fields: object) -> None:
    """One ``decision`` or ``login`` line with ``fields`` in the order given."""
    DECISIONS.info(kind, extra={_FIELDS: fields})
