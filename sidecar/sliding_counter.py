"""Events per key in a sliding window, and a ban for a key that reaches its limit.

In this process's memory, bounded: failed logins (see
:mod:`sidecar.regulation_store`), guest names entered per address, room-size
requests per second.

Bounded in two ways, so that a spray of made-up names or addresses costs a
fixed amount of memory and cannot flush what holds an attacker back:

- at most ``max_keys`` keys are counted and at most ``max_keys`` are banned,
  in two tables: counting a new key never pushes a ban out;
- when the counts are full, keys whose events are all past the window go
  first, then keys with the fewest events, among them the one whose last
  event is oldest. Pushing out a key with *n* events takes filling the table
  with keys of at least about *n*/2 events each. When the bans are full, the
  ban that ends soonest goes (every ban lasts ``ban_time``, so that is the
  oldest): only more bans push a ban out, and each costs ``limit`` events.

Each key costs little and nothing for the garbage collector to walk: a key
is kept as its 64-bit hash (Python's string hash, keyed at random per
process; two keys that share one share a count), a single event as one float,
several as an ``array`` of floats; the tables hold only these, so the
collector does not track them at all.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Callable
from typing import TypeAlias

# Keys counted, and keys banned, per counter at most: a spray of made-up names
# or addresses costs about 150 bytes per key: a few MB per counter at most.
MAX_TRACKED_KEYS = 40_000
# Keys pushed out at once when a table is full (a dict's oldest entry is found
# by a scan, so they are found in batches).
EVICTION_SHARE = 64

# One event's time, or several, oldest first.
Events: TypeAlias = "float | array[float]"


def _count(events: Events) -> int:
    return 1 if isinstance(events, float) else len(events)


def _last(events: Events) -> float:
    return events if isinstance(events, float) else events[-1]


def _idle_front(tier: dict[int, Events], oldest_counted: float) -> list[int]:
    """The keys at the front of ``tier`` whose last event is past the window."""
    return list(itertools.takewhile(lambda slot: _last(tier[slot]) <= oldest_counted, tier))


def _tier(count: int) -> int:
    """Keys are kept in tiers by their count when last touched: 1, 2-3, 4-7, ..."""
    return count.bit_length() - 1


class SlidingCounter:
    """Events per key in a sliding window; a key that reaches ``limit`` is banned."""

    def __init__(
        self,
        limit: int,
        *,
        window: int,
        ban_time: int,
        clock: Callable[[], float],
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self._limit = limit
        self._window = window
        self._ban_time = ban_time
        self._clock = clock
        self._max_keys = max_keys
        self._batch = max(1, max_keys // EVICTION_SHARE)
        # Per tier, keys in the order of their last event (a dict keeps insertion order).
        self._tiers: list[dict[int, Events]] = [{} for _ in range(_tier(max(1, limit)) + 1)]
        # Until when each banned key is banned, in the order banned.
        self._banned_until: dict[int, float] = {}

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def counted_keys(self) -> int:
        return sum(len(tier) for tier in self._tiers)

    @property
    def banned_keys(self) -> int:
        return len(self._banned_until)

    def _find(self, slot: int) -> tuple[int, Events | None]:
        for number, tier in enumerate(self._tiers):
            events = tier.get(slot)
            if events is not None:
                return number, events
        return -1, None

    def recent(self, key: str) -> int:
        """Events within the window (none once the key was banned: the ban holds instead)."""
        _, events = self._find(hash(key))
        if events is None:
            return 0
        oldest_counted = self._clock() - self._window
        if isinstance(events, float):
            return 1 if events > oldest_counted else 0
        return len(events) - bisect.bisect_right(events, oldest_counted)

    def banned_for(self, key: str) -> float:
        until = self._banned_until.get(hash(key))
        if until is None:
            return 0.0
        return max(0.0, until - self._clock())

    def record(self, key: str) -> None:
        """One event for ``key`` now (a failure, a name entered, a request); at the
        ``limit``-th within the window, the key is banned for ``ban_time``."""
        now = float(self._clock())  # one event is kept as a float, told apart by its type
        slot = hash(key)
        number, events = self._find(slot)
        if events is not None:
            del self._tiers[number][slot]
        kept = self._within_window(events, now)
        if len(kept) + 1 >= self._limit:
            self._ban(slot, now)
            return
        if number < 0 and self.counted_keys >= self._max_keys:
            self._make_room(now)
        kept.append(now)
        self._tiers[_tier(len(kept))][slot] = kept if len(kept) > 1 else now

    def _within_window(self, events: Events | None, now: float) -> array[float]:
        oldest_counted = now - self._window
        if events is None:
            return array("d")
        if isinstance(events, float):
            return array("d", [events] if events > oldest_counted else [])
        del events[: bisect.bisect_right(events, oldest_counted)]
        return events

    def _ban(self, slot: int, now: float) -> None:
        self._banned_until.pop(slot, None)
        if len(self._banned_until) >= self._max_keys:
            # In the order banned is in the order they end: the ended ones come first.
            bans = self._banned_until
            ended = list(itertools.takewhile(lambda banned: bans[banned] <= now, bans))
            for old in ended or list(itertools.islice(bans, self._batch)):
                del bans[old]
        self._banned_until[slot] = now + self._ban_time

    def _make_room(self, now: float) -> None:
        """Push keys out: those past the window, else the fewest events, oldest first."""
        oldest_counted = now - self._window
        for tier in self._tiers:
            for slot in _idle_front(tier, oldest_counted):
                del tier[slot]
        if self.counted_keys < self._max_keys:
            return
        wanted = self._batch
        for tier in self._tiers:
            pushed_out = list(itertools.islice(tier, wanted))
            for slot in pushed_out:
                del tier[slot]
            wanted -= len(pushed_out)
            if wanted <= 0:
                return

    def forget(self, key: str) -> None:
        slot = hash(key)
        for tier in self._tiers:
            tier.pop(slot, None)
