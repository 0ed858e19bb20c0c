"""Stand-ins for the HTTP endpoints of Jitsi that the sidecar asks, on loopback.

``/room-size`` and ``/room`` follow Prosody's ``mod_muc_size`` as jitsi-meet
has it since commit 0f9c57eea (2026-05): the query is split on ``&`` and
``=`` and never percent-decoded, so a room is found by the exact string after
``room=`` (its node, ``mathe%207b``); ``decodes_query=True`` is the older
module, which decoded the value once (``room=mathe%25207b``). Both answer 400
without room or domain, 403 when a token is required and not valid for the
room read that way, an empty 404 for a room that does not exist, else 200:
``/room-size`` with ``{"participants": N}``, where N counts the occupants,
less one when there is more than one (the focus alone is one participant),
and ``/room`` with the list of occupants (``jid``, ``email``,
``display_name``) without the focus (``lists_focus=True``: a version that
lists it, under its own JID ``focus@auth.<domain>``). Like Prosody, which
routes HTTP by the ``Host`` header, they answer only for the XMPP domain:
any other host gets Prosody's HTML 404 "Unknown host".

``/colibri/stats`` follows the videobridge's statistics: a JSON object with,
among many other figures, ``conferences`` and ``participants``, here counted
from the open rooms.

Used by the tests (rooms opened and closed by hand, tokens checked by the
project's Jitsi-rules checker) and by ``make demo``, where the stand-in meet
page opens its room while a teacher has it loaded
(``POST /demo/rooms/<room claim, encodeURIComponent'ed>/open`` and
``.../close``; a real room opens when somebody joins the conference, with
jicofo's focus beside them).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

# Whether a token is valid for a room: (token, room name as the module read it) -> bool.
TokenCheck = Callable[[str, str], bool]
Fault = Literal["none", "garbage", "server-error", "no-count"]
FOCUS = "focus"  # jicofo's nick in every room
UNKNOWN_HOST = (
    b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
    b"<body><h1>Not Found</h1><p>Unknown host</p></body></html>\n"
)


@dataclass(frozen=True)
class RoomSizeRequest:
    room: str  # as the module read it
    domain: str
    token: str | None
    subdomain: str | None = None
    path: str = "/room-size"
    host: str = ""


@dataclass(frozen=True)
class Occupant:
    nick: str
    display_name: str


def _query_as_read(query: str, *, decodes: bool) -> dict[str, str]:
    """The query as mod_muc_size reads it: raw pieces today, decoded once by older versions."""
    if decodes:
        return {name: values[0] for name, values in parse_qs(query).items()}
    params: dict[str, str] = {}
    for piece in query.split("&"):
        name, _, value = piece.partition("=")
        if name and name not in params:
            params[name] = value
    return params


class JitsiHttp:
    """A threaded HTTP server on 127.0.0.1 answering as Prosody's room-size API does."""

    def __init__(
        self,
        *,
        domain: str,
        token_check: TokenCheck | None = None,
        decodes_query: bool = False,
        lists_focus: bool = False,
    ) -> None:
        self.domain = domain
        self.token_check = token_check
        self.decodes_query = decodes_query
        self.lists_focus = lists_focus
        self.fault: Fault = "none"
        self.requests: list[RoomSizeRequest] = []
        self._rooms: dict[str, list[Occupant]] = {}
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

    def open(self, room: str, participants: int = 1) -> None:
        """``room`` (its node: the backend-safe name) now exists with the focus and
        ``participants`` people in it."""
        occupants = [Occupant(FOCUS, "")]
        occupants += [
            Occupant(f"{number:08x}", f"Person {number}") for number in range(participants)
        ]
        with self._lock:
            self._rooms[room] = occupants

    def focus_only(self, room: str) -> None:
        """``room`` with only jicofo's focus left in it (the teacher has gone)."""
        self.open(room, participants=0)

    def close(self, room: str) -> None:
        with self._lock:
            self._rooms.pop(room, None)

    def people(self, room: str) -> int | None:
        """Occupants of ``room`` other than the focus; None: no such room."""
        with self._lock:
            occupants = self._rooms.get(room)
            return None if occupants is None else sum(o.nick != FOCUS for o in occupants)

    # -- HTTP ---------------------------------------------------------------------

    def _answer(self, path: str, host: str) -> tuple[int, bytes]:
        parts = urlsplit(path)
        if parts.path == "/colibri/stats":
            return self._bridge_stats()
        if parts.path not in ("/room-size", "/room"):
            return 404, b"not found"
        # Prosody's HTTP server picks the virtual host by the Host header (port dropped).
        if re.sub(r":\d+$", "", host).lower() != self.domain.lower():
            return 404, UNKNOWN_HOST
        query = _query_as_read(parts.query, decodes=self.decodes_query)
        room = query.get("room")
        domain = query.get("domain")
        token = query.get("token")
        subdomain = query.get("subdomain")
        if not room or not domain:
            return 400, b"room and domain are required"
        with self._lock:
            self.requests.append(
                RoomSizeRequest(room, domain, token, subdomain, path=parts.path, host=host)
            )
        if self.token_check is not None and (token is None or not self.token_check(token, room)):
            return 403, b""
        if self.fault == "server-error":
            return 500, b"internal error"
        if self.fault == "garbage":
            return 200, b"<html>not json</html>"
        with self._lock:
            occupants = list(self._rooms.get(room, ())) if domain == self.domain else None
        if not occupants:
            return 404, b""  # mod_muc_size: no such room, and no body
        if self.fault == "no-count":
            return 200, b'{"people": 3}'
        if parts.path == "/room-size":
            count = len(occupants)
            # As mod_muc_size: one less for the focus, unless it is alone.
            return 200, json.dumps({"participants": count - 1 if count > 1 else count}).encode()
        return 200, json.dumps(self._listed(room, occupants)).encode()

    def _listed(self, room: str, occupants: list[Occupant]) -> list[dict[str, str]]:
        listed = []
        for occupant in occupants:
            if occupant.nick == FOCUS:
                if not self.lists_focus:
                    continue
                jid = f"{FOCUS}@auth.{self.domain}/{FOCUS}1234"
            else:
                jid = f"{room}@conference.{self.domain}/{occupant.nick}"
            listed.append({"jid": jid, "email": "", "display_name": occupant.display_name})
        return listed

    def _bridge_stats(self) -> tuple[int, bytes]:
        if self.fault == "server-error":
            return 500, b"internal error"
        if self.fault == "garbage":
            return 200, b"<html>not json</html>"
        with self._lock:
            counts = [sum(o.nick != FOCUS for o in room) for room in self._rooms.values()]
        stats = {
            "conferences": sum(1 for count in counts if count > 0),
            "participants": sum(counts),
            "largest_conference": max(counts, default=0),
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
                    # A path segment is decoded once: the page sends the room
                    # claim (the node) through encodeURIComponent.
                    room, action = unquote(match.group(1)), match.group(2)
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
                status, body = fake._answer(self.path, self.headers.get("Host", ""))
                self.send_response(status)
                if body.startswith(b"<!DOCTYPE"):
                    content_type = "text/html"
                elif body.startswith((b"{", b"[")):
                    content_type = "application/json"
                else:
                    content_type = "text/plain"
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the tests read .requests instead

        return Handler
