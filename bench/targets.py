"""The performance targets, as ratios to baselines measured in the same run, and their verdicts.

The bench's targets: against the bare baselines, against the peer the sidecar
would replace (nginx-ldap-auth's daemon or its stand-in, measured in the same
run: every login path at least 1.2x its rate with one worker), workers = 2
at least as fast as one, and the tail
under saturation (wrk's closed loop and the rush). Where an older, stricter
target for binds (0.7x raw bonsai, "the original bind target") differs, it is
judged too, so that the difference shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bench.cases import (
    ADMITTED_BASIC,
    ADMITTED_SESSION,
    BIND_EACH,
    BIND_EACH_2W,
    BONSAI,
    HALF_LOAD,
    LOGIN_POST,
    PEER_BIND_EACH,
    PEER_REFUSED,
    PEER_RUSH,
    PYTHON_LDAP,
    REDIRECTED_BASIC,
    REFUSED_BASIC,
    REFUSED_BASIC_2W,
    RUSH,
    RUSH_2W,
)
from bench.samples import Summary

P99_AT_HALF_LOAD_MS = 10.0
PEAK_MEMORY_MB = 80.0
P99_SATURATED_MS = 100.0
# Ahead of the peer by this much on every login path, with one worker.
AHEAD_OF_PEER = 1.2


@dataclass(frozen=True)
class Verdict:
    case: str | None  # the case it is about; None for memory
    target: str  # what is wanted, in words
    measured: str
    passed: bool


@dataclass(frozen=True)
class RatioTarget:
    case: str
    baseline: str
    minimum: float
    source: str = "issue"


def ratio_targets(bare: str) -> tuple[RatioTarget, ...]:
    """``bare``: the bare baseline with the include's connection handling."""
    return (
        RatioTarget(ADMITTED_BASIC, bare, 0.8),
        RatioTarget(ADMITTED_SESSION, bare, 0.8),
        RatioTarget(REDIRECTED_BASIC, bare, 0.6),
        RatioTarget(BIND_EACH, PYTHON_LDAP, 0.8),
        RatioTarget(BIND_EACH, BONSAI, 0.7, source="the original bind target"),
        RatioTarget(REFUSED_BASIC, BIND_EACH, 1.0),
        RatioTarget(BIND_EACH, PEER_BIND_EACH, AHEAD_OF_PEER),
        RatioTarget(REFUSED_BASIC, PEER_REFUSED, AHEAD_OF_PEER),
        RatioTarget(LOGIN_POST, PEER_BIND_EACH, AHEAD_OF_PEER),
        RatioTarget(RUSH, PEER_RUSH, AHEAD_OF_PEER),
        # A second worker on two cores must not cost: at least as fast as one.
        RatioTarget(BIND_EACH_2W, BIND_EACH, 1.0),
        RatioTarget(REFUSED_BASIC_2W, REFUSED_BASIC, 1.0),
        RatioTarget(RUSH_2W, RUSH, 1.0),
    )


HALF_LOAD_CASES = (ADMITTED_BASIC, ADMITTED_SESSION)
# The sidecar's cases at full load (wrk -c32, the rush's 64 clients): their tail.
SATURATED_CASES = (
    ADMITTED_BASIC,
    REDIRECTED_BASIC,
    ADMITTED_SESSION,
    BIND_EACH,
    REFUSED_BASIC,
    LOGIN_POST,
    RUSH,
    BIND_EACH_2W,
    REFUSED_BASIC_2W,
    RUSH_2W,
)


def ratio(summaries: Mapping[str, Summary], case: str, baseline: str) -> float | None:
    if case not in summaries or baseline not in summaries:
        return None
    base = summaries[baseline].rate
    return summaries[case].rate / base if base > 0 else None


def verdicts(
    summaries: Mapping[str, Summary], *, bare: str, peak_memory_mb: float
) -> list[Verdict]:
    found: list[Verdict] = []
    for target in ratio_targets(bare):
        value = ratio(summaries, target.case, target.baseline)
        if value is None:
            continue
        source = "" if target.source == "issue" else f" ({target.source})"
        found.append(
            Verdict(
                target.case,
                f">= {target.minimum:g}x {target.baseline}{source}",
                f"{value:.2f}x",
                value >= target.minimum,
            )
        )
    for case in HALF_LOAD_CASES:
        half = summaries.get(case + HALF_LOAD)
        if half is None:
            continue
        found.append(
            Verdict(
                case + HALF_LOAD,
                f"p99 < {P99_AT_HALF_LOAD_MS:g} ms at half load",
                f"{half.p99_ms:.1f} ms",
                half.p99_ms < P99_AT_HALF_LOAD_MS and half.errors == 0,
            )
        )
    for case in SATURATED_CASES:
        saturated = summaries.get(case)
        if saturated is None:
            continue
        found.append(
            Verdict(
                case,
                f"p99 < {P99_SATURATED_MS:g} ms under saturation",
                f"{saturated.p99_ms:.1f} ms",
                saturated.p99_ms < P99_SATURATED_MS and saturated.errors == 0,
            )
        )
    found.append(
        Verdict(
            None,
            f"sidecar peak RSS < {PEAK_MEMORY_MB:g} MB, caches full",
            f"{peak_memory_mb:.1f} MB",
            peak_memory_mb < PEAK_MEMORY_MB,
        )
    )
    return found
