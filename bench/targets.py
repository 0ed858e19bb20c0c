"""The performance targets, as ratios to baselines measured in the same run, and their verdicts.

The bench's targets; where an older, stricter target for binds (0.7x raw
bonsai, "the original bind target") differs, it is judged too, so that the difference
shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bench.cases import (
    ADMITTED_BASIC,
    ADMITTED_SESSION,
    BIND_EACH,
    BONSAI,
    HALF_LOAD,
    PYTHON_LDAP,
    REDIRECTED_BASIC,
    REFUSED_BASIC,
)
from bench.samples import Summary

P99_AT_HALF_LOAD_MS = 10.0
PEAK_MEMORY_MB = 80.0


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
    )


HALF_LOAD_CASES = (ADMITTED_BASIC, ADMITTED_SESSION)


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
    found.append(
        Verdict(
            None,
            f"sidecar peak RSS < {PEAK_MEMORY_MB:g} MB, caches full",
            f"{peak_memory_mb:.1f} MB",
            peak_memory_mb < PEAK_MEMORY_MB,
        )
    )
    return found
