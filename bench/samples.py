"""One round of one case, and what several rounds of it add up to.

Latencies are kept as a histogram (microseconds -> how many answers took
that long), the way wrk holds them, so that rounds merge exactly and the
percentiles of a case are those of all its answers, not an average of
per-round percentiles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

MAX_EXAMPLES = 5  # wrong answers kept as examples, per case


@dataclass
class Sample:
    """One round: how many answers in how long, how long each took, what went wrong."""

    requests: int
    seconds: float
    latency_us: Counter[int]
    unexpected: int = 0  # answered, but not as expected (status, Location, cookie)
    socket_errors: int = 0  # connect, read or write failed
    timeouts: int = 0
    # CPU seconds spent in the round by the processes the case measures: nginx
    # and the app behind it, or for an LDAP baseline the client doing the LDAP work.
    server_cpu: float = 0.0
    slapd_cpu: float = 0.0
    load_cpu: float = 0.0  # a load driver's own (the fixed-rate client's, say); not wrk's
    examples: list[str] = field(default_factory=list)
    # The fixed-rate client only: how late it sent each request (see bench/fixed_rate.py).
    schedule_lag_us: Counter[int] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def percentile(histogram: Mapping[int, int], fraction: float) -> int:
    """The smallest latency that ``fraction`` of the answers did not exceed."""
    total = sum(histogram.values())
    if total == 0:
        return 0
    wanted = fraction * total
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= wanted:
            return value
    return max(histogram)


@dataclass(frozen=True)
class Summary:
    """All rounds of one case together."""

    rounds: int
    requests: int
    seconds: float
    rate: float
    round_rates: tuple[float, ...]
    round_p99_ms: tuple[float, ...]  # a single slow round shows here
    p50_ms: float
    p99_ms: float
    max_ms: float
    unexpected: int
    socket_errors: int
    timeouts: int
    cpu_us_per_request: float
    slapd_cpu_us_per_request: float
    load_cpu_us_per_request: float
    schedule_lag_p99_ms: float
    examples: tuple[str, ...]

    @property
    def errors(self) -> int:
        return self.unexpected + self.socket_errors + self.timeouts

    @property
    def spread(self) -> float:
        """How far the slowest and fastest round lie apart, relative to the whole rate."""
        if not self.round_rates or self.rate == 0:
            return 0.0
        return (max(self.round_rates) - min(self.round_rates)) / self.rate


def summarize(samples: Sequence[Sample]) -> Summary:
    histogram: Counter[int] = Counter()
    lag: Counter[int] = Counter()
    for sample in samples:
        histogram.update(sample.latency_us)
        lag.update(sample.schedule_lag_us)
    requests = sum(sample.requests for sample in samples)
    seconds = sum(sample.seconds for sample in samples)
    per_request = 1e6 / requests if requests else 0.0
    examples = [example for sample in samples for example in sample.examples]
    return Summary(
        rounds=len(samples),
        requests=requests,
        seconds=seconds,
        rate=requests / seconds if seconds > 0 else 0.0,
        round_rates=tuple(sample.rate for sample in samples),
        round_p99_ms=tuple(percentile(sample.latency_us, 0.99) / 1000 for sample in samples),
        p50_ms=percentile(histogram, 0.50) / 1000,
        p99_ms=percentile(histogram, 0.99) / 1000,
        max_ms=max(histogram, default=0) / 1000,
        unexpected=sum(sample.unexpected for sample in samples),
        socket_errors=sum(sample.socket_errors for sample in samples),
        timeouts=sum(sample.timeouts for sample in samples),
        cpu_us_per_request=sum(sample.server_cpu for sample in samples) * per_request,
        slapd_cpu_us_per_request=sum(sample.slapd_cpu for sample in samples) * per_request,
        load_cpu_us_per_request=sum(sample.load_cpu for sample in samples) * per_request,
        schedule_lag_p99_ms=percentile(lag, 0.99) / 1000,
        examples=tuple(examples[:MAX_EXAMPLES]),
    )
