"""The real pieces the tests drive: the sidecar as a process, nginx in front, HTTP helpers.

Everything listens on loopback or on unix sockets in a temporary directory.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from demo.nginx import Nginx
from demo.ports import free_port
from demo.processes import terminate
from demo.slapd import Slapd
from sidecar.config.settings import Secret, SessionSettings
from sidecar.sessions import SessionCookies
from testbed.poll import POLL_INTERVAL, accepts, poll_until


def basic_auth(uid: str, password: str) -> dict[str, str]:
    """An Authorization header for HTTP Basic."""
    raw = f"{uid}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def followed(location: str) -> str:
    """What a browser asks for when it follows ``location``: never the fragment."""
    return location.partition("#")[0]


def token_in(location: str) -> str:
    """The one ``jwt=`` of a room redirect; its fragment must carry the same token."""
    parts = urlsplit(location)
    tokens = parse_qs(parts.query).get("jwt", [])
    assert len(tokens) == 1, location
    # JSON-quoted: Jitsi's web app decodes and JSON-parses fragment values.
    assert parts.fragment == f"jwt=%22{tokens[0]}%22", location
    return tokens[0]


@dataclass
class Reply:
    status: int
    headers: Message
    body: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def request(
    connection: http.client.HTTPConnection,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> Reply:
    try:
        # skip_host etc. are not needed: http.client sends the path as given.
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        text = response.read().decode("utf-8", errors="replace")
        return Reply(response.status, response.headers, text)
    finally:
        connection.close()


def until_answering(
    process: subprocess.Popen[bytes],
    socket_path: Path,
    path: str,
    log_path: Path,
    seconds: float,
    *,
    interval: float = POLL_INTERVAL,
) -> None:
    """Until ``process`` answers ``path`` with 200 on its unix socket; RuntimeError with
    the end of its log when it exits first, or when ``seconds`` pass."""

    def answering() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited:\n{log_path.read_text()[-3000:]}")
        try:
            return request(UnixHTTPConnection(socket_path), path).status == 200
        except OSError:
            return False

    if not poll_until(answering, seconds=seconds, interval=interval):
        raise RuntimeError(f"{process.args!r} did not answer {path} in time")


@dataclass
class SidecarProcess:
    config: Path
    socket_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None)

    def start(self, timeout: float = 20.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JITSI_AUTH_SIDECAR_")}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sidecar.cli", "serve", "--config", str(self.config)],
            stdout=log,
            stderr=log,
            env=env,
        )
        log.close()
        until_answering(self.process, self.socket_path, "/auth/health", self.log_path, timeout)

    def stop(self) -> None:
        process, self.process = self.process, None
        terminate(process)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def verify(self, uri: str, headers: dict[str, str] | None = None) -> Reply:
        """Ask /auth/verify directly, as nginx's subrequest would."""
        return request(
            UnixHTTPConnection(self.socket_path),
            "/auth/verify",
            {"X-Original-URI": uri, **(headers or {})},
        )


