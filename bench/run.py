"""One bench run: start everything, prepare the load, measure in turns, report, stop."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import procstat
from bench.cases import (
    HALF_LOAD,
    PEER_RUSH,
    RUSH,
    RUSH_2W,
    Case,
    FixedRateRound,
    Workload,
    build_cases,
    fixed_rate_case,
    same_handling_baseline,
)
from bench.drivers import SYSTEM_PYTHON
from bench.logins import admit_all
from bench.report import MemoryReading, RunReport, as_json, as_markdown
from bench.samples import Sample, Summary, summarize
from bench.school import generated_school, people_with_a_role
from bench.servers import CACHED_BASIC_TTL, Servers, start_servers
from bench.targets import HALF_LOAD_CASES, verdicts
from bench.wrk import WRK, Load
from demo.processes import stop_on_sigterm
from testbed.stack import SidecarProcess

RESULTS = Path(__file__).with_name("results")
CACHED = "with Basic cache"
UNCACHED = "without Basic cache"


@dataclass(frozen=True)
class Plan:
    users: int = 2000
    rounds: int = 6
    round_seconds: int = 4
    warmup_seconds: int = 3  # 0: no warm-up round
    # Between two cases: what one left behind (closing connections) settles.
    pause_seconds: float = 0.5
    threads: int = 2
    connections: int = 32
    ldap_concurrency: int = 32


FULL = Plan()
# A smoke run: does every case still get the answers it expects?
QUICK = Plan(users=200, rounds=2, round_seconds=2, warmup_seconds=0, pause_seconds=0.1)


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        print(f"[{self.elapsed:5.0f}s] {text}", flush=True)


def _version(command: Sequence[str]) -> str:
    try:
        # Fixed commands of Debian packages, for the report's environment.
        found = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return "?"
    text = (found.stdout + found.stderr).strip().splitlines()
    return text[0] if text else "?"


def _environment() -> dict[str, str]:
    return {
        "cpus": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nginx": _version(["/usr/sbin/nginx", "-v"]),
        "wrk": _version([WRK, "-v"]),
        "machine": platform.machine(),
    }


def _round_robin(
    cases: Sequence[Case], plan: Plan, progress: Progress, rounds: int
) -> dict[str, list[Sample]]:
    """Every case once per round; each round starts one case later, so that no case
    always follows the same neighbour."""
    samples: dict[str, list[Sample]] = {case.name: [] for case in cases}
    for number in range(rounds):
        shift = number % len(cases)
        for case in [*cases[shift:], *cases[:shift]]:
            sample = case.measure(plan.round_seconds)
            samples[case.name].append(sample)
            errors = sample.unexpected + sample.socket_errors + sample.timeouts
            progress.say(
                f"round {number + 1}/{rounds} {case.name:<32} {sample.rate:9,.0f}/s "
                f"errors {errors}" + (f" ({sample.examples[0]})" if sample.examples else "")
            )
            time.sleep(plan.pause_seconds)
    return samples


def _warm_up(cases: Sequence[Case], plan: Plan, progress: Progress) -> None:
    """A short unrecorded round of each: pools filled, code paths warm."""
    for case in cases:
        case.measure(plan.warmup_seconds)
        time.sleep(plan.pause_seconds)
    progress.say("warm-up done")


def _half_load_cases(
    workload: Workload, cases: Sequence[Case], summaries: Mapping[str, Summary]
) -> list[Case]:
    """The cases with a p99 target at half the rate they managed, and beside them, at the
    first one's rate, the bare baseline with the same connection handling: what the
    fixed-rate client and nginx add by themselves."""
    by_name = {case.name: case for case in cases}
    bare = by_name[same_handling_baseline(workload.servers)]
    control_rate = summaries[HALF_LOAD_CASES[0]].rate / 2
    control = fixed_rate_case(
        workload,
        bare,
        control_rate,
        baseline=None,
        title=f"{bare.title}, at the fixed {control_rate:,.0f}/s of "
        f"{HALF_LOAD_CASES[0]}{HALF_LOAD}",
    )
    halves = [
        fixed_rate_case(workload, by_name[name], summaries[name].rate / 2, baseline=control.name)
        for name in HALF_LOAD_CASES
    ]
    return [*halves, control]


def _memory(label: str, sidecar: SidecarProcess, moment: str) -> MemoryReading:
    assert sidecar.process is not None
    return MemoryReading(label, moment, procstat.memory(sidecar.process.pid))


def _measure(
    workload: Workload, plan: Plan, progress: Progress
) -> tuple[list[Case], dict[str, Summary]]:
    """Every case in turn, then the half-load cases in turn: each with its summary."""
    cases = build_cases(workload)
    if plan.warmup_seconds > 0:
        _warm_up(cases, plan, progress)
    samples = _round_robin(cases, plan, progress, plan.rounds)
    summaries = {name: summarize(rounds) for name, rounds in samples.items()}
    half_load = _half_load_cases(workload, cases, summaries)
    half_samples = _round_robin(half_load, plan, progress, plan.rounds)
    summaries.update({name: summarize(rounds) for name, rounds in half_samples.items()})
    return [*cases, *half_load], summaries


def _notes(
    plan: Plan, servers: Servers, fixed_rates: Mapping[str, float], summaries: Mapping[str, Summary]
) -> list[str]:
    half = "; ".join(
        f"{name} {rate:,.0f}/s (client late by {summaries[name].schedule_lag_p99_ms:.1f} ms at p99)"
        for name, rate in fixed_rates.items()
    )
    warm_up = (
        f"a warm-up round of {plan.warmup_seconds} s of each first, not counted"
        if plan.warmup_seconds > 0
        else "no warm-up round"
    )
    return [
        f"wrk -t{plan.threads} -c{plan.connections} -d{plan.round_seconds}s --latency on "
        f"127.0.0.1; {plan.rounds} rounds per case, cases in turn (each round starts one "
        f"case later); {warm_up}. rounds ± is half the spread between the slowest and "
        "the fastest round.",
        f"slapd holds {plan.users} people with a role (a tenth teachers) in groupOfNames "
        "groups plus a posixGroup class; passwords {SSHA512} (pw-sha2), as the demo.",
        "Every answer is checked: the status and, where given, the start of a header "
        "(errors = unexpected answers, socket errors, timeouts).",
        f"The include reaches the sidecar with a {servers.include_handling}; sidecar cases "
        f"(a)-(c) are compared with {same_handling_baseline(servers)}.",
        "Sidecar configuration: the demo's (service account search, group search), "
        f"regulation limits raised (counted over 1 s), Basic cache {CACHED_BASIC_TTL} s "
        "for (a)-(c) and (f), off for (d), (e) and the rush; the -2w cases: the same "
        "without the cache, with [server] workers = 2 and a local redis-server on a unix "
        "socket (Redis's CPU counted with the sidecar's).",
        "CPU µs/req: utime+stime from /proc of nginx (master and worker) and the app "
        "behind it; for the LDAP baselines the client process itself. slapd apart.",
        "Half load: an open-loop asyncio client (bench/fixed_rate.py; wrk2 is not in "
        "Debian) sends on a fixed schedule over keep-alive connections, whatever the "
        "answers do, and times each answer from its actual send (waiting for a free "
        f"connection included): {half}.",
        f"The peer: {servers.peer_label}, on 127.0.0.1 behind an nginx of its own "
        "(auth_request, the LDAP settings in X-Ldap-* headers: the sidecar's service "
        "account, user base and filter), against the same slapd; no proxy_cache.",
        "Morning rush: every person once, 64 clients at once, each taking the next person "
        "when done: a Basic login and two reloads, each a bind (the sidecar without its "
        f"Basic cache); until the last is done: {_rush_times(summaries)}.",
        "Peak RSS: VmHWM of each sidecar; the one with the Basic cache after every person "
        "was cached through Basic and logged in through the form, and at the end.",
    ]


def _rush_times(summaries: Mapping[str, Summary]) -> str:
    """Seconds per rush (a round is one whole rush), the sidecar's and the peer's."""
    times = [
        f"{name} {summaries[name].seconds / summaries[name].rounds:.1f} s per rush"
        for name in (RUSH, RUSH_2W, PEER_RUSH)
        if name in summaries and summaries[name].rounds
    ]
    return "; ".join(times)


def run(
    plan: Plan,
    out_dir: Path,
    *,
    keep: bool = False,
    chart: bool = True,
    peer_daemon: Path | None = None,
) -> int:
    """``peer_daemon``: nginx-ldap-auth-daemon.py to measure; None: its stand-in."""
    progress = Progress()
    started = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    stop_on_sigterm()
    with ExitStack() as stack:
        if keep:
            workdir = Path(tempfile.mkdtemp(prefix="jitsi-auth-sidecar-bench-"))
            progress.say(f"working directory (kept): {workdir}")
        else:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="jitsi-auth-sidecar-bench-"))
            )
        # nginx's workers and slapd read what lies in here.
        workdir.chmod(0o755)
        school = generated_school(plan.users)
        progress.say(f"starting slapd ({plan.users} people), the sidecars, the baselines, nginx")
        servers = start_servers(stack, workdir, school, peer_daemon=peer_daemon)
        progress.say(f"the peer: {servers.peer_label}")
        people = people_with_a_role(school)
        progress.say(f"logging in {len(people)} people (Basic, then the form)")
        csrf, admitted = admit_all(servers.cached.url, people, plan.connections)
        filled = _memory(CACHED, servers.cached_sidecar, f"caches filled ({len(admitted)} people)")
        workload = Workload(
            servers=servers,
            admitted=admitted,
            csrf=csrf,
            workdir=workdir,
            load=Load(plan.threads, plan.connections, plan.round_seconds),
            ldap_concurrency=plan.ldap_concurrency,
        )
        cases, summaries = _measure(workload, plan, progress)
        memory = [
            filled,
            _memory(CACHED, servers.cached_sidecar, "end of run"),
            _memory(UNCACHED, servers.uncached_sidecar, "end of run"),
        ]
        fixed_rates = {
            case.name: case.measure.rate
            for case in cases
            if isinstance(case.measure, FixedRateRound)
        }
        report = RunReport(
            started=started,
            run_seconds=progress.elapsed,
            settings=asdict(plan),
            environment=_environment(),
            cases=cases,
            summaries=summaries,
            memory=memory,
            verdicts=verdicts(
                summaries,
                bare=same_handling_baseline(servers),
                peak_memory_mb=max(reading.memory.peak_mb for reading in memory),
            ),
            notes=_notes(plan, servers, fixed_rates, summaries),
        )
    write_results(report, out_dir, chart=chart)
    print()
    print(as_markdown(report))
    print(f"run time {progress.elapsed:.0f} s; results in {out_dir}")
    return 0


def write_results(report: RunReport, out_dir: Path, *, chart: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(as_json(report), indent=2) + "\n", "utf-8")
    (out_dir / "latest.md").write_text(as_markdown(report), "utf-8")
    if chart:
        # matplotlib only when asked for: it is the bench extra's, not the daemon's.
        from bench.chart import draw

        draw(report, out_dir / "latest.png")


def tools_missing() -> list[str]:
    """What ``make bench`` installs (Debian packages) and a run cannot do without."""
    missing = [
        tool for tool in (WRK, "/usr/sbin/nginx", "/usr/sbin/slapd") if not Path(tool).exists()
    ]
    if shutil.which("redis-server") is None:
        missing.append("redis-server")  # the two-worker cases' shared state
    # Debian's python3-ldap, for Debian's python: the python-ldap baseline.
    check = subprocess.run(  # noqa: S603
        [SYSTEM_PYTHON, "-c", "import ldap"], capture_output=True, timeout=30, check=False
    )
    if check.returncode != 0:
        missing.append(f"python3-ldap for {SYSTEM_PYTHON}")
    return missing
