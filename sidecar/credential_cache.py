"""Good Basic credentials, remembered for a short while.

Browsers send Basic credentials with every request, and each would be an LDAP
bind. The cache holds the person for ``cache.basic_ttl`` seconds, keyed by an
HMAC of user name and password; the password itself is never kept.
Concurrent checks of the same credentials share one bind. Failures are never
cached.

By default the HMAC key is made at start-up and never stored: nothing that
could be tested offline against a guessed password survives the process.
With ``cache.basic_state_file`` the cache outlives a restart (so that a
directory outage and a restart together do not lock cached people out): the
HMAC key is then derived from the first session key (HKDF), and the entries
(HMAC, person, seconds left) are written at stop, sealed with Fernet under
another key derived from the session keys, and read back at start. Whoever
reads the file without the session keys learns nothing, not even a name;
whoever holds the keys as well could test guessed passwords against it
offline, which is why it is an option (and needs the keys that already let
their holder forge any session).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cachetools import TLRUCache
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sidecar.config.settings import CacheSettings, Secret
from sidecar.credentials import Credentials
from sidecar.people import Person
from sidecar.single_flight import SingleFlight
from sidecar.state_files import remove_leftovers, write_atomically

log = logging.getLogger(__name__)

HMAC_INFO = b"jitsi-auth-sidecar basic cache key v1"
SEAL_INFO = b"jitsi-auth-sidecar basic cache file v1"
FORMAT_VERSION = 1


def _derived(key: Secret, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key.reveal())


@dataclass(frozen=True)
class _Entry:
    person: Person
    expires: float  # on the cache's clock


class CredentialCache:
    def __init__(
        self,
        settings: CacheSettings,
        *,
        keys: Sequence[Secret] = (),
        state_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``state_file`` (and the session ``keys`` that seal it): kept across restarts."""
        self._clock = clock
        self._wall_clock = wall_clock
        self._ttl = max(settings.basic_ttl, 1)
        self._enabled = settings.basic_ttl > 0
        self._state_file = state_file if keys else None
        if self._state_file is not None:
            self._key = _derived(keys[0], HMAC_INFO)
            self._seal = MultiFernet(
                [Fernet(base64.urlsafe_b64encode(_derived(key, SEAL_INFO))) for key in keys]
            )
        else:
            self._key = secrets.token_bytes(32)
        self._people: TLRUCache[bytes, _Entry] = TLRUCache(
            settings.basic_size, lambda _key, entry, _now: entry.expires, timer=clock
        )
        self._checks: SingleFlight[bytes, Person] = SingleFlight()  # by key and place

    def _cache_key(self, credentials: Credentials) -> bytes:
        username = credentials.username.encode("utf-8")
        password = credentials.password.encode("utf-8")
        # Length-prefixed, so "a:b" + "c" and "a" + "b:c" cannot collide.
        message = len(username).to_bytes(4, "big") + username + password
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def _get(self, key: bytes) -> Person | None:
        entry = self._people.get(key)
        return None if entry is None else entry.person

    def cached(self, credentials: Credentials) -> Person | None:
        if not self._enabled:
            return None
        return self._get(self._cache_key(credentials))

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
        person = self._get(key)
        if person is not None:
            return person
        person = await self._checks.ask_once(key + place.encode(), lambda: check(credentials))
        # Only a good check gets here: failures are never remembered.
        self._people[key] = _Entry(person, self._clock() + self._ttl)
        return person

    def __len__(self) -> int:
        self._people.expire()
        return len(self._people)

    # -- across restarts ------------------------------------------------------

    def load(self) -> int:
        """Read what the last process kept (state_file); how many entries are still good.

        An unreadable or foreign file is logged and ignored: this is a cache,
        and a cold one only costs binds.
        """
        if self._state_file is None or not self._enabled:
            return 0
        remove_leftovers(self._state_file)  # a write a kill cut short
        try:
            sealed = self._state_file.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as error:
            log.warning("cannot read cache.basic_state_file: %s", error.strerror)
            return 0
        try:
            kept = json.loads(self._seal.decrypt(sealed))
            entries = self._entries_from(kept)
        except (InvalidToken, ValueError, KeyError, TypeError):
            # Sealed under keys no longer configured, or not this file at all.
            log.warning("ignoring cache.basic_state_file: not sealed with the session keys")
            return 0
        now = self._clock()
        for key, person, left in entries:
            if 0 < left <= self._ttl:
                self._people[key] = _Entry(person, now + left)
        return len(self)

    def _entries_from(self, kept: Any) -> list[tuple[bytes, Person, float]]:
        if kept["version"] != FORMAT_VERSION:
            raise ValueError("version")
        elapsed = max(self._wall_clock() - float(kept["saved_at"]), 0.0)
        found = []
        for item in kept["entries"]:
            key = base64.b64decode(item["key"], validate=True)
            person = Person(
                user_id=str(item["user_id"]),
                display_name=str(item["display_name"]),
                email=str(item["email"]),
                groups=frozenset(str(group) for group in item["groups"]),
                context_group=str(item["group"]),
                avatar=str(item["avatar"]),
            )
            found.append((key, person, float(item["left"]) - elapsed))
        return found

    def save(self) -> None:
        """Keep the good entries for the next process (state_file), written atomically."""
        if self._state_file is None or not self._enabled:
            return
        now = self._clock()
        self._people.expire()
        entries = [
            {
                "key": base64.b64encode(key).decode("ascii"),
                "left": entry.expires - now,
                "user_id": entry.person.user_id,
                "display_name": entry.person.display_name,
                "email": entry.person.email,
                "groups": sorted(entry.person.groups),
                "group": entry.person.context_group,
                "avatar": entry.person.avatar,
            }
            for key, entry in self._people.items()
        ]
        kept = {"version": FORMAT_VERSION, "saved_at": self._wall_clock(), "entries": entries}
        sealed = self._seal.encrypt(json.dumps(kept).encode("utf-8"))
        try:
            write_atomically(self._state_file, sealed)
        except OSError as error:
            log.warning("cannot write cache.basic_state_file: %s", error.strerror)
            return
        log.info("kept %d cached Basic credentials for the next start", len(entries))
