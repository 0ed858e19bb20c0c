"""A stop nobody notices: every connection taken in gets its answer, none is cut.

Once the daemon has stopped accepting, new connections wait in the listen
queue: with systemd's socket they stay there for the next process. What this
process has already accepted it must answer before it exits; closing a
connection whose request it has not read makes the kernel answer with a
reset, which nginx turns into a 500 (auth_request) or a 502.

So the drain closes a connection only when it is idle: no request being
handled, none parsed and waiting, no byte of a next request unread in the
kernel. An idle keep-alive connection is closed at once (its client opens a
new one, to the next process); a connection that has not sent its first
request yet gets a moment to do so (nginx writes right after connecting).
Whatever is left at the bound is cut, so that a stop always ends.

aiohttp has no public view of a connection's state; the few attributes read
here are looked up defensively: a connection that cannot be judged counts as
busy, and only the bound ends the wait for it.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import logging
import termios
import time
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02
# A connection accepted a moment ago whose request has not arrived: how long
# it may take (nginx sends its request as soon as the connection is made).
FIRST_REQUEST_SECONDS = 1.0


def unread_bytes(handler: Any) -> int:
    """Bytes that arrived on the connection and were not read yet (-1: unknown)."""
    transport = getattr(handler, "transport", None)
    if transport is None:
        return 0
    sock = transport.get_extra_info("socket")
    if sock is None:
        return -1
    pending = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, pending, True)
    except (OSError, ValueError):
        return -1
    return pending[0]


def is_idle(handler: Any, *, fresh_for: float) -> bool:
    """Whether closing ``handler``'s connection now loses nothing.

    ``fresh_for``: how long it has been open, if it has not sent a request yet.
    """
    waiter = getattr(handler, "_waiter", None)
    # start() awaits this future between requests only: no request is in hand.
    waiting = waiter is not None and not waiter.done()
    if not waiting or getattr(handler, "_messages", True):
        return False
    if unread_bytes(handler) != 0:
        return False
    served = getattr(handler, "_request_count", 0)
    return served > 0 or fresh_for >= FIRST_REQUEST_SECONDS


async def drain(server: web.Server | None, *, seconds: float) -> int:
    """Close connections as they become idle, until none is left or ``seconds``
    have passed; the number still open then."""
    if server is None:
        return 0
    started = time.monotonic()
    first_seen: dict[int, float] = {}
    # Connections the loop accepted in its last round register a moment later.
    await asyncio.sleep(POLL_SECONDS * 5)
    while True:
        connections = server.connections
        now = time.monotonic()
        if not connections or now - started >= seconds:
            break
        for handler in connections:
            seen = first_seen.setdefault(id(handler), now)
            if is_idle(handler, fresh_for=now - seen):
                handler.force_close()
        await asyncio.sleep(POLL_SECONDS)
    left = len(server.connections)
    if left:
        log.warning("%d connections still busy after %.0f s: closing them", left, seconds)
    return left
