"""The soak's results as docs/reliability.md shows them, and what in them failed."""

from __future__ import annotations

from typing import Any

from soak.phases import TITLES

OUTAGES = ("stop", "kill", "slow", "redis")


def verdicts(report: dict[str, Any]) -> list[str]:
    """Each thing that must hold and did not, in a line."""
    failed: list[str] = []
    for name, phase in report.get("phases", {}).items():
        if "error" in phase:
            failed.append(f"{name}: the phase did not finish: {phase['error']}")
            continue
        if "not run" in phase:
            failed.append(f"{name}: not run: {phase['not run']}")
            continue
        if phase["failures"]:
            failed.append(f"{name}: {phase['failures']} answers outside 200/302/401/403/429/503")
        if phase["wrong admits"]:
            failed.append(
                f"{name}: {phase['wrong admits']} wrong passwords or unknown names let in"
            )
        left = phase.get("descriptors", {}).get("left open")
        # Fewer than before is fine: the pool closed connections the warm-up opened.
        if left is not None and left > 0:
            failed.append(f"{name}: {left} descriptors more than before the fault")
        if phase.get("failed requests over the restarts"):
            failed.append(f"{name}: {phase['failed requests over the restarts']} requests lost")
        if phase.get("done, then undone at the restart"):
            failed.append(f"{name}: {phase['done, then undone at the restart']} actions undone")
        if phase.get("memory flat") is False:
            failed.append(f"{name}: memory grows ({phase['slope MB/min (judged part)']} MB/min)")
    return failed


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{status}: {count:,}" for status, count in counts.items()) or "-"


def _pause(latency: dict[str, Any], group: str) -> str:
    found = latency.get(group)
    return f"{found['p99 ms']:,.0f} / {found['max ms']:,.0f}" if found else "-"


def _descriptors(phase: dict[str, Any]) -> str:
    found = phase.get("descriptors")
    if not found:
        return "-"
    left = "; ".join(f"{kind}: {count:+}" for kind, count in found["left open, by kind"].items())
    return (
        f"{found['idle before']} → {found['idle after']} "
        f"({found['under load before']} / {found['end of outage']} / {found['under load after']})"
        + (f"; {left}" if left else "")
    )


def _memory(phase: dict[str, Any]) -> str:
    found = phase["resident MB"]
    return f"{found['first']} → {found['last']}" if found["first"] is not None else "-"


def _calibration(rate: dict[str, Any]) -> str:
    """How the rate was found (nothing when it was given)."""
    if "closed-loop req/s" not in rate:
        return ""
    closed = f"a closed loop of the same mix got {rate['closed-loop req/s']:,} req/s"
    steps = rate.get("open-loop steps")
    if steps is None:  # results from before the open-loop steps
        return f" (half of {rate['closed-loop req/s']:,} req/s, a closed loop of the same mix)"
    tried = ", ".join(
        f"{step['req/s']:,} {'kept up' if step['kept up'] else 'did not'}" for step in steps
    )
    if rate.get("sustainable req/s") is None:
        return f" ({closed}; open-loop steps {tried}: none kept up, half the lowest)"
    return (
        f" (half of {rate['sustainable req/s']:,} req/s, the highest open-loop rate the stack"
        f" kept up with; {closed}; steps {tried})"
    )


