"""Events per key in a sliding window, and a ban for a key that reaches its limit.

In this process's memory, bounded: failed logins (see
:mod:`sidecar.regulation_store`), guest names entered per address, room-size
requests per second.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from cachetools import TTLCache

# Bounds memory under a spray of made-up names or addresses.
MAX_TRACKED_KEYS = 100_000


class SlidingCounter:
    """Events per key in a sliding window; a key that reaches ``limit`` is banned."""

    def __init__(
        self, limit: int, *, window: int, ban_time: int, clock: Callable[[], float]
    ) -> None:
        self._limit = limit
        self._window = window
        self._ban_time = ban_time
        self._clock = clock
        # A tuple of at most limit - 1 times per key: a deque would cost ten times the memory.
        self._events: TTLCache[Hashable, tuple[float, ...]] = TTLCache(
            MAX_TRACKED_KEYS, window, timer=clock
        )
        self._banned_until: TTLCache[Hashable, float] = TTLCache(
            MAX_TRACKED_KEYS, ban_time, timer=clock
        )

    @property
    def limit(self) -> int:
        return self._limit

    def recent(self, key: Hashable) -> int:
        """Events within the window (none once the key was banned: the ban holds instead)."""
        events = self._events.get(key)
        if not events:
            return 0
        oldest_counted = self._clock() - self._window
        return sum(1 for stamp in events if stamp > oldest_counted)

    def banned_for(self, key: Hashable) -> float:
        until = self._banned_until.get(key)
        if until is None:
            return 0.0
        return max(0.0, until - self._clock())

    def fail(self, key: Hashable) -> None:
        now = self._clock()
        oldest_counted = now - self._window
        events = (
            *(stamp for stamp in self._events.get(key, ()) if stamp > oldest_counted),
            now,
        )
        if len(events) >= self._limit:
            self._banned_until[key] = now + self._ban_time
            self._events.pop(key, None)
        else:
            # Re-inserting refreshes the entry's time to live to one more window.
            self._events[key] = events

    def forget(self, key: Hashable) -> None:
        self._events.pop(key, None)
