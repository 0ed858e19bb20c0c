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

With Redis, a password check costs two round trips: one transaction when
it begins (the name and the entry a search found for it, counted together,
with the entry learnt), and one pipeline or script when it ends (failures
and bans, or what a success forgets and learns, and the end of its marks).
A name the directory lacks costs exactly as much: a stand-in entry is
counted in its place.
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
    integer,
    optional_score,
    optional_text,
    shaped,
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


@dataclass(frozen=True)
class Check:
    """One "who" of a password check: the counts it goes into, the counts that may
    stop it, and the pair of who and place whose earlier login spares her bans."""

    charged: tuple[Count, ...]
    consulted: tuple[Count, ...]
    known: str


@dataclass(frozen=True)
class Learnt:
    """A name and the entry it led to (``stand_in``: the directory lacks the name)."""

    name: str
    entry: str
    stand_in: bool


@dataclass(frozen=True)
class Ending:
    """How a password check ends, for its store: ``failed`` counts a failure for every
    count of every hold; a success forgets ``forgotten``'s failures, makes the pairs
    ``known`` usual places. Neither: it counts against nobody."""

    holds: tuple[Hold, ...]
    failed: bool = False
    forgotten: tuple[Count, ...] = ()
    known: tuple[str, ...] = ()


class RegulationStore(Protocol):
    async def entry_of(self, name: str) -> str | None:
        """The directory entry a search found for ``name`` lately, in any process."""

    async def begin(
        self, checks: Sequence[Check], learnt: Learnt | None = None
    ) -> list[tuple[Hold, Reading]]:
        """Count each check under way, then read what it consults; ``learnt`` first."""

    def release(self, hold: Hold) -> None:
        """The check is over, for this process's count: at once, whatever happens next."""

    async def end(self, ending: Ending, limits: Mapping[CountName, int]) -> None:
        """The checks are over, for the other processes too (after :meth:`release`),
        with what they found; a failure that reaches a limit is banned."""

    async def read(self, checks: Sequence[Check]) -> list[Reading]:
        """Bans of what each check consults and whether its pair is known: what a ban
        check needs (asked before every cached Basic answer, so failures and checks
        under way, which only a password check needs, are left out where they cost)."""


