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
# A plain value needs no quotes when it is one run of these.
_BARE = re.compile(r"[^\s\"'=\\]+")
_FIELDS = "fields"


def _timestamp(record: logging.LogRecord) -> str:
    moment = time.gmtime(record.created)
    milliseconds = int(record.msecs)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{milliseconds:03d}Z"


def _plain_value(value: object) -> str:
    text = str(value)
    if _BARE.fullmatch(text):
        return text
    # Quoted, with newlines and other control characters escaped: a value
    # (a user name typed in) can never start a line of its own.
    return json.dumps(text, ensure_ascii=False)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, _FIELDS, None)
    return fields if isinstance(fields, dict) else {}


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
        return json.dumps(document, ensure_ascii=False)


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
