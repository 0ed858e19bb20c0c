"""Good Basic credentials, remembered for a short while.

Browsers send Basic credentials with every request, and each would be an LDAP
bind. The cache holds the person for ``cache.basic_ttl`` seconds, keyed by an
HMAC of user name and password under a key made at start-up and never
stored: neither the password nor anything that could be tested offline
against a guess survives the process. Concurrent checks of the same
credentials share one bind. Failures are never cached.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable

from cachetools import TTLCache

from sidecar.config import CacheSettings
from sidecar.credentials import Credentials
from sidecar.people import Person
from sidecar.single_flight import SingleFlight


class CredentialCache:
    def __init__(
        self, settings: CacheSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._key = secrets.token_bytes(32)
        self._enabled = settings.basic_ttl > 0
        self._people: TTLCache[bytes, Person] = TTLCache(
            settings.basic_size, max(settings.basic_ttl, 1), timer=clock
        )
        self._checks: SingleFlight[bytes, Person] = SingleFlight()  # by key and place

    def _cache_key(self, credentials: Credentials) -> bytes:
        username = credentials.username.encode("utf-8")
        password = credentials.password.encode("utf-8")
        # Length-prefixed, so "a:b" + "c" and "a" + "b:c" cannot collide.
        message = len(username).to_bytes(4, "big") + username + password
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def cached(self, credentials: Credentials) -> Person | None:
        if not self._enabled:
            return None
        return self._people.get(self._cache_key(credentials))

    async def get_or_check(
        self,
        credentials: Credentials,
        check: Callable[[Credentials], Awaitable[Person]],
        *,
        place: str = "",
    ) -> Person:
        """The cached person, or ``check(credentials)``, run once for concurrent callers
        from one ``place`` (each place's bans and counts are its own)."""
        if not self._enabled:
            return await check(credentials)
        key = self._cache_key(credentials)
        person = self._people.get(key)
        if person is not None:
            return person
        person = await self._checks.run(key + place.encode(), lambda: check(credentials))
        # Only a good check gets here: failures are never remembered.
        self._people[key] = person
        return person

    def __len__(self) -> int:
        return len(self._people)
