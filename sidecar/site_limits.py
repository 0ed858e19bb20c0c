"""A limit per key and hour for the whole site: guest names entered per address,
guest links created per teacher.

With ``[state] redis_url`` the events are counted in Redis, so that the limit
holds for the site however many workers and nodes serve it (each process
counting for itself would let an address through once per process). A key that
reaches the limit is banned for ``ban_time``, as :class:`SlidingCounter` does.
Check, count and ban are one Lua script: two processes asking at once cannot
both take the last event.

This process counts as well: while Redis does not answer (or answers with
something else than a number) its own count holds, and nobody sees a 500.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable

from sidecar.shared_state import SharedState, integer
from sidecar.sliding_counter import SlidingCounter

# KEYS: the events within the window (a sorted set scored by time), the ban.
# ARGV: now, window (seconds), limit, ban (milliseconds), this event's member.
# Answers the milliseconds the key is still banned; 0: this event is allowed and counted.
_SCRIPT = """
local banned = redis.call('PTTL', KEYS[2])
if banned > 0 then return banned end
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], now, ARGV[5])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
  redis.call('DEL', KEYS[1])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class SiteLimit:
    """At most ``limit`` events per key in ``window`` seconds, site-wide where Redis is."""

    def __init__(
        self,
        kind: str,
        limit: int,
        *,
        window: int,
        ban_time: int,
        shared: SharedState | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kind = kind
        self._limit = limit
        self._window = window
        self._ban_time = ban_time
        self._shared = shared
        self._clock = clock
        self._local = SlidingCounter(limit, window=window, ban_time=ban_time, clock=time.monotonic)
        self._script = shared.script(_SCRIPT) if shared is not None else None
        # Members of the window's set: unique per event across processes.
        self._tag = secrets.token_hex(6)
        self._events = itertools.count()

    @property
    def local(self) -> SlidingCounter:
        """This process's own count."""
        return self._local

    async def wait_for(self, key: str) -> float:
        """Seconds until ``key`` may act again; 0: it may now, and this event counts."""
        wait = self._local.banned_for(key)
        if wait > 0:
            return wait
        if self._shared is not None and self._script is not None:
            shared = self._shared
            member = f"{self._tag}:{next(self._events)}"
            milliseconds = await shared.evaluate(
                self._kind,
                self._script,
                [shared.key(self._kind, key), shared.key(f"{self._kind}-ban", key)],
                [self._clock(), self._window, self._limit, self._ban_time * 1000, member],
                integer,
            )
            if milliseconds is not None and milliseconds > 0:
                return min(milliseconds / 1000, float(self._ban_time))
        self._local.record(key)
        return 0.0
