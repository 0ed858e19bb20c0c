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
# "Try again in a minute" while the checks already under way would reach the limit.
BUSY_RETRY_SECONDS = 60.0


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
        # Checks under way: each may yet fail, so each counts against the limit.
        self._in_flight: dict[str, int] = {}

    def _recent_failures(self, key: str) -> int:
        failures = self._failures.get(key)
        if not failures:
            return 0
        oldest_counted = self._clock() - self._window
        return sum(1 for stamp in failures if stamp > oldest_counted)

    def saturated(self, key: str) -> bool:
        """Past failures plus checks under way reach the limit: no further check now."""
        return self._recent_failures(key) + self._in_flight.get(key, 0) >= self._limit

    def begin(self, key: str) -> None:
        self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def end(self, key: str) -> None:
        remaining = self._in_flight.get(key, 0) - 1
        if remaining > 0:
            self._in_flight[key] = remaining
        else:
            self._in_flight.pop(key, None)

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

    def begin_attempt(self, username: str, address: str) -> float:
        """Seconds to wait before a check may be made; 0 means go, and it is now under way.

        A check under way counts like a failure until it ends, so a burst of
        parallel guesses cannot pass the limit while the first binds are
        still waiting for the directory. Every 0 must be followed by
        :meth:`end_attempt`.
        """
        wait = self.banned_for(username, address)
        if wait > 0:
            return wait
        user_key = self._user_key(username)
        if self._users.saturated(user_key) or (address and self._addresses.saturated(address)):
            return BUSY_RETRY_SECONDS
        self._users.begin(user_key)
        if address:
            self._addresses.begin(address)
        return 0.0

    def end_attempt(self, username: str, address: str) -> None:
        self._users.end(self._user_key(username))
        if address:
            self._addresses.end(address)

    def failed(self, username: str, address: str) -> None:
        self._users.fail(self._user_key(username))
        if address:
            self._addresses.fail(address)

    def succeeded(self, username: str) -> None:
        # Only the name's count: an attacker's own good login must not clear
        # the failures counted against their address.
        self._users.forget(self._user_key(username))