class Remembered:
    """A value per key for ``lifetime`` seconds after it was last set, for at most
    ``max_keys`` keys: when full, those past their lifetime go first, then the ones
    set longest ago. Keys are kept as their hash (as in :mod:`sidecar.sliding_counter`),
    and an empty value takes no room beside its time."""

    def __init__(self, lifetime: int, *, clock: Callable[[], float], max_keys: int) -> None:
        self._lifetime = lifetime
        self._clock = clock
        self._max_keys = max_keys
        self._batch = max(1, max_keys // EVICTION_SHARE)
        # Until when, in the order set: every entry lives as long, so also the order they end.
        self._until: dict[int, float] = {}
        self._values: dict[int, str] = {}

    def get(self, key: str) -> str | None:
        slot = hash(key)
        until = self._until.get(slot)
        if until is None or until <= self._clock():
            return None
        return self._values.get(slot, "")

    def set(self, key: str, value: str = "") -> int:
        """Remembered from now on; the key's slot, for :meth:`forget_slot`."""
        now = self._clock()
        slot = hash(key)
        self.forget_slot(slot)
        if len(self._until) >= self._max_keys:
            until = self._until
            ended = list(itertools.takewhile(lambda slot: until[slot] <= now, until))
            for old in ended or list(itertools.islice(until, self._batch)):
                self.forget_slot(old)
        self._until[slot] = now + self._lifetime
        if value:
            self._values[slot] = value
        return slot

    def forget_slot(self, slot: int) -> None:
        self._until.pop(slot, None)
        self._values.pop(slot, None)

    def __len__(self) -> int:
        return len(self._until)


class KnownPlaces:
    """Pairs of person and place known from a successful login, at most
    :data:`MAX_KNOWN_PLACES_PER_PERSON` per person (the ones seen last) and
    ``max_keys`` in all (see :class:`Remembered`). Pairs are kept as their
    hashes alone: tens of thousands of them are a school's usual places."""

    def __init__(self, lifetime: int, *, clock: Callable[[], float], max_keys: int) -> None:
        self._known = Remembered(lifetime, clock=clock, max_keys=max_keys)
        self._max_people = max_keys
        # Per person (hashed), her pairs' slots in the order last seen; people in the
        # order last seen.
        self._pairs_of: dict[int, dict[int, None]] = {}

    def knows(self, pair: str) -> bool:
        return self._known.get(pair) is not None

    def learn(self, pair: str) -> None:
        person = hash(pair.rpartition("\n")[0])
        pairs = self._pairs_of.pop(person, {})
        slot = self._known.set(pair)
        pairs.pop(slot, None)
        pairs[slot] = None
        while len(pairs) > MAX_KNOWN_PLACES_PER_PERSON:
            oldest = next(iter(pairs))
            del pairs[oldest]
            self._known.forget_slot(oldest)
        self._pairs_of[person] = pairs
        if len(self._pairs_of) > self._max_people:
            # Whose last login is oldest: her places are the ones Remembered drops first, too.
            del self._pairs_of[next(iter(self._pairs_of))]

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

    def read_now(self, check: Check) -> Reading:
        consulted = check.consulted
        return Reading(
            bans={count: self._counters[count[0]].banned_for(count[1]) for count in consulted},
            failures={count: self._counters[count[0]].recent(count[1]) for count in consulted},
            under_way={count: self._under_way.get(count, 0) for count in consulted},
            known=self._known.knows(check.known),
        )

    async def begin(
        self, checks: Sequence[Check], learnt: Learnt | None = None
    ) -> list[tuple[Hold, Reading]]:
        if learnt is not None:
            self.learn_entry(learnt)
        return [(self.hold(check.charged), self.read_now(check)) for check in checks]

    def read_bans_now(self, check: Check) -> Reading:
        return Reading(
            bans={
                count: self._counters[count[0]].banned_for(count[1]) for count in check.consulted
            },
            known=self._known.knows(check.known),
        )

    async def read(self, checks: Sequence[Check]) -> list[Reading]:
        return [self.read_bans_now(check) for check in checks]

    async def end(self, ending: Ending, limits: Mapping[CountName, int]) -> None:
        self.count(ending)

    def count(self, ending: Ending) -> None:
        """What ``ending`` found, in this process's counts."""
        if ending.failed:
            for hold in ending.holds:
                for name, key in hold.counts:
                    self._counters[name].record(key)
        for name, key in ending.forgotten:
            self._counters[name].forget(key)
        for pair in ending.known:
            self._known.learn(pair)

    async def entry_of(self, name: str) -> str | None:
        return self._entries.get(name)

    def learn_entry(self, learnt: Learnt) -> None:
        # In memory a stand-in costs no time worth hiding, and would push real entries out.
        if not learnt.stand_in:
            self._entries.set(learnt.name, learnt.entry)


# A failed check's end, in one round trip: per count, the failure (a unique member:
# two at the same instant are two), the window trimmed, a ban once the limit is
# reached; then each mark of the checks under way removed.
# KEYS: per count, its failures and its ban; then per mark, its set of checks under way.
# ARGV: now, the window's start, the window and the ban in ms, the failure's member,
# the number of counts, each count's limit, then each mark.
_END_FAILED = """
local now, since, window_ms, ban_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local member, counts = ARGV[5], tonumber(ARGV[6])
for index = 1, counts do
  local failures, ban = KEYS[2 * index - 1], KEYS[2 * index]
  redis.call('ZADD', failures, now, member)
  redis.call('ZREMRANGEBYSCORE', failures, '-inf', since)
  if redis.call('ZCARD', failures) >= tonumber(ARGV[6 + index]) then
    redis.call('SET', ban, '1', 'PX', ban_ms)
    redis.call('DEL', failures)
  else
    redis.call('PEXPIRE', failures, window_ms)
  end
end
for index = 1, #KEYS - 2 * counts do
  redis.call('ZREM', KEYS[2 * counts + index], ARGV[6 + counts + index])
end
return 1
"""

Expected = list[Callable[[object], Any]]


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
        self._end_failed = shared.script(_END_FAILED)

    def _failures_key(self, count: Count) -> str:
        return self._key(f"failures:{count[0]}", count[1])

    def _under_way_key(self, count: Count) -> str:
        return self._key(f"under-way:{count[0]}", count[1])

    def _ban_key(self, count: Count) -> str:
        return self._key(f"ban:{count[0]}", count[1])

    def _entry_key(self, name: str) -> str:
        return self._key("entry", name)

    def _known_key(self, who: str) -> str:
        # One sorted set per person: place digest -> when she last logged in there.
        return self._key("known-places", who)

    async def entry_of(self, name: str) -> str | None:
        key = self._entry_key(name)
        found = await self._shared.command("entry", lambda redis: redis.get(key), optional_text)
        return found if found is not None else await self._local.entry_of(name)

    async def begin(
        self, checks: Sequence[Check], learnt: Learnt | None = None
    ) -> list[tuple[Hold, Reading]]:
        holds = [self._local.hold(check.charged) for check in checks]
        # This process's readings now, before any wait: checks it begins meanwhile come after.
        local = [self._local.read_now(check) for check in checks]
        if learnt is not None:
            self._local.learn_entry(learnt)
        now = self._clock()
        expected: Expected = []

        # One transaction, so the order is Redis's own: each check counts the checks
        # that arrived before it and are still under way (of any two at once, the
        # later counts the earlier), and failures as they were at that moment (a
        # check that ended before has written its failure by then).
        def queue(pipe: Pipeline) -> None:
            if learnt is not None:
                # First: the banned page, asked for next, looks the name up.
                self._queue_learning(pipe, learnt, expected)
            for check, hold in zip(checks, holds, strict=True):
                for count in check.charged:
                    key = self._under_way_key(count)
                    pipe.zremrangebyscore(key, "-inf", now - UNDER_WAY_SECONDS)
                    pipe.zcard(key)
                    pipe.zadd(key, {hold.mark: now})
                    pipe.expire(key, UNDER_WAY_SECONDS)
                    expected.extend([integer] * 4)
                self._queue_reading(pipe, check, now, expected)

        try:
            answers = await self._shared.pipeline(
                "begin", queue, lambda answer: shaped(expected)(answer), transaction=True
            )
        except BaseException:
            # Cancelled while Redis was asked: no count of this process stays
            # behind (a mark in Redis, if made, expires by itself).
            for hold in holds:
                self._local.release(hold)
            raise
        if answers is None:
            return list(zip(holds, local, strict=True))
        position = 1 if learnt is not None else 0
        begun = []
        for check, hold, mine in zip(checks, holds, local, strict=True):
            ahead = {}
            for count in check.charged:
                ahead[count] = answers[position + 1] + 1
                position += 4
            reading, position = self._reading(answers, position, check, ahead)
            begun.append((hold, mine.merged(reading)))
        return begun

    def release(self, hold: Hold) -> None:
        self._local.release(hold)

    async def end(self, ending: Ending, limits: Mapping[CountName, int]) -> None:
        self._local.count(ending)
        # Unanswered, the marks count until UNDER_WAY_SECONDS have passed.
        marks = [
            (self._under_way_key(count), hold.mark)
            for hold in ending.holds
            for count in hold.counts
        ]
        if ending.failed:
            await self._end_failed_check(ending.holds, limits, marks)
            return
        lifetime = self._settings.known_address_lifetime
        now = self._clock()

        def queue(pipe: Pipeline) -> None:
            for count in ending.forgotten:
                pipe.delete(self._failures_key(count))
            if lifetime > 0:
                for pair in ending.known:
                    who, _, place = pair.rpartition("\n")
                    key = self._known_key(who)
                    pipe.zadd(key, {digest(place): now})
                    pipe.zremrangebyscore(key, "-inf", now - lifetime)
                    # The places she logged in from last are kept, the others forgotten.
                    pipe.zremrangebyrank(key, 0, -MAX_KNOWN_PLACES_PER_PERSON - 1)
                    pipe.expire(key, lifetime)
            for key, mark in marks:
                pipe.zrem(key, mark)

        await self._shared.pipeline("succeed" if ending.forgotten else "end", queue, done)

    async def _end_failed_check(
        self, holds: Sequence[Hold], limits: Mapping[CountName, int], marks: list[tuple[str, str]]
    ) -> None:
        counts = [count for hold in holds for count in hold.counts]
        now = self._clock()
        member = f"{now}:{holds[0].mark if holds else ''}"
        keys = [
            key for count in counts for key in (self._failures_key(count), self._ban_key(count))
        ]
        arguments: list[object] = [
            now,
            now - self._settings.window,
            self._settings.window * 1000,
            self._settings.ban_time * 1000,
            member,
            len(counts),
            *(limits[count[0]] for count in counts),
        ]
        await self._shared.evaluate(
            "fail",
            self._end_failed,
            keys + [key for key, _ in marks],
            arguments + [mark for _, mark in marks],
            integer,
        )

    async def read(self, checks: Sequence[Check]) -> list[Reading]:
        local = [self._local.read_bans_now(check) for check in checks]
        now = self._clock()
        expected: Expected = []

        def queue(pipe: Pipeline) -> None:
            for check in checks:
                self._queue_reading(pipe, check, now, expected)

        answers = await self._shared.pipeline(
            "read", queue, lambda answer: shaped(expected)(answer)
        )
        if answers is None:
            return local
        readings, position = [], 0
        for check, mine in zip(checks, local, strict=True):
            reading, position = self._reading(answers, position, check, {})
            readings.append(mine.merged(reading))
        return readings

    def _queue_reading(self, pipe: Pipeline, check: Check, now: float, expected: Expected) -> None:
        for count in check.consulted:
            pipe.pttl(self._ban_key(count))
            pipe.zcount(self._failures_key(count), f"({now - self._settings.window}", "+inf")
            expected.extend([integer, integer])
        who, _, place = check.known.rpartition("\n")
        pipe.zscore(self._known_key(who), digest(place))
        expected.append(optional_score)

    def _queue_learning(self, pipe: Pipeline, learnt: Learnt, expected: Expected) -> None:
        # Written all the same for a stand-in, with the same command: a name the
        # directory lacks costs Redis what a known one does. Kept for one window
        # only, so that sprayed names do not pile up.
        settings = self._settings
        lifetime = settings.window if learnt.stand_in else settings.known_address_lifetime
        value = learnt.entry.encode("utf-8", "surrogatepass")
        pipe.set(self._entry_key(learnt.name), value, ex=max(1, lifetime))
        expected.append(done)

    def _reading(
        self, answers: list[Any], position: int, check: Check, under_way: dict[Count, int]
    ) -> tuple[Reading, int]:
        """The reading :meth:`_queue_reading` queued at ``position``, and the position after."""
        bans: dict[Count, float] = {}
        failures: dict[Count, int] = {}
        for count in check.consulted:
            milliseconds, failed = answers[position : position + 2]
            bans[count] = max(0, milliseconds) / 1000  # -2: no such key, -1: no expiry
            failures[count] = failed
            position += 2
        # The set lives as long as her latest login keeps it; each place only its lifetime.
        last_seen = answers[position]
        known = last_seen is not None and (
            last_seen > self._clock() - self._settings.known_address_lifetime
        )
        return Reading(bans, failures, under_way, known=known), position + 1
