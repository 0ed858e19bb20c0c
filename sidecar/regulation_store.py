"""Where failure counts, bans and people's usual places live: this process's
memory (:class:`MemoryStore`, the default) or a Redis that several sidecars
share (:class:`RedisStore`).

A count is named by its kind (per person from one place, per person overall,
per place) and a key. Redis keys carry a digest of the key, not the user
name or the address. Checks under way are counted in the store too (in Redis,
a mark that expires on its own should its process die), each before the
store is read, so that any two parallel checks see each other, wherever they
run. Every write goes to this process's memory as well, and every answer is
the larger of Redis's and its own: when Redis does not answer, or refuses
writes, bans fall back to what this process counted itself, and logins go
on (:mod:`sidecar.shared_state`).
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from sidecar.config.settings import RegulationSettings
from sidecar.shared_state import (
    SharedState,
    digest,
    done,
    integers,
    integers_then_score,
    optional_text,
)
from sidecar.sliding_counter import EVICTION_SHARE, MAX_TRACKED_KEYS, SlidingCounter

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

CountName = Literal["person_at_place", "person", "place", "place_for_everybody"]
# (kind of count, key): the key joins a who and a place with a newline, which neither holds.
Count = tuple[CountName, str]
# The longest a check can be under way (ldap.deadline is at most 12 s), with room to spare.
UNDER_WAY_SECONDS = 30
# Pairs of person and place known from a successful login, at most (each costs a login).
MAX_KNOWN_PLACES = 50_000
# Places one person is known at, at most (the ones seen last are kept): a person who
# logs in from many addresses must not fill Redis, nor push other people's places out.
MAX_KNOWN_PLACES_PER_PERSON = 16
# Names whose directory entry a search found, at most (each is a name the directory has).
MAX_ENTRIES_REMEMBERED = 20_000
T = TypeVar("T", int, float)


@dataclass(frozen=True)
class Reading:
    """What a store knows about one check, per count: seconds of ban left, recent
    failures, and checks under way that began before this one, this one included."""

    bans: dict[Count, float] = field(default_factory=dict)
    failures: dict[Count, int] = field(default_factory=dict)
    under_way: dict[Count, int] = field(default_factory=dict)
    known: bool = False  # the person logged in from this place lately

    def merged(self, shared: Reading) -> Reading:
        """This process's reading with Redis's: the larger bans and failures, count by
        count (either may have missed the other's writes), and Redis's checks under way
        (it orders every process's, this one's among them)."""

        def larger(mine: dict[Count, T], theirs: dict[Count, T]) -> dict[Count, T]:
            return {
                count: max(mine.get(count, value), value) for count, value in theirs.items()
            } | {count: value for count, value in mine.items() if count not in theirs}

        return Reading(
            larger(self.bans, shared.bans),
            larger(self.failures, shared.failures),
            shared.under_way,
            known=self.known or shared.known,
        )


@dataclass(frozen=True)
class Hold:
    """One check under way, counted against ``counts`` until it ends."""

    counts: tuple[Count, ...]
    mark: str  # its member in Redis's sets of checks under way


class RegulationStore(Protocol):
    async def begin(
        self, charged: Sequence[Count], consulted: Sequence[Count], known: str
    ) -> tuple[Hold, Reading]:
        """Count a check under way against ``charged``, then read ``consulted``."""

    def release(self, hold: Hold) -> None:
        """The check is over, for this process's count: at once, whatever happens next."""

    async def unmark(self, hold: Hold) -> None:
        """The check is over, for the other processes too (after :meth:`release`)."""

    async def read(self, consulted: Sequence[Count], known: str) -> Reading:
        """Bans of ``consulted`` and whether the pair ``known`` is known: what a ban
        check needs (asked before every cached Basic answer, so failures and checks
        under way, which only a password check needs, are left out where they cost)."""

    async def fail(self, hold: Hold, limits: Mapping[CountName, int]) -> None:
        """One failure for each of the hold's counts; one that reaches its limit is banned."""

    async def succeed(self, count: Count, known: str) -> None:
        """Forget ``count``'s failures and remember the pair ``known`` as a usual place."""

    async def entry_of(self, name: str) -> str | None:
        """The directory entry a search found for ``name`` lately."""

    async def learn_entry(self, name: str, entry: str, *, stand_in: bool = False) -> None:
        """Remember ``entry`` as ``name``'s; a ``stand_in`` (for a name the directory
        lacks) only where it costs what a real one does, and for one window only."""


class Remembered:
    """A value per key for ``lifetime`` seconds after it was last set, for at most
    ``max_keys`` keys: when full, those past their lifetime go first, then the ones
    set longest ago. Keys are kept as their hash (as in :mod:`sidecar.sliding_counter`)."""

    def __init__(self, lifetime: int, *, clock: Callable[[], float], max_keys: int) -> None:
        self._lifetime = lifetime
        self._clock = clock
        self._max_keys = max_keys
        self._batch = max(1, max_keys // EVICTION_SHARE)
        # (until, value), in the order set: every entry lives as long, so also the order they end.
        self._items: dict[int, tuple[float, str]] = {}

    def get(self, key: str) -> str | None:
        item = self._items.get(hash(key))
        if item is None or item[0] <= self._clock():
            return None
        return item[1]

    def set(self, key: str, value: str) -> None:
        now = self._clock()
        slot = hash(key)
        self._items.pop(slot, None)
        if len(self._items) >= self._max_keys:
            items = self._items
            ended = list(itertools.takewhile(lambda slot: items[slot][0] <= now, items))
            for old in ended or list(itertools.islice(items, self._batch)):
                del items[old]
        self._items[slot] = (now + self._lifetime, value)

    def forget(self, key: str) -> None:
        self._items.pop(hash(key), None)

    def __len__(self) -> int:
        return len(self._items)


class KnownPlaces:
    """Pairs of person and place known from a successful login, at most
    :data:`MAX_KNOWN_PLACES_PER_PERSON` per person (the ones seen last) and
    ``max_keys`` in all (see :class:`Remembered`)."""

    def __init__(self, lifetime: int, *, clock: Callable[[], float], max_keys: int) -> None:
        self._known = Remembered(lifetime, clock=clock, max_keys=max_keys)
        self._max_people = max_keys
        # Per person (hashed), her pairs in the order last seen; people in the order last seen.
        self._pairs_of: dict[int, dict[str, None]] = {}

    def knows(self, pair: str) -> bool:
        return self._known.get(pair) is not None

    def learn(self, pair: str) -> None:
        person = hash(pair.rpartition("\n")[0])
        pairs = self._pairs_of.pop(person, {})
        pairs.pop(pair, None)
        pairs[pair] = None
        while len(pairs) > MAX_KNOWN_PLACES_PER_PERSON:
            oldest = next(iter(pairs))
            del pairs[oldest]
            self._known.forget(oldest)
        self._pairs_of[person] = pairs
        if len(self._pairs_of) > self._max_people:
            # Whose last login is oldest: her places are the ones Remembered drops first, too.
            del self._pairs_of[next(iter(self._pairs_of))]
        self._known.set(pair, "")

    def __len__(self) -> int:
        return len(self._known)


class MemoryStore:
    """Counts in this process: bounded tables that forget at their window's end."""

    def __init__(
        self,
        settings: RegulationSettings,
        limits: Mapping[CountName, int],
        *,
        clock: Callable[[], float],
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self._counters = {
            name: SlidingCounter(
                limit,
                window=settings.window,
                ban_time=settings.ban_time,
                clock=clock,
                max_keys=max_keys,
            )
            for name, limit in limits.items()
        }
        self._under_way: dict[Count, int] = {}
        self._known = KnownPlaces(
            settings.known_address_lifetime, clock=clock, max_keys=min(max_keys, MAX_KNOWN_PLACES)
        )
        self._entries = Remembered(
            settings.known_address_lifetime,
            clock=clock,
            max_keys=min(max_keys, MAX_ENTRIES_REMEMBERED),
        )

    def sizes(self) -> dict[str, int]:
        """Keys held per table (what a spray of made-up names fills)."""
        sizes = {
            f"{name} counted": counter.counted_keys for name, counter in self._counters.items()
        }
        sizes |= {f"{name} banned": counter.banned_keys for name, counter in self._counters.items()}
        return sizes | {"known places": len(self._known), "entries": len(self._entries)}

    def hold(self, charged: Sequence[Count]) -> Hold:
        for count in charged:
            self._under_way[count] = self._under_way.get(count, 0) + 1
        return Hold(tuple(charged), secrets.token_hex(8))

    def release(self, hold: Hold) -> None:
        for count in hold.counts:
            remaining = self._under_way.get(count, 0) - 1
            if remaining > 0:
                self._under_way[count] = remaining
            else:
                self._under_way.pop(count, None)

    def read_now(self, consulted: Sequence[Count], known: str) -> Reading:
        return Reading(
            bans={count: self._counters[count[0]].banned_for(count[1]) for count in consulted},
            failures={count: self._counters[count[0]].recent(count[1]) for count in consulted},
            under_way={count: self._under_way.get(count, 0) for count in consulted},
            known=self._known.knows(known),
        )

    async def begin(
        self, charged: Sequence[Count], consulted: Sequence[Count], known: str
    ) -> tuple[Hold, Reading]:
        hold = self.hold(charged)
        return hold, self.read_now(consulted, known)

    async def unmark(self, hold: Hold) -> None:
        """Nobody else counts this process's checks."""

    def read_bans_now(self, consulted: Sequence[Count], known: str) -> Reading:
        return Reading(
            bans={count: self._counters[count[0]].banned_for(count[1]) for count in consulted},
            known=self._known.knows(known),
        )

    async def read(self, consulted: Sequence[Count], known: str) -> Reading:
        return self.read_bans_now(consulted, known)

    async def fail(self, hold: Hold, limits: Mapping[CountName, int]) -> None:
        for name, key in hold.counts:
            self._counters[name].record(key)

    async def succeed(self, count: Count, known: str) -> None:
        self._counters[count[0]].forget(count[1])
        self._known.learn(known)

    async def entry_of(self, name: str) -> str | None:
        return self._entries.get(name)

    async def learn_entry(self, name: str, entry: str, *, stand_in: bool = False) -> None:
        # In memory a stand-in costs no time worth hiding, and would push real entries out.
        if not stand_in:
            self._entries.set(name, entry)


class RedisStore:
    """Counts in a shared Redis, with this process's memory as a copy for when it is away.

    Failures are a sorted set per count (scored by wall-clock time, so that
    several machines agree), checks under way another (scored by when they
    began: one older than :data:`UNDER_WAY_SECONDS` is a process that died),
    a ban is a key that expires with it.
    """

    def __init__(
        self,
        shared: SharedState,
        settings: RegulationSettings,
        local: MemoryStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._shared = shared
        self._key = shared.key
        self._settings = settings
        self._local = local
        self._clock = clock

    def _failures_key(self, count: Count) -> str:
        return self._key(f"failures:{count[0]}", count[1])

    def _under_way_key(self, count: Count) -> str:
        return self._key(f"under-way:{count[0]}", count[1])

    def _ban_key(self, count: Count) -> str:
        return self._key(f"ban:{count[0]}", count[1])

    async def begin(
        self, charged: Sequence[Count], consulted: Sequence[Count], known: str
    ) -> tuple[Hold, Reading]:
        hold = self._local.hold(charged)
        # This process's reading now, before any wait: checks it begins meanwhile come after.
        local = self._local.read_now(consulted, known)
        now = self._clock()
        # One transaction, so the order is Redis's own: each check counts the checks
        # that arrived before it and are still under way (of any two at once, the
        # later counts the earlier), and failures as they were at that moment (a
        # check that ended before has written its failure by then).

        def queue(pipe: Pipeline) -> None:
            for count in charged:
                key = self._under_way_key(count)
                pipe.zremrangebyscore(key, "-inf", now - UNDER_WAY_SECONDS)
                pipe.zcard(key)
                pipe.zadd(key, {hold.mark: now})
                pipe.expire(key, UNDER_WAY_SECONDS)
            self._queue_reading(pipe, consulted, known, now)

        answered = integers_then_score(4 * len(charged) + _reading_length(consulted))
        try:
            answers = await self._shared.pipeline("begin", queue, answered, transaction=True)
        except BaseException:
            # Cancelled while Redis was asked: no count of this process stays
            # behind (a mark in Redis, if made, expires by itself).
            self._local.release(hold)
            raise
        if answers is None:
            return hold, local
        ahead = {count: int(answers[4 * index + 1]) + 1 for index, count in enumerate(charged)}
        shared = self._reading(answers[4 * len(charged) :], consulted, ahead)
        return hold, local.merged(shared)

    def release(self, hold: Hold) -> None:
        self._local.release(hold)

    async def unmark(self, hold: Hold) -> None:
        def queue(pipe: Pipeline) -> None:
            for count in hold.counts:
                pipe.zrem(self._under_way_key(count), hold.mark)

        # Unanswered, the marks count until UNDER_WAY_SECONDS have passed.
        await self._shared.pipeline("end", queue, done)

    async def read(self, consulted: Sequence[Count], known: str) -> Reading:
        local = self._local.read_bans_now(consulted, known)
        now = self._clock()
        answers = await self._shared.pipeline(
            "read",
            lambda pipe: self._queue_reading(pipe, consulted, known, now),
            integers_then_score(_reading_length(consulted)),
        )
        return local if answers is None else local.merged(self._reading(answers, consulted, {}))

    def _queue_reading(
        self, pipe: Pipeline, consulted: Sequence[Count], known: str, now: float
    ) -> None:
        for count in consulted:
            pipe.pttl(self._ban_key(count))
            pipe.zcount(self._failures_key(count), f"({now - self._settings.window}", "+inf")
        who, _, place = known.rpartition("\n")
        pipe.zscore(self._known_key(who), digest(place))

    def _known_key(self, who: str) -> str:
        # One sorted set per person: place digest -> when she last logged in there.
        return self._key("known-places", who)

    def _reading(
        self, answers: list[Any], consulted: Sequence[Count], under_way: dict[Count, int]
    ) -> Reading:
        # The set lives as long as her latest login keeps it; each place only its lifetime.
        last_seen = answers[-1]
        known = last_seen is not None and (
            float(last_seen) > self._clock() - self._settings.known_address_lifetime
        )
        reading = Reading(under_way=under_way, known=known)
        for index, count in enumerate(consulted):
            milliseconds, failures = answers[2 * index : 2 * index + 2]
            reading.bans[count] = max(0, milliseconds) / 1000  # -2: no such key, -1: no expiry
            reading.failures[count] = int(failures)
        return reading

    async def fail(self, hold: Hold, limits: Mapping[CountName, int]) -> None:
        await self._local.fail(hold, limits)
        now = self._clock()
        window_ms = self._settings.window * 1000

        def queue(pipe: Pipeline) -> None:
            for count in hold.counts:
                key = self._failures_key(count)
                # A unique member per failure: two at the same instant are two.
                pipe.zadd(key, {f"{now}:{hold.mark}": now})
                pipe.zremrangebyscore(key, "-inf", now - self._settings.window)
                pipe.zcard(key)
                pipe.pexpire(key, window_ms)

        answers = await self._shared.pipeline("fail", queue, integers(4 * len(hold.counts)))
        if answers is None:
            return
        reached = [
            count
            for index, count in enumerate(hold.counts)
            if int(answers[4 * index + 2]) >= limits[count[0]]
        ]

        def ban(pipe: Pipeline) -> None:
            for count in reached:
                pipe.set(self._ban_key(count), "1", px=self._settings.ban_time * 1000)
                pipe.delete(self._failures_key(count))

        if reached:
            await self._shared.pipeline("ban", ban, done)

    async def succeed(self, count: Count, known: str) -> None:
        await self._local.succeed(count, known)
        lifetime = self._settings.known_address_lifetime
        now = self._clock()

        def queue(pipe: Pipeline) -> None:
            pipe.delete(self._failures_key(count))
            if lifetime > 0:
                who, _, place = known.rpartition("\n")
                key = self._known_key(who)
                pipe.zadd(key, {digest(place): now})
                pipe.zremrangebyscore(key, "-inf", now - lifetime)
                # The places she logged in from last are kept, the others forgotten.
                pipe.zremrangebyrank(key, 0, -MAX_KNOWN_PLACES_PER_PERSON - 1)
                pipe.expire(key, lifetime)

        await self._shared.pipeline("succeed", queue, done)

    async def entry_of(self, name: str) -> str | None:
        key = self._key("entry", name)
        found = await self._shared.command("entry", lambda redis: redis.get(key), optional_text)
        return found if found is not None else await self._local.entry_of(name)

    async def learn_entry(self, name: str, entry: str, *, stand_in: bool = False) -> None:
        await self._local.learn_entry(name, entry, stand_in=stand_in)
        # Written all the same for a stand-in, with the same command: a name the
        # directory lacks costs Redis what a known one does. Kept for one window
        # only, so that sprayed names do not pile up.
        lifetime = self._settings.window if stand_in else self._settings.known_address_lifetime
        lifetime = max(1, lifetime)
        key, value = self._key("entry", name), entry.encode("utf-8", "surrogatepass")
        await self._shared.command("entry", lambda redis: redis.set(key, value, ex=lifetime), done)


def _reading_length(consulted: Sequence[Count]) -> int:
    """How many answers :meth:`RedisStore._queue_reading` queues: two a count, and her place."""
    return 2 * len(consulted) + 1
