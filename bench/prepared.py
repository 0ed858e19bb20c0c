"""Whole HTTP/1.1 requests, prepared before a measurement and sent as they are.

wrk (through ``check.lua``) and the fixed-rate client read the same files:
requests separated by NUL bytes, which no HTTP request holds.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlencode

SEPARATOR = b"\0"
ROOM = "Mathe7b"
ROOM_PATH = f"/{ROOM}"
LOGIN_PATH = "/auth/login"
# What a browser at the school sends along; the sidecar reads it for its pages.
ACCEPT_LANGUAGE = "de-DE,de;q=0.9,en;q=0.5"


def basic_authorization(uid: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{uid}:{password}".encode()).decode("ascii")


def _request(
    method: str, path: str, host: str, headers: Mapping[str, str], body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Accept-Language: {ACCEPT_LANGUAGE}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def get(path: str, host: str, headers: Mapping[str, str] | None = None) -> bytes:
    return _request("GET", path, host, headers or {})


def post_form(
    path: str, host: str, form: Mapping[str, str], headers: Mapping[str, str] | None = None
) -> bytes:
    body = urlencode(form).encode("ascii")
    form_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    return _request("POST", path, host, form_headers, body)


def room_with_token(token: str) -> str:
    return f"{ROOM_PATH}?jwt={token}"


def write_requests(path: Path, requests: Iterable[bytes]) -> Path:
    prepared = list(requests)
    if not prepared:
        raise ValueError(f"{path.name}: no requests to send")
    if any(SEPARATOR in request for request in prepared):
        raise ValueError(f"{path.name}: a request holds a NUL byte")
    path.write_bytes(SEPARATOR.join(prepared))
    return path


def read_requests(path: Path) -> list[bytes]:
    return [request for request in path.read_bytes().split(SEPARATOR) if request]