class XmppStandIn:
    """Answers /http-bind and /xmpp-websocket where Prosody would (a plain file server)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.root = workdir / "xmpp"
        self.root.mkdir(parents=True, exist_ok=True)
        for name in ("http-bind", "xmpp-websocket"):
            (self.root / name).write_text(f"prosody stand-in: {name}\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                "--directory",
                str(self.root),
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not poll_until(lambda: accepts(("127.0.0.1", self.port)), seconds=20):
            raise RuntimeError("xmpp stand-in did not start")

    def stop(self) -> None:
        process, self.process = self.process, None
        terminate(process)


@dataclass
class Stack:
    """nginx (Jitsi-shaped site + the include) -> sidecar -> slapd."""

    nginx: Nginx
    sidecar: SidecarProcess
    xmpp: XmppStandIn

    def connection(self, source: str = "127.0.0.1") -> http.client.HTTPConnection:
        """A connection to nginx from ``source`` (any 127.0.0.x: a client elsewhere)."""
        return http.client.HTTPConnection(
            "127.0.0.1", self.nginx.port, timeout=20, source_address=(source, 0)
        )

    def get(
        self, path: str, headers: dict[str, str] | None = None, *, source: str = "127.0.0.1"
    ) -> Reply:
        return request(self.connection(source), followed(path), headers)

    def stop(self) -> None:
        self.nginx.stop()
        self.sidecar.stop()
        self.xmpp.stop()


@contextmanager
def nginx_in_front(
    sidecar: SidecarProcess,
    workdir: Path,
    *,
    site: str,
    http_extra: str = "",
    include: Path | None = None,
    with_upstream: bool = True,
) -> Iterator[Nginx]:
    """Another nginx site (with its own Prosody stand-in) in front of a running sidecar."""
    xmpp = XmppStandIn(workdir)
    xmpp.start()
    nginx = Nginx(
        workdir,
        port=free_port(),
        sidecar_socket=sidecar.socket_path,
        xmpp_port=xmpp.port,
        site=site,
        http_extra=http_extra,
        include=include,
        with_upstream=with_upstream,
    )
    try:
        nginx.start()
        yield nginx
    finally:
        nginx.stop()
        xmpp.stop()


def start_stack(
    workdir: Path, config: Path, socket_path: Path, port: int, *, tenants: str | None = None
) -> Stack:
    xmpp = XmppStandIn(workdir)
    xmpp.start()
    sidecar = SidecarProcess(config, socket_path, workdir / "sidecar.log")
    nginx_dir = workdir / "nginx"
    nginx_dir.mkdir(exist_ok=True)
    nginx = Nginx(
        nginx_dir, port=port, sidecar_socket=socket_path, xmpp_port=xmpp.port, tenants=tenants
    )
    stack = Stack(nginx, sidecar, xmpp)
    try:
        sidecar.start()
        nginx.start()
    except BaseException:
        stack.stop()
        raise
    return stack


def set_cookies(reply: Reply) -> dict[str, str]:
    """Set-Cookie headers as name -> the whole header value."""
    found: dict[str, str] = {}
    for header in reply.headers.get_all("Set-Cookie") or []:
        name = header.split("=", 1)[0]
        found[name] = header
    return found


class Browser:
    """Just enough of a browser for flows through nginx: a cookie jar, no redirects followed."""

    def __init__(
        self, stack: Stack, accept_language: str = "en", *, source: str = "127.0.0.1"
    ) -> None:
        self.stack = stack
        self.cookies: dict[str, str] = {}
        self.accept_language = accept_language
        self.source = source

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Accept-Language": self.accept_language}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers.update(extra or {})
        return headers

    def _remember(self, reply: Reply) -> Reply:
        for name, header in set_cookies(reply).items():
            value = header.split("=", 1)[1].split(";", 1)[0]
            if value and "Max-Age=0" not in header:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return reply

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        connection = self.stack.connection(self.source)
        return self._remember(request(connection, followed(path), self._headers(headers)))

    def post(self, path: str, form: dict[str, str]) -> Reply:
        body = urlencode(form).encode()
        headers = self._headers({"Content-Type": "application/x-www-form-urlencoded"})
        connection = self.stack.connection(self.source)
        return self._remember(request(connection, path, headers, method="POST", body=body))

    def csrf_token(self, page: Reply) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.body)
        assert match is not None, page.body
        return match.group(1)

    def log_in(self, uid: str, password: str, next_path: str = "/Mathe7b") -> Reply:
        form_page = self.get(f"/auth/login?next={quote(next_path, safe='')}")
        assert form_page.status == 200, form_page
        return self.post(
            "/auth/login",
            {
                "csrf_token": self.csrf_token(form_page),
                "next": next_path,
                "username": uid,
                "password": password,
            },
        )


def binds_of(slapd: Slapd, uid: str) -> int:
    """How many times slapd was asked to bind as ``uid`` (its stats log, one line a bind)."""
    return len(re.findall(rf'BIND dn="uid={re.escape(uid)},[^"]*" method=128', slapd.log()))


class SilentServer:
    """Accepts TCP connections and never says a word, like a hung directory; counts them."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def connections(self) -> int:
        return len(self._held)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(connection)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._listener.close()
        for connection in self._held:
            connection.close()


def stack_sessions(stack: Stack, keys: tuple[bytes, ...] | None = None) -> SessionCookies:
    """SessionCookies sealing like the stack's sidecar (same keys unless given)."""
    key_file = stack.sidecar.config.parent / "session_keys"
    own_keys = keys or tuple(line for line in key_file.read_bytes().splitlines() if line)
    settings = SessionSettings(keys=tuple(Secret(key) for key in own_keys))
    return SessionCookies(settings)
