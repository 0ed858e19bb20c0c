"""How often a waiting page checks again: every few seconds at first, less often
after the first minutes, always with jitter so that a class that started
waiting together does not check together.

The page works without JavaScript (a ``refresh`` of the room's own address),
so when somebody started waiting is kept in a small cookie of its own: a time
and which room, nothing about the person.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Mapping

from sidecar.cookies import CookiePolicy

COOKIE_NAME = "jitsi_auth_waiting"
OFTEN_FOR_SECONDS = 180  # checking often for the first three minutes
OFTEN_SECONDS = 5
LATER_SECONDS = 15
JITTER = 0.2
COOKIE_SECONDS = 4 * 3600
_random = random.SystemRandom()


def _room_mark(room_path: str) -> str:
    return hashlib.sha256(room_path.encode("utf-8")).hexdigest()[:16]


class WaitingPace:
    def __init__(self, policy: CookiePolicy, *, clock: Callable[[], float] = time.time) -> None:
        self._policy = policy
        self._clock = clock

    def next_check(self, cookies: Mapping[str, str], room_path: str) -> tuple[int, str | None]:
        """Seconds until the page checks again, and a ``Set-Cookie`` when waiting starts here."""
        now = int(self._clock())
        started = self._started(cookies.get(self._policy.name(COOKIE_NAME)), room_path)
        set_cookie = None
        if started is None or started > now:
            started = now
            set_cookie = self._policy.set_cookie(
                COOKIE_NAME, f"{now}.{_room_mark(room_path)}", max_age=COOKIE_SECONDS
            )
        base = OFTEN_SECONDS if now - started < OFTEN_FOR_SECONDS else LATER_SECONDS
        return max(1, round(base * _random.uniform(1 - JITTER, 1 + JITTER))), set_cookie

    @staticmethod
    def _started(value: str | None, room_path: str) -> int | None:
        if not value:
            return None
        started, _, mark = value.partition(".")
        if mark != _room_mark(room_path) or not started.isdigit() or len(started) > 12:
            return None
        return int(started)
