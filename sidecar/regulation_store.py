"""Where failure counts, bans and people's usual places live: this process's
memory (:class:`MemoryStore`, the default) or a Redis that several sidecars
share (:class:`RedisStore`).

A count is named by its kind (per person from one place, per person overall,
per place) and a key. Redis keys carry a digest of the key, never a user name
or an address. When Redis does not answer, the Redis store answers from its
own memory, which every write goes to as well: bans fail open to what this
process saw itself, and logins go on (:mod:`sidecar.shared_state`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from cachetools import TTLCache

from sidecar.config import RegulationSettings
from sidecar.shared_state import SharedState
from sidecar.sliding_counter import MAX_TRACKED_KEYS, SlidingCounter

CountName = Literal["person_at_place", "person", "place", "place_for_everybody"]
# (kind of count, key): the key joins a who and a place with a newline, which neither holds.
Count = tuple[CountName, str]


@dataclass(frozen=True)
class Reading:
    """What a store knows about one check: seconds of ban left and recent failures, per count."""

    bans: dict[Count, float] = field(default_factory=dict)
    failures: dict[Count, int] = field(default_factory=dict)
    known: bool = False  # the person logged in from this place lately


class RegulationStore(Protocol):
    async def read(self, counts: Sequence[Count], known: str) -> Reading:
        """Bans and recent failures of ``counts``; whether the pair ``known`` is known."""

    async def fail(self, counts: Sequence[tuple[Count, int]]) -> None:
        """One failure for each count; a count that reaches its limit is banned."""

    async def succeed(self, count: Count, known: str) -> None:
        """Forget ``count``'s failures and remember the pair ``known`` as a usual place."""

    async def entry_of(self, name: str) -> str | None:
        """The directory entry a search found for ``name`` lately."""

    async def learn_entry(self, name: str, entry: str) -> None: ...


class MemoryStore:
    """Counts in this process: bounded caches that forget at their window's end."""

    def __init__(
        self,
        settings: RegulationSettings,
        limits: dict[CountName, int],
        *,
        clock: Callable[[], float],
    ) -> None:
        self._counters = {
            name: SlidingCounter(
                limit, window=settings.window, ban_time=settings.ban_time, clock=clock
            )
            for name, limit in limits.items()
        }
        self._known: TTLCache[str, bool] = TTLCache(
            MAX_TRACKED_KEYS, settings.known_address_lifetime, timer=clock
        )
        self._entries: TTLCache[str, str] = TTLCache(
            MAX_TRACKED_KEYS, settings.known_address_lifetime, timer=clock
        )

    async def read(self, counts: Sequence[Count], known: str) -> Reading:
        return self.read_now(counts, known)

    def read_now(self, counts: Sequence[Count], known: str) -> Reading:
        return Reading(
            bans={count: self._counters[count[0]].banned_for(count[1]) for count in counts},
            failures={count: self._counters[count[0]].recent(count[1]) for count in counts},
            known=known in self._known,
        )

    async def fail(self, counts: Sequence[tuple[Count, int]]) -> None:
        for (name, key), _limit in counts:
            self._counters[name].fail(key)

    async def succeed(self, count: Count, known: str) -> None:
        self._counters[count[0]].forget(count[1])
        self._known[known] = True

    async def entry_of(self, name: str) -> str | None:
        return self._entries.get(name)

    async def learn_entry(self, name: str, entry: str) -> None:
        self._entries[name] = entry


class RedisStore:
    """Counts in a shared Redis, with this process's memory as a copy for when it is away.

    Failures are a sorted set per count (scored by wall-clock time, so that
    several machines agree), a ban is a key that expires with it.
    """

    def __init__(
        self,
        shared: SharedState,
        settings: RegulationSettings,
        local: MemoryStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._shared = shared.run
        self._key = shared.key
        self._redis = shared.redis
        self._settings = settings
        self._local = local
        self._clock = clock

    def _failures_key(self, count: Count) -> str:
        return self._key(f"failures:{count[0]}", count[1])

    def _ban_key(self, count: Count) -> str:
        return self._key(f"ban:{count[0]}", count[1])

    async def read(self, counts: Sequence[Count], known: str) -> Reading:
        oldest_counted = self._clock() - self._settings.window
        pipe = self._redis.pipeline(transaction=False)
        for count in counts:
            pipe.pttl(self._ban_key(count))
            pipe.zcount(self._failures_key(count), f"({oldest_counted}", "+inf")
        pipe.exists(self._key("known", known))
        answers = await self._shared("read", pipe.execute())
        if answers is None:
            return self._local.read_now(counts, known)
        bans: dict[Count, float] = {}
        failures: dict[Count, int] = {}
        for index, count in enumerate(counts):
            milliseconds, recent = answers[2 * index], answers[2 * index + 1]
            bans[count] = max(0, milliseconds) / 1000  # -2: no such key, -1: no expiry
            failures[count] = int(recent)
        return Reading(bans, failures, known=bool(answers[-1]))

    async def fail(self, counts: Sequence[tuple[Count, int]]) -> None:
        await self._local.fail(counts)
        now = self._clock()
        window_ms = self._settings.window * 1000
        pipe = self._redis.pipeline(transaction=False)
        for count, _limit in counts:
            key = self._failures_key(count)
            # A unique member per failure: two at the same instant are two.
            pipe.zadd(key, {f"{now}:{secrets.token_hex(4)}": now})
            pipe.zremrangebyscore(key, "-inf", now - self._settings.window)
            pipe.zcard(key)
            pipe.pexpire(key, window_ms)
        answers = await self._shared("fail", pipe.execute())
        if answers is None:
            return
        banning = self._redis.pipeline(transaction=False)
        reached = False
        for index, (count, limit) in enumerate(counts):
            if int(answers[4 * index + 2]) >= limit:
                reached = True
                banning.set(self._ban_key(count), "1", px=self._settings.ban_time * 1000)
                banning.delete(self._failures_key(count))
        if reached:
            await self._shared("ban", banning.execute())

    async def succeed(self, count: Count, known: str) -> None:
        await self._local.succeed(count, known)
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(self._failures_key(count))
        if self._settings.known_address_lifetime > 0:
            pipe.set(self._key("known", known), "1", ex=self._settings.known_address_lifetime)
        await self._shared("succeed", pipe.execute())

    async def entry_of(self, name: str) -> str | None:
        found = await self._shared("entry", self._redis.get(self._key("entry", name)))
        if found is None:
            return await self._local.entry_of(name)
        return found.decode("utf-8", "surrogatepass") if isinstance(found, bytes) else str(found)

    async def learn_entry(self, name: str, entry: str) -> None:
        await self._local.learn_entry(name, entry)
        lifetime = max(1, self._settings.known_address_lifetime)
        await self._shared(
            "entry",
            self._redis.set(
                self._key("entry", name), entry.encode("utf-8", "surrogatepass"), ex=lifetime
            ),
        )
