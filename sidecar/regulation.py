"""Failure counting and bans, per user name and per client address.

Failures are counted in a sliding window; past the limit the name (or the
address) is banned for a while, and a banned login is refused before any
bind. Unknown user and wrong password count the same. An LDAP outage is
nobody's failure and is not counted.
"""

from __future__ import annotations

import time
import unicodedata
from collections import deque
from collections.abc import Callable

from cachetools import TTLCache

from sidecar.config import RegulationSettings

# Bounds memory under a spray of made-up names or addresses.
MAX_TRACKED_KEYS = 100_000


class _Counter:
    def __init__(self, limit: int, settings: RegulationSettings, clock: Callable[[], float]):
        self._limit = limit
        self._window = settings.window
        self._ban_time = settings.ban_time
        self._clock = clock
        self._failures: TTLCache[str, deque[float]] = TTLCache(
            MAX_TRACKED_KEYS, settings.window, timer=clock
        )
        self._banned_until: TTLCache[str, float] = TTLCache(
            MAX_TRACKED_KEYS, settings.ban_time, timer=clock
        )

    def banned_for(self, key: str) -> float:
        until = self._banned_until.get(key)
        if until is None:
            return 0.0
        return max(0.0, until - self._clock())

    def fail(self, key: str) -> None:
        now = self._clock()
        failures = self._failures.get(key) or deque()
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        failures.append(now)
        # Re-inserting refreshes the entry's time to live to one more window.
        self._failures[key] = failures
        if len(failures) >= self._limit:
            self._banned_until[key] = now + self._ban_time
            del self._failures[key]

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


class Regulator:
    def __init__(
        self, settings: RegulationSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._users = _Counter(settings.max_failures_per_user, settings, clock)
        self._addresses = _Counter(settings.max_failures_per_address, settings, clock)

    @staticmethod
    def _user_key(username: str) -> str:
        # LDAP matches uid case-insensitively and after Unicode normalisation:
        # "Anna", "anna" and "Anna" in fullwidth letters are one target.
        return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())

    def banned_for(self, username: str, address: str) -> float:
        """Seconds until ``username`` from ``address`` may try again; 0 when now."""
        return max(
            self._users.banned_for(self._user_key(username)),
            self._addresses.banned_for(address) if address else 0.0,
        )

    def failed(self, username: str, address: str) -> None:
        self._users.fail(self._user_key(username))
        if address:
            self._addresses.fail(address)

    def succeeded(self, username: str) -> None:
        # Only the name's count: an attacker's own good login must not clear
        # the failures counted against their address.
        self._users.forget(self._user_key(username))
