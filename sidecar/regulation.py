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
failures, so a burst of parallel guesses gets no more binds than the limit.
Unknown user and wrong password count the same; an LDAP outage counts
against nobody.
"""

from __future__ import annotations

import ipaddress
import time
import unicodedata
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

from cachetools import TTLCache

from sidecar.config import RegulationSettings
from sidecar.refusals import Banned, BanScope, InvalidCredentials

# Bounds memory under a spray of made-up names or addresses.
MAX_TRACKED_KEYS = 100_000
# "Try again in a minute" while the checks already under way would reach the limit.
BUSY_RETRY_SECONDS = 60.0
IPV6_PLACE_PREFIX = 64
# How many more failures a place may have before the people known there are banned too.
KNOWN_PEOPLE_FACTOR = 10
# Who-keys: a folded user name, or the directory entry a search found.
_NAME = "name:"
_ENTRY = "entry:"


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


class SlidingCounter:
    """Events (failures) per key in a sliding window; a key that reaches ``limit`` is banned."""

    def __init__(
        self, limit: int, *, window: int, ban_time: int, clock: Callable[[], float]
    ) -> None:
        self._limit = limit
        self._window = window
        self._ban_time = ban_time
        self._clock = clock
        # A tuple of at most limit - 1 times per key: a deque would cost ten times the memory.
        self._failures: TTLCache[Hashable, tuple[float, ...]] = TTLCache(
            MAX_TRACKED_KEYS, window, timer=clock
        )
        self._banned_until: TTLCache[Hashable, float] = TTLCache(
            MAX_TRACKED_KEYS, ban_time, timer=clock
        )
        # Checks under way: each may yet fail, so each counts against the limit.
        self._in_flight: dict[Hashable, int] = {}

    def _recent_failures(self, key: Hashable) -> int:
        failures = self._failures.get(key)
        if not failures:
            return 0
        oldest_counted = self._clock() - self._window
        return sum(1 for stamp in failures if stamp > oldest_counted)

    def saturated(self, key: Hashable) -> bool:
        """Past failures plus checks under way reach the limit: no further check now."""
        return self._recent_failures(key) + self._in_flight.get(key, 0) >= self._limit

    def begin(self, key: Hashable) -> None:
        self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def end(self, key: Hashable) -> None:
        remaining = self._in_flight.get(key, 0) - 1
        if remaining > 0:
            self._in_flight[key] = remaining
        else:
            self._in_flight.pop(key, None)

    def banned_for(self, key: Hashable) -> float:
        until = self._banned_until.get(key)
        if until is None:
            return 0.0
        return max(0.0, until - self._clock())

    def fail(self, key: Hashable) -> None:
        now = self._clock()
        oldest_counted = now - self._window
        failures = (
            *(stamp for stamp in self._failures.get(key, ()) if stamp > oldest_counted),
            now,
        )
        if len(failures) >= self._limit:
            self._banned_until[key] = now + self._ban_time
            self._failures.pop(key, None)
        else:
            # Re-inserting refreshes the entry's time to live to one more window.
            self._failures[key] = failures

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)


class Regulator:
    def __init__(
        self, settings: RegulationSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        def counter(limit: int) -> SlidingCounter:
            return SlidingCounter(
                limit, window=settings.window, ban_time=settings.ban_time, clock=clock
            )

        self._from_place = counter(settings.max_failures_per_user)
        self._overall = counter(settings.max_failures_per_user_overall)
        self._places = counter(settings.max_failures_per_address)
        self._places_for_everybody = counter(
            settings.max_failures_per_address * KNOWN_PEOPLE_FACTOR
        )
        # (who, place) pairs with a successful login lately: her usual ways in.
        self._known: TTLCache[tuple[str, str], bool] = TTLCache(
            MAX_TRACKED_KEYS, settings.known_address_lifetime, timer=clock
        )
        # Folded name -> the entry a search found for it, for the banned page.
        self._entries: TTLCache[str, str] = TTLCache(
            MAX_TRACKED_KEYS, settings.known_address_lifetime, timer=clock
        )

    def _known_from(self, who: str, place: str) -> bool:
        return (who, place) in self._known

    def _ban(self, who: str, place: str) -> tuple[BanScope, float] | None:
        """The longest ban that keeps ``who`` from trying from ``place``, if any."""
        bans: list[tuple[BanScope, float]] = [("user", self._from_place.banned_for((who, place)))]
        if place:
            bans.append(("address", self._places_for_everybody.banned_for(place)))
        if not self._known_from(who, place):
            bans.append(("user", self._overall.banned_for(who)))
            if place:
                bans.append(("address", self._places.banned_for(place)))
        scope, seconds = max(bans, key=lambda ban: ban[1])
        return (scope, seconds) if seconds > 0 else None

    def _busy(self, who: str, place: str, *, with_place: bool) -> BanScope | None:
        """Which limit the checks already under way would reach, if any."""
        if self._from_place.saturated((who, place)):
            return "user"
        if with_place and place and self._places_for_everybody.saturated(place):
            return "address"
        if self._known_from(who, place):
            return None
        if self._overall.saturated(who):
            return "user"
        if with_place and place and self._places.saturated(place):
            return "address"
        return None

    def banned_for(self, username: str, address: str) -> float:
        """Seconds until ``username`` from ``address`` may try again; 0 when now."""
        name = _NAME + fold_user_name(username)
        place = place_of(address)
        seconds = [0.0]
        for who in (name, self._entries.get(name)):
            ban = None if who is None else self._ban(who, place)
            if ban is not None:
                seconds.append(ban[1])
        return max(seconds)

    @contextmanager
    def attempt(self, username: str, address: str) -> Iterator[Attempt]:
        """One password check: :class:`Banned` now, or a check that is counted.

        The check is under way until the block ends. Leaving it with
        :class:`InvalidCredentials` counts a failure; :meth:`Attempt.succeeded`
        marks the place as one of the person's usual ways in; any other way
        out (an outage, a cancellation) counts against nobody.
        """
        attempt = Attempt(self, _NAME + fold_user_name(username), place_of(address))
        try:
            attempt.count_against(attempt.name)
            yield attempt
        except InvalidCredentials:
            attempt.failed()
            raise
        finally:
            attempt.end()

    # -- what an Attempt does, for every "who" it names ----------------------

    def _begin(self, who: str, place: str, *, first: bool) -> None:
        """Count a check under way against ``who`` (and, for its first ``who``, the place)."""
        ban = self._ban(who, place)
        if ban is not None:
            raise Banned(*ban)
        busy = self._busy(who, place, with_place=first)
        if busy is not None:
            raise Banned(busy, BUSY_RETRY_SECONDS)
        for counter, key in self._counts_of(who, place, first=first):
            counter.begin(key)

    def _end(self, who: str, place: str, *, first: bool) -> None:
        for counter, key in self._counts_of(who, place, first=first):
            counter.end(key)

    def _fail(self, who: str, place: str, *, first: bool) -> None:
        for counter, key in self._counts_of(who, place, first=first):
            counter.fail(key)

    def _counts_of(
        self, who: str, place: str, *, first: bool
    ) -> list[tuple[SlidingCounter, Hashable]]:
        """The counts a check of ``who`` from ``place`` goes into (the place's once a check)."""
        counts: list[tuple[SlidingCounter, Hashable]] = [
            (self._from_place, (who, place)),
            (self._overall, who),
        ]
        if first and place:
            counts += [(self._places, place), (self._places_for_everybody, place)]
        return counts

    def _succeed(self, who: str, place: str) -> None:
        # Only this pair's count: the overall count stays, or the person's own
        # login would hand an attacker elsewhere a fresh set of guesses.
        self._from_place.forget((who, place))
        self._known[(who, place)] = True

    def _learn_entry(self, name: str, entry: str) -> None:
        self._entries[name] = entry


class Attempt:
    """A check under way, for one name from one place; see :meth:`Regulator.attempt`."""

    def __init__(self, regulator: Regulator, name: str, place: str) -> None:
        self._regulator = regulator
        self.name = name
        self._place = place
        self._who: list[str] = []

    def count_against(self, who: str) -> None:
        """Count this check against ``who`` too; :class:`Banned` if ``who`` may not try now."""
        if who in self._who:
            return
        self._regulator._begin(who, self._place, first=not self._who)
        self._who.append(who)

    def found_entry(self, entry: str) -> None:
        """The directory entry the name led to (a canonical DN): counted as the same person.

        Every spelling that reaches this entry shares its counts, whatever the
        directory folds. Raises :class:`Banned` before the bind when it is banned.
        """
        # Learnt first: the banned page, asked for next, looks the name up.
        self._regulator._learn_entry(self.name, _ENTRY + entry)
        self.count_against(_ENTRY + entry)

    def failed(self) -> None:
        for index, who in enumerate(self._who):
            self._regulator._fail(who, self._place, first=index == 0)

    def succeeded(self) -> None:
        for who in self._who:
            self._regulator._succeed(who, self._place)

    def end(self) -> None:
        for index, who in enumerate(self._who):
            self._regulator._end(who, self._place, first=index == 0)
        self._who.clear()
