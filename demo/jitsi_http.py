"""Stand-ins for the HTTP endpoints of Jitsi that the sidecar asks, on loopback.

``/room-size`` follows Prosody's ``mod_muc_size``: ``GET ?room=<backend-safe
name>&domain=<xmpp domain>[&subdomain=...][&token=...]`` answers 400 without
room or domain, 403 when a token is required and not valid for the room, 404
for a room that does not exist, else 200 ``{"participants": N}``. The room
name arrives percent-encoded once more than it is (``mathe%25207b`` for the
room ``mathe%207b``), as the web app and the sidecar send it.

``/colibri/stats`` follows the videobridge's statistics: a JSON object with,
among many other figures, ``conferences`` and ``participants``, here counted
from the open rooms.

Used by the tests (rooms opened and closed by hand, tokens checked by the
project's Jitsi-rules checker) and by ``make demo``, where the stand-in meet
page opens its room while a teacher has it loaded
(``POST /demo/rooms/<backend-safe name>/open`` and ``.../close``; a real
room opens when somebody joins the conference).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlsplit

# Whether a token is valid for a room: (token, backend-safe room name) -> bool.
TokenCheck = Callable[[str, str], bool]
Fault = Literal["none", "garbage", "server-error", "no-count"]


@dataclass(frozen=True)
class RoomSizeRequest:
    room: str
    domain: str
    token: str | None
    subdomain: str | None = None


class JitsiHttp:
    """A threaded HTTP server on 127.0.0.1 answering as Prosody's room-size API does."""

    def __init__(self, *, domain: str, token_check: TokenCheck | None = None) -> None:
        self.domain = domain
        self.token_check = token_check
        self.fault: Fault = "none"
        self.requests: list[RoomSizeRequest] = []
        self._participants: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def room_size_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/room-size"

    @property
    def demo_rooms_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/demo/rooms"

    @property
    def bridge_stats_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/colibri/stats"

    def start(self) -> JitsiHttp:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the rooms -------------------------------------------------------------

    def open(self, room: str, participants: int = 2) -> None:
        """``room`` (backend-safe name) now exists with ``participants`` in it."""
        with self._lock:
            self._participants[room] = participants

    def close(self, room: str) -> None:
        with self._lock:
            self._participants.pop(room, None)

    def participants(self, room: str) -> int | None:
        with self._lock:
            return self._participants.get(room)

    # -- HTTP ---------------------------------------------------------------------

    def _answer(self, path: str) -> tuple[int, bytes]:
        parts = urlsplit(path)
        if parts.path == "/colibri/stats":
            return self._bridge_stats()
        if parts.path != "/room-size":
            return 404, b"not found"
        query = parse_qs(parts.query)
        room = query.get("room", [None])[0]
        domain = query.get("domain", [None])[0]
        token = query.get("token", [None])[0]
        subdomain = query.get("subdomain", [None])[0]
        if not room or not domain:
            return 400, b"room and domain are required"
        with self._lock:
            self.requests.append(RoomSizeRequest(room, domain, token, subdomain))
        if self.token_check is not None and (token is None or not self.token_check(token, room)):
            return 403, b"token verification failed"
        if self.fault == "server-error":
            return 500, b"internal error"
        if self.fault == "garbage":
            return 200, b"<html>not json</html>"
        if domain != self.domain:
            return 404, b"no such domain"
        participants = self.participants(room)
        if participants is None:
            return 404, b"no such room"
        if self.fault == "no-count":
            return 200, b'{"people": 3}'
        return 200, json.dumps({"participants": participants}).encode()

    def _bridge_stats(self) -> tuple[int, bytes]:
        if self.fault == "server-error":
            return 500, b"internal error"
        if self.fault == "garbage":
            return 200, b"<html>not json</html>"
        with self._lock:
            conferences = sum(1 for count in self._participants.values() if count > 0)
            participants = sum(self._participants.values())
        stats = {
            "conferences": conferences,
            "participants": participants,
            "largest_conference": max(self._participants.values(), default=0),
            "threads": 42,
            "graceful_shutdown": False,
        }
        return 200, json.dumps(stats).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                match = re.fullmatch(r"/demo/rooms/([^/?]+)/(open|close)", self.path)
                if match is None:
                    self.send_response(404)
                else:
                    room, action = match.groups()
                    if action == "open":
                        fake.open(room, 1)
                    else:
                        fake.close(room)
                    self.send_response(204)
                # The stand-in page runs on nginx's origin, this server on another port.
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                status, body = fake._answer(self.path)
                self.send_response(status)
                content_type = "application/json" if body.startswith(b"{") else "text/plain"
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the tests read .requests instead

        return Handler
