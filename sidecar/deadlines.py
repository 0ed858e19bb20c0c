"""Deadlines that a stopping daemon can bring forward.

Each directory operation runs under one deadline (``ldap.deadline``). When the
daemon stops, the requests it has taken in must be answered before nginx
gives up on the ones waiting in the listen queue for the next process; so
the stop brings every deadline, running or still to come, forward to a few
seconds from then. A request whose directory work is cut short this way
gets what an unreachable directory gives (the 503 page, or the session or
cached credentials that need no directory), never a cut connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

# The deadline of the work under way, seen by the tasks it starts too.
_CURRENT: ContextVar[asyncio.Timeout | None] = ContextVar("ldap_deadline", default=None)


def deadline_passed() -> bool:
    """Whether the deadline of the work this runs in has passed: work cut short
    by it, rather than given up because it was no longer wanted."""
    timeout = _CURRENT.get()
    return timeout is not None and timeout.expired()


class Deadlines:
    """``within()`` bounds a block by ``seconds``, or by the hurry, whichever is first."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._running: set[asyncio.Timeout] = set()
        self._latest: float | None = None  # the loop time nothing may run past

    @asynccontextmanager
    async def within(self) -> AsyncIterator[None]:
        """Raises TimeoutError when the deadline passes, as ``asyncio.timeout`` does."""
        when = asyncio.get_running_loop().time() + self.seconds
        if self._latest is not None:
            when = min(when, self._latest)
        async with asyncio.timeout_at(when) as timeout:
            self._running.add(timeout)
            current = _CURRENT.set(timeout)
            try:
                yield
            finally:
                _CURRENT.reset(current)
                self._running.discard(timeout)

    def hurry(self, seconds: float) -> None:
        """From now on nothing runs past ``seconds`` from now, what runs already included."""
        latest = asyncio.get_running_loop().time() + seconds
        self._latest = latest if self._latest is None else min(self._latest, latest)
        for timeout in self._running:
            when = timeout.when()
            if when is None or when > self._latest:
                timeout.reschedule(self._latest)