def markdown(report: dict[str, Any]) -> str:
    rate = report.get("rate", {})
    lines = [
        f"make soak, {report['when']}, {report['minutes']} minutes: "
        f"{rate.get('soak rate req/s')} req/s"
        + _calibration(rate)
        + f", {report['settings']['people']:,} people, the sidecar's descriptor limit "
        f"{report['settings']['nofile']}, state files on {report.get('state files on')}.",
        "",
        "| phase | answers | by status | outside 200/302/401/403/429/503 | wrong admits "
        "| p99 / max ms, no directory | p99 / max ms, directory "
        "| descriptors idle before → after (under load: before / end of fault / after) "
        "| resident MB first → last |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    phases: dict[str, Any] = report.get("phases", {})
    for name, phase in phases.items():
        title = TITLES[name]
        if "error" in phase or "not run" in phase:
            lines.append(f"| {title} | {phase.get('error') or phase.get('not run')} |||||||| ")
            continue
        lines.append(
            f"| {title} | {phase['answers']:,} | {_statuses(phase['by status'])}"
            + (
                f"; not sent (the load's backlog): {phase['not sent']:,} "
                if phase["not sent"]
                else " "
            )
            + f"| {phase['failures']:,} | {phase['wrong admits']} "
            f"| {_pause(phase['latency'], 'no directory')} "
            f"| {_pause(phase['latency'], 'directory')} "
            f"| {_descriptors(phase)} | {_memory(phase)} |"
        )
    lines += _segments(phases)
    lines += _restarts(phases.get("restarts"))
    lines += _disk(phases.get("disk"))
    lines += _mixed(phases.get("mixed"))
    lines += _logged(phases)
    failed = report.get("what failed") or verdicts(report)
    lines += ["", "What failed: " + ("nothing." if not failed else "")]
    lines += [f"- {line}" for line in failed]
    return "\n".join(lines) + "\n"


def _segments(phases: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "Each fault, before / during / after: answers by status, p99 / max ms without the "
        "directory.",
        "",
        "| phase | before | during | after | login works again after s |",
        "| --- | --- | --- | --- | ---: |",
    ]
    shown = False
    for name in OUTAGES:
        phase = phases.get(name)
        if not phase or "segments" not in phase:
            continue
        shown = True
        cells = []
        for segment in ("before", "outage", "after"):
            found = phase["segments"].get(segment)
            cells.append(
                f"{_statuses(found['by status'])}; {_pause(found['latency'], 'no directory')}"
                if found
                else "-"
            )
        back = phase.get("login works again after s", phase.get("Redis written again after s"))
        note = "" if "Redis written again after s" not in phase else " (Redis written again)"
        lines.append(f"| {TITLES[name]} | {' | '.join(cells)} | {back}{note} |")
    return lines if shown else []


def _restarts(phase: dict[str, Any] | None) -> list[str]:
    if not phase or "each restart" not in phase:
        return []
    played = phase["each restart"]
    ready = sorted(item["ready after s"] for item in played)
    return [
        "",
        f"Restarts ({phase['order']}: the harness holds the socket, runs ExecStartPre, waits "
        "for READY=1, then SIGTERM to the old process):",
        "",
        "| restarts | failed requests | restarts that lost some | most in one | "
        "ready after s (median) | longest stop s | killed after 90 s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {phase['restarts']} | {phase['failed requests over the restarts']} "
        f"| {phase['restarts that lost requests']} | {phase['most lost in one restart']} "
        f"| {ready[len(ready) // 2] if ready else '-'} | {phase['longest stop s']} "
        f"| {sum(1 for item in played if item['old process killed'])} |",
    ]


def _disk(phase: dict[str, Any] | None) -> list[str]:
    if not phase or "steps" not in phase:
        return []
    lines = ["", "Full state disk (a 64 KiB tmpfs filled up):", "", "| step | result |"]
    lines.append("| --- | --- |")
    lines += [f"| {step} | {value} |" for step, value in phase["steps"].items()]
    lines.append(
        f"| **said done, then undone by the restart** | "
        f"{phase['done, then undone at the restart']} |"
    )
    return lines


def _mixed(phase: dict[str, Any] | None) -> list[str]:
    if not phase or "minutes table" not in phase:
        return []
    lines = [
        "",
        f"Mixed load, {phase['minutes']} minutes: resident memory "
        f"{'flat' if phase['memory flat'] else 'not flat'} over the last "
        f"{phase['judged part s']} s (slope {phase['slope MB/min (judged part)']} MB/min, "
        f"{phase['growth over the judged part MB']} MB in all).",
        *_filled(phase.get("caps filled first")),
        "",
        "| minute | resident MB | descriptors | answers | failures | p99 ms (worst 10 s) "
        "| max ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in phase["minutes table"]:
        lines.append(
            f"| {row['minute']} | {row['resident MB']} | {row['descriptors']} "
            f"| {row['answers']:,} | {row['failures']} | {row['p99 ms']} | {row['max ms']} |"
        )
    return lines


def _filled(filled: dict[str, Any] | None) -> list[str]:
    if not filled:
        return []
    return [
        "",
        f"Before it, {filled['names']:,} made-up names from addresses of their own filled "
        f"every failure-count table, and {filled.get('usual places', 0):,} logins of the "
        "load's people from each of its addresses the tables of usual places and entries "
        f"({filled['seconds']} s): resident "
        f"{filled['resident MB before']} → {filled['resident MB after']} MB.",
    ]


def _logged(phases: dict[str, Any]) -> list[str]:
    lines = ["", "Error lines logged (most frequent, digits folded to N):", ""]
    shown = False
    for name, phase in phases.items():
        for source, counts in phase.get("error lines logged", {}).items():
            total = counts.get("(all lines)", 0)
            if not total:
                continue
            shown = True
            top = "; ".join(
                f"`{line}`: {count:,}" for line, count in counts.items() if line != "(all lines)"
            )
            lines.append(f"- {name}, {source}: {total:,} lines. {top}")
    return lines if shown else []
