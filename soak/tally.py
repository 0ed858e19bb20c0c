"""Counting a load's answers over a stretch of time: by status and kind, what
must never happen, and how long the answers took."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from soak.load import bucket_ms

# What the include lets through to the browser; anything else is a failure
# (a 500 or 502 or 504 from nginx, a reset, a timeout).
ALLOWED = frozenset({"200", "302", "401", "403", "429", "503"})
GROUPS = ("no directory", "directory")


def _seconds(table: dict[str, Any], start: float, end: float) -> list[str]:
    return [key for key in table if start <= int(key) < end]


def answers(result: dict[str, Any], start: float, end: float) -> Counter[str]:
    """``"kind|status"`` -> how many, for the seconds from ``start`` up to ``end``."""
    found: Counter[str] = Counter()
    table = result["answers"]
    for key in _seconds(table, math.floor(start), end):
        found.update(table[key])
    return found


def by_status(counted: Counter[str]) -> dict[str, int]:
    statuses: Counter[str] = Counter()
    for key, count in counted.items():
        statuses[key.rpartition("|")[2]] += count
    return dict(sorted(statuses.items()))


def by_kind(counted: Counter[str]) -> dict[str, dict[str, int]]:
    kinds: dict[str, dict[str, int]] = {}
    for key, count in sorted(counted.items()):
        kind, _, status = key.rpartition("|")
        kinds.setdefault(kind, {})[status] = count
    return kinds


def failures(counted: Counter[str]) -> int:
    return sum(count for key, count in counted.items() if key.rpartition("|")[2] not in ALLOWED)


def total_between(result: dict[str, Any], name: str, start: float, end: float) -> int:
    table = result[name]
    return sum(int(table[key]) for key in _seconds(table, math.floor(start), end))


def latency(result: dict[str, Any], start: float, end: float) -> dict[str, dict[str, float]]:
    """p50, p99 and the longest answer in ms, for kinds that need the directory and the rest."""
    summary: dict[str, dict[str, float]] = {}
    table = result["latency"]
    longest_table = result["longest_ms"]
    for group in GROUPS:
        histogram: Counter[int] = Counter()
        longest = 0.0
        for key in _seconds(table, math.floor(start), end):
            histogram.update({int(b): n for b, n in table[key].get(group, {}).items()})
            longest = max(longest, longest_table.get(key, {}).get(group, 0.0))
        count = sum(histogram.values())
        if not count:
            continue
        summary[group] = {
            "answers": count,
            "p50 ms": round(_percentile(histogram, count, 0.50), 1),
            "p99 ms": round(_percentile(histogram, count, 0.99), 1),
            "max ms": longest,
        }
    return summary


def _percentile(histogram: Counter[int], count: int, share: float) -> float:
    wanted = share * count
    seen = 0
    for key in sorted(histogram):
        seen += histogram[key]
        if seen >= wanted:
            return bucket_ms(key)
    return bucket_ms(max(histogram))


def windows(result: dict[str, Any], start: float, end: float, width: float) -> list[dict[str, Any]]:
    """Answers, failures and p99/max of cheap requests per window of ``width`` seconds."""
    found = []
    at = start
    while at < end:
        upto = min(end, at + width)
        counted = answers(result, at, upto)
        cheap = latency(result, at, upto).get("no directory", {})
        found.append(
            {
                "from s": round(at - start),
                "answers": sum(counted.values()),
                "failures": failures(counted),
                "p99 ms": cheap.get("p99 ms"),
                "max ms": cheap.get("max ms"),
            }
        )
        at = upto
    return found


def summary(result: dict[str, Any], start: float, end: float) -> dict[str, Any]:
    counted = answers(result, start, end)
    return {
        "answers": sum(counted.values()),
        "by status": by_status(counted),
        "failures": failures(counted),
        "wrong admits": total_between(result, "wrong_admits", start, end),
        "not sent": total_between(result, "not_sent", start, end),
        "latency": latency(result, start, end),
    }
