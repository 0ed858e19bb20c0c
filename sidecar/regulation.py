"""Failure counting and bans: guesses stay bounded, and nobody is locked out
of her own usual way in by failures from elsewhere.

Who is counted is a person (the user name, folded at least as far as a
directory folds it, and once a search has found it, the directory entry, so
every spelling that reaches one entry counts as one). Where is a place: an
IPv4 address, or an IPv6 /64 (one household or one machine has a whole /64).
Failures are counted in a sliding window of ``window`` seconds:

- a person from one place: past ``max_failures_per_user``, that person is
  banned *from that place* for ``ban_time``;
- a person from everywhere together: past ``max_failures_per_user_overall``,
  she is banned from every place *except the places she logged in from
  successfully* within ``known_address_lifetime``;
- one place, over all names: past ``max_failures_per_address``, the place is
  banned for everybody *except the people known from it*; past ten times
  that, for them too (a pupil behind the school's address guessing at every
  teacher known there gets that many guesses, not an unbounded number).

A banned login is refused before any bind. Checks still under way count like
failures, so a burst of parallel guesses gets no more binds than the limit
(checks under way are counted per process; failures, bans and known places
live in a :class:`~sidecar.regulation_store.RegulationStore`, which several
sidecars may share). Unknown user and wrong password count the same; an LDAP
outage counts against nobody.
"""

from __future__ import annotations

import ipaddress
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sidecar.config.settings import RegulationSettings
from sidecar.metrics import Metrics
from sidecar.refusals import Banned, BanScope, InvalidCredentials
from sidecar.regulation_store import (
    Count,
    CountName,
    Hold,
    MemoryStore,
    Reading,
    RedisStore,
    RegulationStore,
)
from sidecar.shared_state import SharedState
from sidecar.sliding_counter import MAX_TRACKED_KEYS

# "Try again in a minute" while the checks already under way would reach the limit.
BUSY_RETRY_SECONDS = 60.0
IPV6_PLACE_PREFIX = 64
# How many more failures a place may have before the people known there are banned too.
KNOWN_PEOPLE_FACTOR = 10
# Who-keys: a folded user name, or the directory entry a search found.
_NAME = "name:"
_ENTRY = "entry:"
# Stands in for the entry of a name the directory does not have (see Attempt.found_nothing).
_UNKNOWN = "unknown:"


def fold_user_name(username: str) -> str:
    """A user name as a directory compares it, or folded further.

    Compatibility forms, case and combining marks are all dropped: LDAP's
    caseIgnoreMatch takes ``İ`` (dotted capital I) for ``i``, where Python's
    casefold alone keeps a combining dot. Folding more than the directory
    only ever joins counts, never splits them.
    """
    decomposed = unicodedata.normalize("NFKD", username)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", bare.casefold())


