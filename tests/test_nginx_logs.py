"""Tokens and passwords stay out of nginx's access log, wherever the request lands.

The include keeps every token-carrying request it can see out of the log;
the optional ``nginx/jitsi-auth-sidecar-log.conf`` format covers what nginx
answers before any location is chosen.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.nginx import SITE, Nginx, default_include
from demo.school import SCHOOL
from testbed.poll import poll_until
from testbed.stack import Stack, basic_auth, nginx_in_front, request

TOKEN = "eyJzdHJheS10b2tlbi1tYXJrZXI.c2VjcmV0LXBhcnQ.c2lnbmF0dXJl"
LOG_FORMAT_FILE = default_include().with_name("jitsi-auth-sidecar-log.conf")


def get(nginx: Nginx, path: str, headers: dict[str, str] | None = None) -> int:
    return request(
        http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=20), path, headers
    ).status


def access_log_once_it_holds(nginx: Nginx, *expected: str) -> str:
    """nginx writes a line after it answered: wait (bounded) until the lines are there."""
    return poll_until(
        nginx.access_log.read_text,
        lambda log: all(line in log for line in expected),
        seconds=10,
        interval=0.02,
    )


def raw_request(nginx: Nginx, data: bytes) -> bytes:
    """A request http.client would refuse to send (duplicate or oversized lines)."""
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=20) as connection:
        connection.sendall(data)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "path",
    [
        f"/Mathe7b/?jwt={TOKEN}",
        f"/tenant/Mathe7b?jwt={TOKEN}",
        f"/libs/app.bundle.min.js?jwt={TOKEN}",
    ],
)
def test_a_token_off_the_room_pages_is_refused_unlogged(stack: Stack, path: str) -> None:
    reply = stack.get(path)
    assert reply.status == 404
    assert "ist kein Raum" in reply.body
    assert TOKEN not in stack.nginx.access_log.read_text()
    assert TOKEN not in stack.sidecar.log()


def test_the_rest_of_the_site_is_untouched(stack: Stack) -> None:
    """The stray-token rule must not catch room pages or token-free requests."""
    assert stack.get("/?lang=de").status == 200
    assert stack.get("/libs/app.bundle.min.js?v=1").status == 200
    assert stack.get("/http-bind?room=mathe7b").status == 200
    # Top-level addresses are room pages or Jitsi's own (config.js, Prosody's
    # endpoints): left exactly as the site has them, whatever the query.
    assert stack.get(f"/http-bind?jwt={TOKEN}").status == 200
    assert stack.get(f"/config.js?jwt={TOKEN}").status == 200
    teacher = SCHOOL.teachers[0]
    reply = stack.get(f"/Mathe7b?jwt={TOKEN}", basic_auth(teacher.uid, teacher.password))
    assert reply.status == 302
    assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=eyJ")


@pytest.fixture(scope="module")
def query_free_nginx(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """The stock-shaped site with the optional log format, as docs/jitsi.md says to add it."""
    workdir: Path = tmp_path_factory.mktemp("log-format")
    site = SITE.replace(
        "    include {include};",
        f"    access_log {workdir}/access.log jitsi_auth_sidecar;\n    include {{include}};",
    )
    http_extra = f"    include {LOG_FORMAT_FILE};"
    with nginx_in_front(stack.sidecar, workdir, site=site, http_extra=http_extra) as nginx:
        yield nginx


def test_requests_nginx_refuses_early_are_logged_without_their_query(
    query_free_nginx: Nginx,
) -> None:
    nginx = query_free_nginx
    oversized = (
        f"GET /Mathe7b?jwt={TOKEN} HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 9000}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    assert raw_request(nginx, oversized).startswith(b"HTTP/1.1 400")
    long_line = f"GET /Mathe7b?x={'a' * 9000}&jwt={TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    assert raw_request(nginx, long_line).startswith(b"HTTP/1.1 414")
    assert get(nginx, f"/?jwt={TOKEN}") == 302  # a hang-up: to the start page
    referer = {"Referer": f"http://127.0.0.1/Mathe7b?jwt={TOKEN}"}
    assert get(nginx, "/libs/app.bundle.min.js", referer) == 200
    # What stays is still a useful log: method, path, status, referer's path.
    expected = (
        '"GET /Mathe7b HTTP/1.1" 400',
        '"GET /libs/app.bundle.min.js HTTP/1.1" 200',
        '"http://127.0.0.1/Mathe7b"',
    )
    log = access_log_once_it_holds(nginx, *expected)
    assert all(line in log for line in expected), log
    assert TOKEN not in log
    assert "jwt" not in log


def test_the_log_format_file_passes_nginx_t(query_free_nginx: Nginx) -> None:
    result = query_free_nginx.check()
    assert result.returncode == 0, result.stderr


def test_odd_request_lines_lose_their_query_too(query_free_nginx: Nginx) -> None:
    """nginx takes several spaces between the parts of a request line; so does the format."""
    big = "X-Big: " + "a" * 9000
    for line in (f"GET  /Mathe7b?jwt={TOKEN}  HTTP/1.1", f"GET   /x?a=1&jwt={TOKEN} HTTP/1.1"):
        request_bytes = f"{line}\r\nHost: x\r\n{big}\r\nConnection: close\r\n\r\n".encode()
        assert raw_request(query_free_nginx, request_bytes).startswith(b"HTTP/1.1 400")
    log = access_log_once_it_holds(query_free_nginx, '"GET /x HTTP/1.1" 400')
    assert '"GET /x HTTP/1.1" 400' in log
    assert TOKEN not in log
