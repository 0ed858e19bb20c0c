"""``latest.png``: throughput and p99 of each case, each bar next to its baseline's."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: a file only

import matplotlib.pyplot as plt  # after the backend is chosen

from bench.report import RunReport
from bench.targets import P99_AT_HALF_LOAD_MS

CASE_COLOUR = "#2f6db5"
BASELINE_COLOUR = "#b9b9b9"
BAR_HEIGHT = 0.38


def _figure(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2g}" if value < 1 else f"{value:.3g}"


def draw(report: RunReport, path: Path) -> None:
    """Cases that have a baseline, top to bottom in the run's order."""
    compared = [case for case in report.cases if case.baseline is not None]
    labels = [f"{case.name}\nvs {case.baseline}" for case in compared]
    positions = list(range(len(compared)))[::-1]
    figure, (throughput, latency) = plt.subplots(
        1, 2, figsize=(13, 0.62 * len(compared) + 1.6), sharey=True
    )
    for axis, metric, title in (
        (throughput, "rate", "requests/s (log scale)"),
        (latency, "p99_ms", "p99 latency, ms (log scale)"),
    ):
        case_values = [getattr(report.summaries[case.name], metric) for case in compared]
        baseline_values = [
            getattr(report.summaries[str(case.baseline)], metric) for case in compared
        ]
        for offset, values, colour, label in (
            (BAR_HEIGHT / 2, case_values, CASE_COLOUR, "case"),
            (-BAR_HEIGHT / 2, baseline_values, BASELINE_COLOUR, "its baseline"),
        ):
            bars = axis.barh(
                [p + offset for p in positions], values, BAR_HEIGHT, color=colour, label=label
            )
            axis.bar_label(bars, labels=[_figure(v) for v in values], fontsize=7, padding=2)
        axis.set_xscale("log")
        axis.margins(x=0.15)  # room for the labels
        axis.set_title(title)
        axis.grid(axis="x", which="both", alpha=0.3)
    latency.axvline(
        P99_AT_HALF_LOAD_MS,
        color="#c0392b",
        linestyle="--",
        linewidth=1,
        label=f"{P99_AT_HALF_LOAD_MS:g} ms (target at half load)",
    )
    throughput.set_yticks(positions, labels, fontsize=8)
    latency.legend(loc="lower right", fontsize=8)
    cpus = report.environment.get("cpus", "?")
    figure.suptitle(f"make bench, {report.started} ({cpus} cores, loopback)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