def place_of(address: str) -> str:
    """Where a request comes from, as failures are counted: an IPv6 address by its /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_PLACE_PREFIX), strict=False))
    return str(parsed)


SCOPES: dict[CountName, BanScope] = {
    "person_at_place": "user",
    "person": "user",
    "place": "address",
    "place_for_everybody": "address",
}

# Which limit a busy check names first: the person here, then the place for everybody.
_BUSY_ORDER: tuple[CountName, ...] = ("person_at_place", "place_for_everybody", "person", "place")


def _pair(who: str, place: str) -> str:
    # Neither a folded name, a DN nor a place holds a newline.
    return f"{who}\n{place}"


def _known_pair(who: str, place: str) -> str:
    """The pair whose successful login makes ``who`` known at ``place``: a stand-in
    entry is known wherever its name is (it never logs in itself)."""
    return _pair(who.removeprefix(_UNKNOWN), place)


class Regulator:
    def __init__(
        self,
        settings: RegulationSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedState | None = None,
        metrics: Metrics | None = None,
        max_tracked_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self._limits: dict[CountName, int] = {
            "person_at_place": settings.max_failures_per_user,
            "person": settings.max_failures_per_user_overall,
            "place": settings.max_failures_per_address,
            "place_for_everybody": settings.max_failures_per_address * KNOWN_PEOPLE_FACTOR,
        }
        self._metrics = metrics or Metrics()
        self._local = MemoryStore(settings, self._limits, clock=clock, max_keys=max_tracked_keys)
        local = self._local
        self._store: RegulationStore = (
            local if shared is None else RedisStore(shared, settings, local)
        )

    def tracked(self) -> dict[str, int]:
        """Keys this process holds per table; each stays at most ``max_tracked_keys``."""
        return self._local.sizes()

    @staticmethod
    def _counts(who: str, place: str) -> list[Count]:
        """Every count that may keep ``who`` from trying from ``place``."""
        counts: list[Count] = [("person_at_place", _pair(who, place)), ("person", who)]
        if place:
            counts += [("place", place), ("place_for_everybody", place)]
        return counts

    def _charged(self, who: str, place: str, *, first: bool) -> list[Count]:
        """The counts a check of ``who`` goes into (the place's once a check, for its first)."""
        counts = self._counts(who, place)
        return counts if first else counts[:2]

    @staticmethod
    def _ban(reading: Reading) -> tuple[BanScope, float] | None:
        """The longest ban in ``reading`` that holds for this person here, if any."""
        bans = [
            (SCOPES[count[0]], seconds)
            for count, seconds in reading.bans.items()
            # Her usual places are spared the bans that failures elsewhere caused.
            if not (reading.known and count[0] in ("person", "place"))
        ]
        scope, seconds = max(bans, key=lambda ban: ban[1])
        return (scope, seconds) if seconds > 0 else None

    def _busy(self, reading: Reading, charged: list[Count]) -> BanScope | None:
        """Which limit the checks under way (this one among them) would pass, if any."""
        for count in sorted(charged, key=lambda count: _BUSY_ORDER.index(count[0])):
            if reading.known and count[0] in ("person", "place"):
                continue
            counted = reading.failures.get(count, 0) + reading.under_way.get(count, 0)
            if counted > self._limits[count[0]]:
                return SCOPES[count[0]]
        return None

    async def banned_for(self, username: str, address: str) -> float:
        """Seconds until ``username`` from ``address`` may try again; 0 when now."""
        return (await self._longest_ban(username, address))[0]

    async def refuse_if_banned(self, username: str, address: str) -> None:
        """:class:`Banned` when ``username`` may not try from ``address`` now.

        For answers that need no check (good credentials cached lately): they
        tell right from wrong as well as a check does, so a ban holds for them
        too. Nothing is counted (the answer costs no bind).
        """
        seconds, scope = await self._longest_ban(username, address)
        if scope is not None:
            self._metrics.bans.labels(scope).inc()
            raise Banned(scope, seconds)

    async def _longest_ban(self, username: str, address: str) -> tuple[float, BanScope | None]:
        name = _NAME + fold_user_name(username)
        place = place_of(address)
        longest: tuple[float, BanScope | None] = (0.0, None)
        # Two readings whether or not an entry is known: as many Redis commands
        # for a name the directory lacks as for one it has.
        for who in (name, await self._store.entry_of(name) or _UNKNOWN + name):
            reading = await self._store.read(self._counts(who, place), _known_pair(who, place))
            ban = self._ban(reading)
            if ban is not None and ban[1] > longest[0]:
                longest = (ban[1], ban[0])
        return longest

    @asynccontextmanager
    async def attempt(self, username: str, address: str) -> AsyncIterator[Attempt]:
        """One password check: :class:`Banned` now, or a check that is counted.

        The check is under way until the block ends. Leaving it with
        :class:`InvalidCredentials` counts a failure; :meth:`Attempt.succeeded`
        marks the place as one of the person's usual ways in; any other way
        out (an outage, a cancellation) counts against nobody.
        """
        attempt = Attempt(self, _NAME + fold_user_name(username), place_of(address))
        try:
            await attempt.count_against(attempt.name)
            yield attempt
        except InvalidCredentials:
            await attempt.found_nothing()
            await attempt.failed()
            raise
        finally:
            await attempt.release()

    # -- the steps of an Attempt, for every "who" it names ----------------------

    async def begin_check(self, who: str, place: str, *, first: bool) -> Hold:
        """A check under way against ``who`` (and, for its first ``who``, the place),
        or :class:`Banned` (and nothing under way)."""
        charged = self._charged(who, place, first=first)
        hold, reading = await self._store.begin(
            charged, self._counts(who, place), _known_pair(who, place)
        )
        ban = self._ban(reading)
        busy = self._busy(reading, charged)
        if ban is None and busy is None:
            return hold
        await self.end_checks([hold])
        scope, seconds = ban if ban is not None else (busy, BUSY_RETRY_SECONDS)
        assert scope is not None
        self._metrics.bans.labels(scope).inc()
        raise Banned(scope, seconds)

    async def end_checks(self, holds: list[Hold]) -> None:
        # Every count of this process first: a cancellation while Redis is
        # asked must not leave any of them behind.
        for hold in holds:
            self._store.release(hold)
        for hold in holds:
            await self._store.unmark(hold)

    async def count_failure(self, hold: Hold) -> None:
        await self._store.fail(hold, self._limits)

    async def count_success(self, who: str, place: str) -> None:
        # Only this pair's count: the overall count stays, or the person's own
        # login would hand an attacker elsewhere a fresh set of guesses.
        await self._store.succeed(("person_at_place", _pair(who, place)), _known_pair(who, place))

    async def learn_entry(self, name: str, entry: str) -> None:
        await self._store.learn_entry(name, entry, stand_in=entry.startswith(_UNKNOWN))


class Attempt:
    """A check under way, for one name from one place; see :meth:`Regulator.attempt`."""

    def __init__(self, regulator: Regulator, name: str, place: str) -> None:
        self._regulator = regulator
        self.name = name
        self._place = place
        self._holds: dict[str, Hold] = {}  # per who, in the order counted

    async def count_against(self, who: str) -> None:
        """Count this check against ``who`` too; :class:`Banned` if ``who`` may not try now."""
        if who in self._holds:
            return
        hold = await self._regulator.begin_check(who, self._place, first=not self._holds)
        self._holds[who] = hold

    async def found_entry(self, entry: str) -> None:
        """The directory entry the name led to (a canonical DN): counted as the same person.

        Every spelling that reaches this entry shares its counts, whatever the
        directory folds. Raises :class:`Banned` before the bind when it is banned.
        """
        # Learnt first: the banned page, asked for next, looks the name up.
        await self._count_as_entry(_ENTRY + entry)

    async def found_nothing(self) -> None:
        """A failure without an entry (a name the directory lacks): counted against
        a stand-in entry, so that Redis is sent the same commands, in the same
        order, as for a wrong password (each one a round trip an attacker could
        time). Raises :class:`Banned` where a real entry's ban would have."""
        if len(self._holds) == 1:
            await self._count_as_entry(_UNKNOWN + self.name)

    async def _count_as_entry(self, who: str) -> None:
        """The name leads to ``who``: learnt (the banned page looks it up), then counted."""
        await self._regulator.learn_entry(self.name, who)
        await self.count_against(who)

    async def failed(self) -> None:
        for hold in self._holds.values():
            await self._regulator.count_failure(hold)

    async def succeeded(self) -> None:
        # Her name's stand-in too: failures counted while no entry was found
        # (a directory without searches finds none) are hers from here as well.
        for who in [*self._holds, _UNKNOWN + self.name]:
            await self._regulator.count_success(who, self._place)

    async def release(self) -> None:
        holds = list(self._holds.values())
        self._holds.clear()
        await self._regulator.end_checks(holds)
