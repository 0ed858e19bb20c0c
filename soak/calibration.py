"""The soak's rate: half of what the stack sustains under the load it is given.

A closed loop (every connection sends its next request as soon as the last
is answered) keeps each of its connections busy, so every turn of the
sidecar's event loop serves many requests at once; the soak's load is open
(requests on a schedule, whether or not the last ones were answered), where
each request costs more, with the load generator, nginx and slapd on the
same cores. So the closed loop only gives the top: open-loop steps come down
from there, and the first rate the stack keeps up with is the sustainable
one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from soak import tally

# Open-loop steps, as shares of the closed loop's rate, highest first.
STEP_SHARES = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
STEP_SECONDS = 15.0
# Kept up: (nearly) every scheduled request answered, none failed, nothing left
# unsent in the load's own queue, and the requests that need no directory
# answered within this at the 99th percentile (a queue that grows shows there
# first: those take a millisecond or two when nothing waits).
KEPT_UP_P99_MS = 100.0
KEPT_UP_ANSWERED_SHARE = 0.95


@dataclass(frozen=True)
class Step:
    rate: float
    seconds: float
    answers: int
    failures: int
    not_sent: int
    p99_ms: float | None

    @property
    def kept_up(self) -> bool:
        return (
            self.answers >= KEPT_UP_ANSWERED_SHARE * self.rate * self.seconds
            and self.failures == 0
            and self.not_sent == 0
            and self.p99_ms is not None
            and self.p99_ms <= KEPT_UP_P99_MS
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "req/s": round(self.rate),
            "answers": self.answers,
            "failures": self.failures,
            "not sent": self.not_sent,
            "p99 ms, no directory": self.p99_ms,
            "kept up": self.kept_up,
        }


def step_of(result: dict[str, Any], rate: float, seconds: float) -> Step:
    """What one open-loop step of ``seconds`` at ``rate`` got, from its load's result."""
    start, end = result["started"], result["started"] + seconds
    counted = tally.answers(result, start, end)
    cheap = tally.latency(result, start, end).get("no directory", {})
    return Step(
        rate=rate,
        seconds=seconds,
        answers=sum(counted.values()),
        failures=tally.failures(counted),
        not_sent=tally.total_between(result, "not_sent", start, end),
        p99_ms=cheap.get("p99 ms"),
    )


def sustainable(steps: Sequence[Step]) -> float | None:
    """The highest rate among the steps that the stack kept up with (None: none)."""
    return max((step.rate for step in steps if step.kept_up), default=None)
