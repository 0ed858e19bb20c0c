"""How many room-size requests may go to Prosody, and on whose account.

A check that needs a request (no fresh answer for the room, none under way)
is paid for by the person who asks, and, for a room nobody else is waiting
in, by her address too: over her own budget she waits, and nobody else does.
The site's budget protects Prosody; rooms that others wait in (or that were
open) may spend all of it, other names only a share, so that somebody
spraying made-up names cannot hold a class out of its room.

Counts are sliding windows estimated from two fixed buckets (the current
one, and the previous one weighted by how much of it is still in the
window): a few numbers per key. In this process's memory, each table keeps
at most :data:`MAX_ASKERS` keys, the idle ones going first; with a Redis
(``[state] redis_url``) the counts are the site's, checked and counted in
one script so that no refused check is counted, and this process's own
counts stand in while Redis does not answer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cachetools import TTLCache

from sidecar.shared_state import SharedState, integer

# Requests to Prosody per second for the whole site.
SITE_PER_SECOND = 50
# The share of it that names nobody else waits in may take (the rest is kept for rooms in use).
NEW_NAMES_SHARE = 0.5
# Requests one person may cause per PERSON_WINDOW: a pupil waiting in a room causes one
# every few seconds at most (her class shares the answers).
PER_PERSON = 10
# Requests for names nobody else waits in, per address and PERSON_WINDOW: generous, since a
# school's pupils may all come from one address.
PER_ADDRESS = 60
PERSON_WINDOW = 10
# People and addresses counted at most per table (idle ones go first when full).
MAX_ASKERS = 40_000

Refusal = Literal["person", "address", "site"]


@dataclass(frozen=True)
class Limit:
    """At most ``limit`` events per ``window`` seconds for ``key`` (0: no limit)."""

    table: Literal["person", "address", "site"]
    key: str
    limit: float
    window: int


class WindowCounts:
    """Events per key in a sliding window of ``window`` seconds, from two fixed buckets."""

    def __init__(self, window: int, *, clock: Callable[[], float], max_keys: int) -> None:
        self._window = window
        self._clock = clock
        # key -> (bucket number, events in it, events in the bucket before).
        self._counts: TTLCache[str, tuple[int, int, int]] = TTLCache(
            max_keys, 2 * window, timer=clock
        )

    def _read(self, key: str) -> tuple[int, int, int, float]:
        now = self._clock()
        bucket = math.floor(now / self._window)
        weight = 1 - (now / self._window - bucket)  # of the previous bucket, still in the window
        kept = self._counts.get(key)
        if kept is None or kept[0] < bucket - 1:
            return bucket, 0, 0, weight
        if kept[0] == bucket - 1:
            return bucket, 0, kept[1], weight
        return bucket, kept[1], kept[2], weight

    def recent(self, key: str) -> float:
        _, current, previous, weight = self._read(key)
        return current + previous * weight

    def add(self, key: str) -> None:
        bucket, current, previous, _ = self._read(key)
        self._counts[key] = (bucket, current + 1, previous)

    def __len__(self) -> int:
        return len(self._counts)


def limits_for(person: str, place: str, *, wanted: bool) -> tuple[Limit, ...]:
    """What one check is counted against: the person always; her address and only a share of
    the site's budget for a name nobody else is waiting in."""
    if wanted:
        return (
            Limit("person", person, PER_PERSON, PERSON_WINDOW),
            Limit("site", "site", SITE_PER_SECOND, 1),
        )
    return (
        Limit("person", person, PER_PERSON, PERSON_WINDOW),
        Limit("address", place, PER_ADDRESS, PERSON_WINDOW),
        Limit("site", "site", SITE_PER_SECOND * NEW_NAMES_SHARE, 1),
    )


class LocalBudget:
    """The budgets in this process's memory."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._tables = {
            "person": WindowCounts(PERSON_WINDOW, clock=clock, max_keys=MAX_ASKERS),
            "address": WindowCounts(PERSON_WINDOW, clock=clock, max_keys=MAX_ASKERS),
            "site": WindowCounts(1, clock=clock, max_keys=1),
        }

    def table_size(self, table: str) -> int:
        return len(self._tables[table])

    def spend(self, limits: tuple[Limit, ...]) -> Refusal | None:
        """Count one request against every limit, or none when one is reached (that one)."""
        for limit in limits:
            if limit.limit and self._tables[limit.table].recent(limit.key) + 1 > limit.limit:
                return limit.table
        for limit in limits:
            self._tables[limit.table].add(limit.key)
        return None


# Checks every limit, then counts all of them, or none: KEYS come in pairs (the current
# bucket, the previous one), ARGV in threes (limit, weight of the previous bucket, lifetime
# of the current one in milliseconds). Answers 0, or the number of the limit reached.
_SPEND = """
for i = 1, #KEYS / 2 do
  local limit = tonumber(ARGV[3 * i - 2])
  if limit > 0 then
    local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
    local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
    if current + previous * tonumber(ARGV[3 * i - 1]) + 1 > limit then
      return i
    end
  end
end
for i = 1, #KEYS / 2 do
  redis.call('INCR', KEYS[2 * i - 1])
  redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[3 * i])
end
return 0
"""


class RoomBudget:
    """The budgets of the site (with Redis) or of this process (without, or while Redis is away)."""

    def __init__(
        self,
        shared: SharedState | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.local = LocalBudget(clock=clock)
        self._shared = shared
        self._wall_clock = wall_clock
        self._script = shared.script(_SPEND) if shared is not None else None

    async def spend(self, person: str, place: str, *, wanted: bool) -> Refusal | None:
        limits = limits_for(person, place, wanted=wanted)
        if self._shared is None or self._script is None:
            return self.local.spend(limits)
        keys: list[str] = []
        arguments: list[float | int] = []
        now = self._wall_clock()
        for limit in limits:
            bucket = math.floor(now / limit.window)
            kind = f"room-checks:{limit.table}"
            keys += [
                self._shared.key(f"{kind}:{bucket}", limit.key),
                self._shared.key(f"{kind}:{bucket - 1}", limit.key),
            ]
            weight = 1 - (now / limit.window - bucket)
            arguments += [limit.limit, round(weight, 3), 2 * limit.window * 1000]
        answer = await self._shared.evaluate("room-checks", self._script, keys, arguments, integer)
        if answer is None or not 0 <= answer <= len(limits):
            # No (usable) answer: this process's own counts decide.
            return self.local.spend(limits)
        return None if answer == 0 else limits[answer - 1].table
