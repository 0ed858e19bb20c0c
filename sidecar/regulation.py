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
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeAlias

from sidecar.config.settings import RegulationSettings
from sidecar.metrics import Metrics
from sidecar.refusals import Banned, BanScope, InvalidCredentials
from sidecar.regulation_store import (
    Check,
    Count,
    CountName,
    Ending,
    Hold,
    Learnt,
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


# Pairs of who and place not known yet (see Regulator.refuse_if_banned).
NewPlaces: TypeAlias = tuple[str, ...]


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
        # known_address_lifetime = 0: no place is ever usual, nothing to learn.
        self._learns_places = settings.known_address_lifetime > 0
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

    def _busy(self, reading: Reading, charged: Sequence[Count]) -> BanScope | None:
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
        return (await self._standing(username, address))[0]

    async def refuse_if_banned(self, username: str, address: str) -> NewPlaces:
        """:class:`Banned` when ``username`` may not try from ``address`` now.

        For answers that need no check (good credentials cached lately): they
        tell right from wrong as well as a check does, so a ban holds for them
        too. Nothing is counted (the answer costs no bind). Returned: the pairs
        not yet known here, for :meth:`learn_places` once the answer admits.
        """
        seconds, scope, new_places = await self._standing(username, address)
        if scope is not None:
            self._metrics.bans.labels(scope).inc()
            raise Banned(scope, seconds)
        return new_places

    async def learn_places(self, new_places: NewPlaces) -> None:
        """Good credentials from the cache admitted someone at a place new to her: it
        becomes one of her usual places, as a bind's success makes it (a write only
        the first time, not on every cached answer)."""
        if new_places:
            await self._store.end(Ending((), known=new_places), self._limits)

    async def _standing(
        self, username: str, address: str
    ) -> tuple[float, BanScope | None, NewPlaces]:
        name = _NAME + fold_user_name(username)
        place = place_of(address)
        # Two readings whether or not an entry is known: as many Redis commands
        # for a name the directory lacks as for one it has, in one round trip.
        whos = [name, await self._store.entry_of(name) or _UNKNOWN + name]
        readings = await self._store.read([self._check(who, place) for who in whos])
        longest: tuple[float, BanScope | None] = (0.0, None)
        for reading in readings:
            ban = self._ban(reading)
            if ban is not None and ban[1] > longest[0]:
                longest = (ban[1], ban[0])
        # Only whos a check would have learnt: the name, and the entry if known.
        new_places = tuple(
            dict.fromkeys(
                _known_pair(who, place)
                for who, reading in zip(whos, readings, strict=True)
                if self._learns_places and not reading.known and not who.startswith(_UNKNOWN)
            )
        )
        return (*longest, new_places)

    @asynccontextmanager
    async def attempt(
        self, username: str, address: str, *, entry_first: bool = False
    ) -> AsyncIterator[Attempt]:
        """One password check: :class:`Banned` now, or a check that is counted.

        The check is under way until the block ends. Leaving it with
        :class:`InvalidCredentials` counts a failure; :meth:`Attempt.succeeded`
        marks the place as one of the person's usual ways in; any other way
        out (an outage, a cancellation) counts against nobody.

        ``entry_first``: the directory searches for the name's entry before any
        bind, and says what it found (:meth:`Attempt.found_entry`,
        :meth:`Attempt.found_nothing`): the name and the entry are counted then,
        together. Before the search only this process's own bans are looked at.
        """
        attempt = Attempt(self, _NAME + fold_user_name(username), place_of(address))
        if entry_first:
            self._refuse_if_banned_here(attempt.name, attempt.place)
        else:
            await attempt.count(None)
        failed = False
        try:
            yield attempt
        except InvalidCredentials:
            await attempt.found_nothing()
            failed = True
            raise
        finally:
            await attempt.end(failed=failed)

    def _refuse_if_banned_here(self, name: str, place: str) -> None:
        """:class:`Banned` if this process knows ``name`` may not try from ``place``
        (no round trip: a check that asks Redis follows before any bind)."""
        ban = self._ban(self._local.read_bans_now(self._check(name, place)))
        if ban is not None:
            self._metrics.bans.labels(ban[0]).inc()
            raise Banned(*ban)

    # -- the steps of an Attempt ---------------------------------------------------

    def _check(self, who: str, place: str, *, charged: bool = False, first: bool = False) -> Check:
        """``who`` from ``place``: what may keep her from trying, and (``charged``) what
        a check goes into: the place's counts too, once a check, for its ``first`` who."""
        counts = self._counts(who, place)
        going_into = (counts if first else counts[:2]) if charged else []
        return Check(tuple(going_into), tuple(counts), _known_pair(who, place))

    async def entry_of(self, name: str) -> str | None:
        """The who-key of the entry ``name`` led to lately, if any."""
        return await self._store.entry_of(name)

    async def begin_checks(
        self, whos: Sequence[str], place: str, *, first: bool, learnt: Learnt | None = None
    ) -> list[tuple[Hold, bool]]:
        """Checks under way against each of ``whos`` (for the ``first`` of a password
        check, the place too), begun together, or :class:`Banned` (and nothing under way).
        Beside each hold: whether the place is one of that who's usual places."""
        checks = [
            self._check(who, place, charged=True, first=first and index == 0)
            for index, who in enumerate(whos)
        ]
        begun = await self._store.begin(checks, learnt)
        holds = [hold for hold, _ in begun]
        for check, (_, reading) in zip(checks, begun, strict=True):
            ban = self._ban(reading)
            busy = self._busy(reading, check.charged)
            if ban is None and busy is None:
                continue
            await self.end_checks(Ending(tuple(holds)))
            scope, seconds = ban if ban is not None else (busy, BUSY_RETRY_SECONDS)
            assert scope is not None
            self._metrics.bans.labels(scope).inc()
            raise Banned(scope, seconds)
        return [(hold, reading.known) for hold, reading in begun]

    async def end_checks(self, ending: Ending) -> None:
        # Every count of this process first: a cancellation while Redis is
        # asked must not leave any of them behind.
        if not ending.holds:
            return  # none began (the directory failed first): nothing to end
        for hold in ending.holds:
            self._store.release(hold)
        await self._store.end(ending, self._limits)

    def success(self, holds: tuple[Hold, ...], whos: Sequence[str], place: str) -> Ending:
        """A successful check's ending: only each pair's count is forgotten (the
        overall count stays, or the person's own login would hand an attacker
        elsewhere a fresh set of guesses), and each pair becomes a usual place."""
        return Ending(
            holds,
            forgotten=tuple(("person_at_place", _pair(who, place)) for who in whos),
            known=tuple(dict.fromkeys(_known_pair(who, place) for who in whos)),
        )


class Attempt:
    """A check under way, for one name from one place; see :meth:`Regulator.attempt`."""

    def __init__(self, regulator: Regulator, name: str, place: str) -> None:
        self._regulator = regulator
        self.name = name
        self.place = place
        self._holds: dict[str, Hold] = {}  # per who, in the order counted
        self._entry: str | None = None  # the who the name led to, once known
        self._succeeded = False

    async def found_entry(self, entry: str) -> None:
        """The directory entry the name led to (a canonical DN): counted as the same person.

        Every spelling that reaches this entry shares its counts, whatever the
        directory folds. Raises :class:`Banned` before the bind when it is banned.
        """
        if self._entry != _ENTRY + entry:  # counted already when it was the usual entry
            await self.count(_ENTRY + entry)

    async def usual_entry(self) -> str | None:
        """The entry (a canonical DN) this name led to lately, when this place is one of
        that entry's usual places: the directory may bind to it before its search
        confirms it (a slow directory then costs one round trip a login, not two).

        The entry is counted first, as :meth:`found_entry` counts it, so its bans
        hold before that bind. Only at a usual place: elsewhere, an answer coming
        sooner for a name that logged in lately would tell an attacker which names
        those are. None when there is no such entry.
        """
        who = await self._regulator.entry_of(self.name)
        if who is None or not who.startswith(_ENTRY):
            return None  # never found, or only its stand-in (the directory lacked it)
        usual = await self.count(who)
        return who.removeprefix(_ENTRY) if usual else None

    async def found_nothing(self) -> None:
        """A failure without an entry (a name the directory lacks): counted against
        a stand-in entry, so that Redis is sent the same commands, in the same
        order, as for a wrong password (each one a round trip an attacker could
        time). Raises :class:`Banned` where a real entry's ban would have."""
        if self._entry is None:
            await self.count(_UNKNOWN + self.name)

    async def count(self, entry: str | None) -> bool:
        """Count this check against the name, if not yet, and the entry it led to
        (``None``: not known yet): one round trip, with the entry learnt first
        (the banned page looks the name up). :class:`Banned` if either may not try now.
        Returned: whether this place is one of the entry's usual places."""
        whos = [] if self.name in self._holds else [self.name]
        learnt = None
        if entry is not None:
            self._entry = entry
            whos.append(entry)
            learnt = Learnt(self.name, entry, stand_in=entry.startswith(_UNKNOWN))
        first = not self._holds
        begun = await self._regulator.begin_checks(whos, self.place, first=first, learnt=learnt)
        self._holds.update(zip(whos, (hold for hold, _ in begun), strict=True))
        return entry is not None and begun[-1][1]

    async def succeeded(self) -> None:
        """The password was right; counted when the check ends."""
        self._succeeded = True

    async def end(self, *, failed: bool) -> None:
        holds = tuple(self._holds.values())
        if failed:
            ending = Ending(holds, failed=True)
        elif self._succeeded:
            # Her name's stand-in too: failures counted while no entry was found
            # (a directory without searches finds none) are hers from here as well.
            whos = [*self._holds, _UNKNOWN + self.name]
            ending = self._regulator.success(holds, whos, self.place)
        else:
            ending = Ending(holds)
        self._holds.clear()
        await self._regulator.end_checks(ending)
