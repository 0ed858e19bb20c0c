"""How long password binds take, so that an unknown name costs as much as a wrong password.

With a search before the bind, an unknown user name is found out without
any bind, several times faster than a wrong password is: one request would
tell an attacker which names exist. The directory waits as long as a bind of
its own lately took, drawn from the recent binds themselves so that the two
answers come from one distribution, without a bind the directory would have
to answer and without touching good logins.
"""

from __future__ import annotations

import random
from collections import deque

# Enough binds to draw from a distribution, few enough to follow a change in load.
RECENT_BINDS = 64
# Until the first bind has been timed: a typical bind over loopback or a LAN.
FIRST_GUESS_SECONDS = 0.01
# Each drawn duration is stretched by up to this share either way, so that
# no answer takes exactly as long as one of the recorded binds.
JITTER = 0.1
# Both refusals end with a wait of up to this long: the event loop sleeps in
# whole milliseconds, and a bind over loopback takes less than one, so a drawn
# wait alone would come out longer than the bind it copies.
SETTLE_SECONDS = 0.002
_random = random.SystemRandom()


class BindTimings:
    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=RECENT_BINDS)

    def record(self, seconds: float) -> None:
        """One bind's duration, successful or refused; outages are not binds."""
        self._recent.append(seconds)

    def draw(self) -> float:
        """A duration one of the recent binds took."""
        drawn = _random.choice(self._recent) if self._recent else FIRST_GUESS_SECONDS
        return drawn * _random.uniform(1 - JITTER, 1 + JITTER)

    def settle(self) -> float:
        """A short wait that ends both refusals alike (see SETTLE_SECONDS)."""
        return _random.uniform(0, SETTLE_SECONDS)
