"""The results of a run: ``latest.json`` for machines, a Markdown table for people."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.cases import Case
from bench.procstat import Memory
from bench.samples import Summary
from bench.targets import Verdict


@dataclass(frozen=True)
class MemoryReading:
    sidecar: str  # which of the two
    moment: str  # when it was read
    memory: Memory


@dataclass(frozen=True)
class RunReport:
    started: str  # ISO 8601, UTC
    run_seconds: float
    settings: Mapping[str, Any]
    environment: Mapping[str, str]
    cases: Sequence[Case]
    summaries: Mapping[str, Summary]
    memory: Sequence[MemoryReading]
    verdicts: Sequence[Verdict]
    notes: Sequence[str]

    def ratio(self, case: Case) -> float | None:
        """Requests per second, as a multiple of its baseline's."""
        if case.baseline is None or case.baseline not in self.summaries:
            return None
        base = self.summaries[case.baseline].rate
        return self.summaries[case.name].rate / base if base > 0 else None

    def p99_ratio(self, case: Case) -> float | None:
        """p99 latency, as a multiple of its baseline's."""
        if case.baseline is None or case.baseline not in self.summaries:
            return None
        base = self.summaries[case.baseline].p99_ms
        return self.summaries[case.name].p99_ms / base if base > 0 else None

    def versus(self, case: Case) -> str:
        """The table's comparison: throughput, or at a fixed rate, p99."""
        if case.group == "fixed rate":
            p99 = self.p99_ratio(case)
            return f"p99 {p99:.1f}x {case.baseline}" if p99 is not None else ""
        ratio = self.ratio(case)
        return f"{ratio:.2f}x {case.baseline}" if ratio is not None else ""


def as_json(report: RunReport) -> dict[str, Any]:
    cases = []
    for case in report.cases:
        summary = report.summaries[case.name]
        cases.append(
            {
                "name": case.name,
                "title": case.title,
                "group": case.group,
                "expected_answer": case.expected,
                "baseline": case.baseline,
                "ratio_to_baseline": report.ratio(case),
                "p99_ratio_to_baseline": report.p99_ratio(case),
                **asdict(summary),
                "requests_per_second": summary.rate,
            }
        )
    return {
        "started": report.started,
        "run_seconds": round(report.run_seconds, 1),
        "settings": dict(report.settings),
        "environment": dict(report.environment),
        "cases": cases,
        "memory": [
            {
                "sidecar": reading.sidecar,
                "moment": reading.moment,
                "resident_kib": reading.memory.resident_kib,
                "peak_resident_kib": reading.memory.peak_resident_kib,
            }
            for reading in report.memory
        ],
        "targets": [asdict(verdict) for verdict in report.verdicts],
        "notes": list(report.notes),
    }


def _ms(value: float) -> str:
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _errors(summary: Summary) -> str:
    if summary.errors == 0:
        return "0"
    parts = [
        f"{count} {kind}"
        for count, kind in (
            (summary.unexpected, "unexpected"),
            (summary.socket_errors, "socket"),
            (summary.timeouts, "timeout"),
        )
        if count
    ]
    return "**" + ", ".join(parts) + "**"


def _verdict_cell(verdicts: Sequence[Verdict]) -> str:
    return "; ".join(
        f"{verdict.target}: {'pass' if verdict.passed else '**FAIL**'}" for verdict in verdicts
    )


def as_markdown(report: RunReport) -> str:
    lines = [
        f"# make bench: {report.started}",
        "",
        "| case | every answer must be | req/s | rounds ± | p50 ms | p99 ms | max ms "
        "| errors | CPU µs/req | slapd µs/req | vs baseline | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for case in report.cases:
        summary = report.summaries[case.name]
        lines.append(
            "| "
            + " | ".join(
                [
                    f"{case.name}: {case.title}",
                    case.expected,
                    f"{summary.rate:,.0f}",
                    f"{summary.spread * 50:.0f} %",
                    _ms(summary.p50_ms),
                    _ms(summary.p99_ms),
                    _ms(summary.max_ms),
                    _errors(summary),
                    f"{summary.cpu_us_per_request:,.0f}",
                    f"{summary.slapd_cpu_us_per_request:,.0f}",
                    report.versus(case),
                    _verdict_cell([v for v in report.verdicts if v.case == case.name]),
                ]
            )
            + " |"
        )
    lines += ["", "| sidecar | when | RSS MB | peak RSS MB |", "| --- | --- | ---: | ---: |"]
    for reading in report.memory:
        lines.append(
            f"| {reading.sidecar} | {reading.moment} | {reading.memory.resident_mb:.1f} "
            f"| {reading.memory.peak_mb:.1f} |"
        )
    lines += ["", "| target | measured | result |", "| --- | ---: | --- |"]
    for verdict in report.verdicts:
        about = f"{verdict.case}: " if verdict.case else ""
        result = "pass" if verdict.passed else "**FAIL**"
        lines.append(f"| {about}{verdict.target} | {verdict.measured} | {result} |")
    lines += ["", *(f"- {note}" for note in report.notes), ""]
    return "\n".join(lines)
