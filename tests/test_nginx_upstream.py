"""The include's checks go through its upstream: connections kept open, and a sidecar
that restarts between two page loads costs nobody a page.

nginx is Debian's, with the include and ``nginx/jitsi-auth-sidecar-upstream.conf``
as the package installs them; behind it an aiohttp app on a unix socket that
answers every check with 200 and notes which connection each came on.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from demo.nginx import SOCKET_LITERAL, Nginx, default_include, default_upstream
from demo.ports import free_port
from sidecar.admin.jitsi_edits import CannotEdit, without_upstream
from sidecar.web import server

PAGE_LOADS = 30
# keepalive_requests in the upstream: a kept connection is replaced after this many checks.
CHECKS_PER_CONNECTION = 10


class CheckServer:
    """Answers /auth/verify with 200; ``connections`` holds one entry per connection used."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.connections: list[object] = []
        self.checks = 0
        self._runner: web.AppRunner | None = None

    async def _allow(self, request: web.Request) -> web.Response:
        self.checks += 1
        # The protocol object is the connection; kept in the list, so no two share an id.
        if not any(known is request.protocol for known in self.connections):
            self.connections.append(request.protocol)
        return web.Response()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/auth/verify", self._allow)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self.socket_path)).start()

    async def stop(self) -> None:
        """As the sidecar stops: idle connections closed at once."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def checks(tmp_path: Path) -> AsyncIterator[CheckServer]:
    server = CheckServer(tmp_path / "check.sock")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _nginx(workdir: Path, socket_path: Path, include: Path | None = None) -> Nginx:
    workdir.mkdir()
    return Nginx(
        workdir,
        port=free_port(),
        sidecar_socket=socket_path,
        xmpp_port=free_port(),
        include=include,
    )


@pytest.fixture
def nginx(tmp_path: Path, checks: CheckServer) -> Iterator[Nginx]:
    with _nginx(tmp_path / "nginx", checks.socket_path) as started:
        yield started


async def _load_rooms(nginx: Nginx, count: int) -> list[int]:
    """``count`` room page loads, one after another, each on a new client connection."""
    statuses = []
    for index in range(count):
        connector = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as client,
            client.get(f"{nginx.url}/Mathe7b?load={index}", allow_redirects=False) as reply,
        ):
            statuses.append(reply.status)
    return statuses


async def test_page_loads_are_checked_on_one_kept_connection(
    nginx: Nginx, checks: CheckServer
) -> None:
    assert await _load_rooms(nginx, PAGE_LOADS) == [200] * PAGE_LOADS
    assert checks.checks == PAGE_LOADS
    # nginx here has one worker: one connection kept, every check on it until
    # the tenth, then the next one (so that two sidecar workers share them).
    assert len(checks.connections) == PAGE_LOADS // CHECKS_PER_CONNECTION


async def test_without_the_upstream_every_check_takes_a_new_connection(
    tmp_path: Path, checks: CheckServer
) -> None:
    """The include as setup --docker writes it: no http-level file needed, no kept connections."""
    include = tmp_path / "direct.conf"
    include.write_text(without_upstream(default_include().read_text("utf-8")), "utf-8")
    workdir = tmp_path / "nginx-direct"
    direct = _nginx(workdir, checks.socket_path, include)
    direct.with_upstream = False
    with direct:
        assert await _load_rooms(direct, 4) == [200] * 4
    assert len(checks.connections) == 4


async def test_a_restart_between_page_loads_costs_no_page(
    nginx: Nginx, checks: CheckServer
) -> None:
    """The kept connection is closed by the stopping process; the next check finds its way
    to the new one (nginx drops a closed idle connection, or sends the check again)."""
    for _ in range(3):
        assert await _load_rooms(nginx, 2) == [200, 200]
        await checks.stop()
        await asyncio.sleep(0.05)
        checks.socket_path.unlink(missing_ok=True)
        await checks.start()
    assert await _load_rooms(nginx, 2) == [200, 200]
    assert checks.checks == 8


@pytest.mark.parametrize(
    ("address", "verify"),
    [
        ("unix:/run/jitsi-auth-sidecar/http.sock", "unix:/run/jitsi-auth-sidecar/http.sock:/"),
        ("unix:/srv/sidecar.sock", "unix:/srv/sidecar.sock:/"),
        ("127.0.0.1:8099", "127.0.0.1:8099/"),
        ("sidecar.internal", "sidecar.internal/"),
    ],
)
def test_without_the_upstream_checks_go_where_auth_goes(address: str, verify: str) -> None:
    include = default_include().read_text("utf-8").replace(SOCKET_LITERAL, address)
    direct = without_upstream(include)
    assert f"proxy_pass http://{verify}auth/verify;" in direct
    assert f"proxy_pass http://{address};" in direct
    assert "http://jitsi_auth_sidecar" not in direct


async def test_the_sidecar_keeps_an_idle_connection_longer_than_nginx_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nginx closes an idle kept connection first: a check is never sent on one that
    the sidecar is closing at that moment (nginx would send it again, but a POST not).
    The sidecar's runner does close idle connections after its time (aiohttp's own
    default is an hour): seen with that time made short."""
    upstream = default_upstream().read_text("utf-8")
    found = re.search(r"^\s*keepalive_timeout (\d+)s;", upstream, re.MULTILINE)
    assert found is not None
    assert int(found.group(1)) < server.IDLE_CONNECTION_SECONDS

    monkeypatch.setattr(server, "IDLE_CONNECTION_SECONDS", 0.2)
    app = web.Application()
    app.router.add_get("/auth/healthz", _ok)
    runner = server.runner_for(app)
    await runner.setup()
    socket_path = tmp_path / "idle.sock"
    await web.UnixSite(runner, str(socket_path)).start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
        writer.write(b"GET /auth/healthz HTTP/1.1\r\nHost: sidecar\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        # Idle now: closed by the sidecar (end of stream), not left open.
        assert await asyncio.wait_for(reader.read(), timeout=30) == b""
        writer.close()
    finally:
        await runner.cleanup()


async def _ok(_request: web.Request) -> web.Response:
    return web.Response()


@pytest.mark.parametrize(
    "before",
    [
        "# proxy_pass http://example.org;\n",
        "location = /elsewhere {\n    proxy_pass http://example.org;\n}\n",
    ],
)
def test_without_the_upstream_only_the_auth_location_names_the_address(before: str) -> None:
    """A commented proxy_pass, or an admin's own location before /auth/, is not the
    sidecar: checks carry people's passwords and cookies."""
    direct = without_upstream(before + default_include().read_text("utf-8"))
    assert f"proxy_pass http://{SOCKET_LITERAL}:/auth/verify;" in direct
    assert "example.org/auth/verify" not in direct


def test_without_the_upstream_an_include_without_an_auth_address_is_refused() -> None:
    include = default_include().read_text("utf-8")
    broken = include.replace(f"proxy_pass http://{SOCKET_LITERAL};", "proxy_pass $somewhere;")
    with pytest.raises(CannotEdit):
        without_upstream(broken)
