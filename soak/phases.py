"""The soak's phases: each starts a sidecar of its own (as systemd would
restart it), puts the load on, makes one thing fail, and counts.

- ``stop``: slapd stopped (SIGSTOP) under load, then continued.
- ``kill``: slapd killed (SIGKILL) under load, then started again.
- ``slow``: every directory answer late (through ``soak.proxy``), then on time.
- ``redis``: the sidecar with ``[state] redis_url``; redis-server restarted.
- ``disk``: the state files' file system full while a teacher withdraws a
  guest link and a pupil logs out; then a restart: did anything come undone?
- ``restarts``: restarts under load, played as systemd does them.
- ``mixed``: the mixed load alone for minutes: memory and pauses over time.
"""

from __future__ import annotations

import math
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sidecar.sliding_counter import MAX_TRACKED_KEYS
from soak import guests, tally
from soak.browser import Browser
from soak.load import SOURCES, UNKNOWN_NAME, USUAL_PLACE
from soak.service import ServiceError, descriptor_kinds, descriptor_limit
from soak.stack import OPEN_ROOM, SoakStack
from soak.watch import Sample

PHASES = ("stop", "kill", "slow", "redis", "disk", "restarts", "mixed")
SLACK_SECONDS = 120.0  # the load's own bound, beyond what a phase plans
LOGIN_BACK_LIMIT = 60.0
TOP_LOG_LINES = 6
# Load before the descriptors are counted: a fresh sidecar has not opened its
# LDAP connections yet, and those are not a leak.
WARM_UP_SECONDS = 5.0
# Names before the mixed load: every failure-count table full, then turned over
# twice more. Full is not yet steady: as new names push old ones out, the tables'
# dicts and Python's allocator grow on until the keys have been replaced about
# once (in process: 60.7 MB resident with the tables just full, 96.4 MB after
# 60,000 more names, and no more after 300,000).
FILL_NAMES = 3 * MAX_TRACKED_KEYS
# Likewise the usual places, each (person, address) pair of the load in turn:
# 2,000 people, each known by name and by entry, at 16 addresses are 64,000
# pairs for a table of 50,000, whose dict doubles once more after about
# 90,000 entries (in process); two rounds take it past that.
FILL_ROUNDS = 2
FILL_STEP_SECONDS = 30.0
FILL_MAX_SECONDS = 900.0


@dataclass(frozen=True)
class Durations:
    minutes: float  # the mixed load
    outage: float  # slapd stopped or killed, the directory slow
    calm: float  # load before and after each fault
    redis_down: float
    restarts: int
    restart_interval: float
    slow_delay: float  # seconds added to every directory answer
    window: float  # width of the time series' windows, seconds
    fill_names: int = FILL_NAMES  # made-up names before the mixed load


@dataclass
class Timeline:
    marks: list[tuple[str, float]] = field(default_factory=list)

    def mark(self, name: str) -> float:
        now = time.monotonic()
        self.marks.append((name, now))
        return now

    def segments(self, end: float) -> list[tuple[str, float, float]]:
        ends = [at for _, at in self.marks[1:]] + [end]
        return [(name, at, upto) for (name, at), upto in zip(self.marks, ends, strict=True)]


def megabytes(kib: int | None) -> float | None:
    return None if kib is None else round(kib * 1024 / 1e6, 1)


def common(
    stack: SoakStack, result: dict[str, Any], timeline: Timeline, start: float, end: float
) -> dict[str, Any]:
    """What every phase reports: answers, failures, pauses, per segment and in all;
    memory; the logs' error lines."""
    counted = tally.answers(result, start, end)
    samples = stack.watch.samples_between(start, end)
    lines = stack.watch.lines_between(start, end)
    logged: dict[str, dict[str, int]] = {}
    for source in ("sidecar", "nginx"):
        counts = Counter(line.message for line in lines if line.source == source)
        logged[source] = dict(counts.most_common(TOP_LOG_LINES))
        logged[source]["(all lines)"] = sum(counts.values())
    resident = [sample.resident_kib for sample in samples if sample.resident_kib is not None]
    return {
        **tally.summary(result, start, end),
        "by kind": tally.by_kind(counted),
        "segments": {
            name: {"seconds": round(upto - at, 1), **tally.summary(result, at, upto)}
            for name, at, upto in timeline.segments(end)
        },
        "resident MB": {
            "first": megabytes(resident[0]) if resident else None,
            "last": megabytes(resident[-1]) if resident else None,
            "max": megabytes(max(resident)) if resident else None,
        },
        "error lines logged": logged,
    }


def _outage(
    stack: SoakStack,
    durations: Durations,
    name: str,
    config: str,
    begin: Callable[[], None],
    end: Callable[[], None],
    back: Callable[[], dict[str, Any]],
    outage_seconds: float,
) -> dict[str, Any]:
    stack.use(config)
    pid = stack.service.pid
    stack.warm_up(min(durations.calm, WARM_UP_SECONDS))
    stack.watch.sample()
    descriptors: dict[str, Any] = {
        "limit": descriptor_limit(pid),
        "idle before": stack.idle_descriptors(),
    }
    kinds_before = descriptor_kinds(pid)
    timeline = Timeline()
    planned = 2 * durations.calm + outage_seconds + SLACK_SECONDS + LOGIN_BACK_LIMIT
    with stack.load(name, planned) as run:
        timeline.mark("before")
        time.sleep(durations.calm)
        descriptors["under load before"] = stack.descriptors()
        timeline.mark("outage")
        begin()
        time.sleep(outage_seconds)
        descriptors["end of outage"] = stack.descriptors()
        end()
        after = timeline.mark("after")
        found = back()
        time.sleep(max(0.0, durations.calm - (time.monotonic() - after)))
        descriptors["under load after"] = stack.descriptors()
    ended = time.monotonic()
    descriptors["idle after"] = stack.settled_descriptors(descriptors["idle before"])
    stack.watch.sample()
    before, later = descriptors["idle before"], descriptors["idle after"]
    descriptors["left open"] = None if before is None or later is None else later - before
    kinds_after = descriptor_kinds(pid)
    descriptors["left open, by kind"] = {
        stack.name_ports(kind): count - kinds_before.get(kind, 0)
        for kind, count in kinds_after.items()
        if count != kinds_before.get(kind, 0)
    }
    return {
        "pid": pid,
        "descriptors": descriptors,
        **found,
        **common(stack, run.result, timeline, timeline.marks[0][1], ended),
    }


def _login_back(stack: SoakStack) -> dict[str, Any]:
    return {"login works again after s": stack.seconds_until_a_login_works(LOGIN_BACK_LIMIT)}


def slapd_stopped(stack: SoakStack, durations: Durations) -> dict[str, Any]:
    return _outage(
        stack, durations, "stop", "direct",
        lambda: stack.signal_slapd(signal.SIGSTOP),
        lambda: stack.signal_slapd(signal.SIGCONT),
        lambda: _login_back(stack),
        durations.outage,
    )  # fmt: skip


def slapd_killed(stack: SoakStack, durations: Durations) -> dict[str, Any]:
    def kill() -> None:
        stack.signal_slapd(signal.SIGKILL)
        stack.slapd.stop()  # reaps it; its ports stay its own (below the ephemeral range)

    return _outage(
        stack, durations, "kill", "direct", kill, stack.slapd.start,
        lambda: _login_back(stack), durations.outage,
    )  # fmt: skip


def directory_slow(stack: SoakStack, durations: Durations) -> dict[str, Any]:
    def slow() -> None:
        stack.proxy.delay = durations.slow_delay

    def on_time() -> None:
        stack.proxy.delay = 0.0

    found = _outage(
        stack, durations, "slow", "slow", slow, on_time, lambda: _login_back(stack),
        durations.outage,
    )  # fmt: skip
    return {"delay s": durations.slow_delay, **found}


def redis_restarted(stack: SoakStack, durations: Durations) -> dict[str, Any]:
    stack.redis.start()

    def back_up() -> None:
        stack.redis.start()

    def written_again() -> dict[str, Any]:
        """A restarted Redis is empty: the first key is the sidecar writing again."""
        started = time.monotonic()
        while time.monotonic() - started < max(durations.calm, 1.0):
            keys = stack.redis_keys()
            if keys:
                return {"Redis written again after s": round(time.monotonic() - started, 2)}
            time.sleep(0.1)
        return {"Redis written again after s": None}

    try:
        found = _outage(
            stack, durations, "redis", "redis", stack.redis.stop, back_up,
            written_again, durations.redis_down,
        )  # fmt: skip
    finally:
        stack.redis.stop()  # the next phase starts a sidecar without it
    return found


def state_disk_full(stack: SoakStack, durations: Durations) -> dict[str, Any]:
    state = stack.state
    if not state.mounted:
        return {"not run": f"no tmpfs for the state files: {state.problem}"}
    stack.use("direct")
    teacher_person, pupil_person = stack.school.teachers[-1], stack.school.pupils[-1]
    room = OPEN_ROOM.capitalize()
    steps: dict[str, Any] = {}
    timeline = Timeline()
    try:
        with stack.load("disk", 2 * durations.calm + SLACK_SECONDS * 2) as run:
            timeline.mark("before")
            teacher = Browser(stack.port)
            teacher.log_in(teacher_person.uid, teacher_person.password, "/Mathe7b")
            _, first_link = guests.create(teacher, room)
            if first_link is None:
                raise RuntimeError("the teacher could not create a guest link")
            steps["guest gets in before"] = guests.guest_gets_in(stack.port, first_link, room)
            pupil = Browser(stack.port)
            pupil.log_in(pupil_person.uid, pupil_person.password, f"/{room}")
            logged_out_cookies = dict(pupil.cookies)
            steps["pupil gets in before"] = pupil.get(f"/{room}").admits
            time.sleep(durations.calm)

            timeline.mark("disk full")
            steps["bytes it took to fill"] = state.fill()
            withdrawn = guests.withdraw(teacher, room, first_link)
            still_listed = first_link in guests.listed(teacher, room)
            steps["withdraw: answer"] = withdrawn.status if withdrawn else None
            steps["withdraw: teacher sees it gone"] = not still_listed
            answer, second_link = guests.create(teacher, room)
            steps["new link: answer"] = answer.status
            steps["new link: listed"] = second_link is not None
            logout_form = pupil.get("/auth/logout")
            logout = pupil.post("/auth/logout", {"csrf_token": pupil.csrf_token(logout_form)})
            steps["logout: answer"] = logout.status
            # What the pupil is told: the page, and her session cookie cleared.
            cleared = [name for name in logged_out_cookies if name not in pupil.cookies]
            steps["logout: pupil told logged out"] = logout.status == 200 and bool(cleared)
            steps["withdrawn link lets a guest in, before restart"] = guests.guest_gets_in(
                stack.port, first_link, room
            )
            replayed = Browser(stack.port, cookies=dict(logged_out_cookies))
            steps["logged-out cookie gets a token, before restart"] = replayed.get(
                f"/{room}"
            ).admits

            timeline.mark("restarted, disk still full")
            try:
                restart = stack.service.restart(stack.options.restart_order)
                steps["restart: ready after s"] = restart.ready_seconds
            except ServiceError as error:
                steps["restart: failed"] = str(error)[-300:]
                state.free()
                stack.service.start()
            steps["withdrawn link lets a guest in, after restart"] = guests.guest_gets_in(
                stack.port, first_link, room
            )
            replayed = Browser(stack.port, cookies=dict(logged_out_cookies))
            steps["logged-out cookie gets a token, after restart"] = replayed.get(f"/{room}").admits
            relisted = guests.listed(teacher, room)
            steps["new link listed after restart"] = (
                second_link in relisted if second_link else None
            )
            timeline.mark("disk freed")
            state.free()
            time.sleep(durations.calm)
    finally:
        state.free()  # whatever happened, the next phases have room
    ended = time.monotonic()
    undone = [
        steps["withdraw: teacher sees it gone"]
        and steps["withdrawn link lets a guest in, after restart"],
        steps["logout: pupil told logged out"]
        and steps["logged-out cookie gets a token, after restart"],
    ]
    return {
        "steps": steps,
        "done, then undone at the restart": sum(bool(item) for item in undone),
        **common(stack, run.result, timeline, timeline.marks[0][1], ended),
    }


def restarts(stack: SoakStack, durations: Durations) -> dict[str, Any]:
    stack.use("direct")
    timeline = Timeline()
    planned = (
        2 * durations.calm + durations.restarts * (durations.restart_interval + 30) + SLACK_SECONDS
    )
    played: list[dict[str, Any]] = []
    with stack.load("restarts", planned) as run:
        timeline.mark("before")
        time.sleep(durations.calm)
        timeline.mark("restarts")
        for _ in range(durations.restarts):
            stack.watch.sample()
            done = stack.service.restart(stack.options.restart_order)
            played.append(
                {
                    "started": done.started,
                    "ExecStartPre s": done.check_config_seconds,
                    "ready after s": done.ready_seconds,
                    "old process stopped in s": done.stopped.seconds,
                    "old process killed": done.stopped.killed,
                    "old process exit code": done.stopped.returncode,
                }
            )
            time.sleep(max(0.0, durations.restart_interval - (time.monotonic() - done.started)))
        timeline.mark("after")
        time.sleep(durations.calm)
    ended = time.monotonic()
    # Each restart answers for the failures from its start until the next one's.
    bounds = [item["started"] for item in played] + [ended]
    for index, item in enumerate(played):
        counted = tally.answers(run.result, bounds[index], bounds[index + 1])
        item["failed requests"] = tally.failures(counted)
        item["answers"] = sum(counted.values())
        item["started"] = round(item["started"] - timeline.marks[0][1], 1)
    lost = [item["failed requests"] for item in played]
    return {
        "restarts": len(played),
        "order": stack.options.restart_order,
        "failed requests over the restarts": sum(lost),
        "restarts that lost requests": sum(1 for count in lost if count),
        "most lost in one restart": max(lost, default=0),
        "longest stop s": max((item["old process stopped in s"] for item in played), default=0),
        "each restart": played,
        **common(stack, run.result, timeline, timeline.marks[0][1], ended),
    }


def slope_mb_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB a minute."""
    if len(points) < 3:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_m = sum(m for _, m in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return round(sum((t - mean_t) * (m - mean_m) for t, m in points) / spread * 60, 3)


def _by_minute(
    windows: list[dict[str, Any]], samples: list[Sample], start: float, seconds: float
) -> list[dict[str, Any]]:
    rows = []
    for minute in range(math.ceil(seconds / 60)):
        low, high = minute * 60, (minute + 1) * 60
        inside = [window for window in windows if low <= window["from s"] < high]
        sampled = [sample for sample in samples if low <= sample.at - start < high]
        rows.append(
            {
                "minute": minute + 1,
                "resident MB": megabytes(sampled[-1].resident_kib) if sampled else None,
                "descriptors": sampled[-1].descriptors if sampled else None,
                "answers": sum(window["answers"] for window in inside),
                "failures": sum(window["failures"] for window in inside),
                "p99 ms": max((window["p99 ms"] or 0 for window in inside), default=None),
                "max ms": max((window["max ms"] or 0 for window in inside), default=None),
            }
        )
    return rows


def _fill(stack: SoakStack, kind: str, requests: int, deadline: float) -> int:
    """Closed-loop steps of ``kind`` alone until ``requests`` were answered (or the
    deadline passed); how many were."""
    sent = 0
    while sent < requests and time.monotonic() < deadline:
        with stack.load(
            f"fill-{kind.replace(' ', '-')}-{sent}",
            FILL_STEP_SECONDS,
            mode="closed",
            weights={kind: 1.0},
            first_place=sent,
        ) as run:
            time.sleep(FILL_STEP_SECONDS)
        counted = tally.answers(run.result, run.result["started"], run.result["ended"] + 1)
        sent += sum(counted.values())
    return sent


def fill_caps(stack: SoakStack, names: int) -> dict[str, Any] | None:
    """The state of a daemon after a busy week, which the mixed load then runs on:
    made-up names, each from an address of its own, until every per-key table of
    failure counts is full; then every person the load logs in, from each address
    it logs in from, so that the tables of usual places and directory entries hold
    all they will. Without it the 15 minutes would measure the tables filling
    (about 40 new keys a second at the soak's rate, and the usual places a few a
    second: a school's 32,000 of them over weeks) rather than whether anything
    grows once they are full and turning over."""
    if names <= 0:
        return None
    before = stack.watch.sample()
    started = time.monotonic()
    sent = _fill(stack, UNKNOWN_NAME, names, started + FILL_MAX_SECONDS)
    places = len(stack.rotating()) * len(SOURCES) * FILL_ROUNDS
    logins = _fill(stack, USUAL_PLACE, places, time.monotonic() + FILL_MAX_SECONDS)
    after = stack.watch.sample()
    return {
        "names": sent,
        "usual places": logins,
        "seconds": round(time.monotonic() - started, 1),
        "resident MB before": megabytes(before.resident_kib) if before else None,
        "resident MB after": megabytes(after.resident_kib) if after else None,
    }


def mixed(stack: SoakStack, durations: Durations) -> dict[str, Any]:
    stack.use("direct")
    filled = fill_caps(stack, durations.fill_names)
    timeline = Timeline()
    seconds = durations.minutes * 60
    with stack.load("mixed", seconds + SLACK_SECONDS) as run:
        start = timeline.mark("load")
        time.sleep(seconds)
    ended = time.monotonic()
    samples = [s for s in stack.watch.samples_between(start, ended) if s.resident_kib]
    series = [(round(s.at - start, 1), megabytes(s.resident_kib) or 0.0) for s in samples]
    # The last ten minutes, or what is left once the first third (warming up) is over.
    judged = min(600.0, seconds - min(60.0, seconds / 3))
    tail = [(t, mb) for t, mb in series if t >= seconds - judged]
    slope = slope_mb_per_minute(tail)
    growth = None if slope is None else round(slope * judged / 60, 1)
    mean = sum(mb for _, mb in tail) / len(tail) if tail else 0.0
    flat = None if growth is None else abs(growth) <= max(2.0, 0.03 * mean)
    windows = tally.windows(run.result, start, ended, durations.window)
    return {
        "caps filled first": filled,
        "minutes": durations.minutes,
        "minutes table": _by_minute(windows, samples, start, seconds),
        "resident MB over time": series,
        "descriptors over time": [
            (round(s.at - start, 1), s.descriptors) for s in samples if s.descriptors
        ],
        "slope MB/min (judged part)": slope,
        "judged part s": round(judged),
        "growth over the judged part MB": growth,
        "memory flat": flat,
        "windows": windows,
        **common(stack, run.result, timeline, start, ended),
    }


RUNNERS: dict[str, Callable[[SoakStack, Durations], dict[str, Any]]] = {
    "stop": slapd_stopped,
    "kill": slapd_killed,
    "slow": directory_slow,
    "redis": redis_restarted,
    "disk": state_disk_full,
    "restarts": restarts,
    "mixed": mixed,
}
TITLES = {
    "stop": "slapd stopped (SIGSTOP), then continued",
    "kill": "slapd killed (SIGKILL), then started again",
    "slow": "every directory answer late, then on time",
    "redis": "redis-server restarted",
    "disk": "state files' disk full, then a restart",
    "restarts": "restarts as systemd plays them",
    "mixed": "mixed load",
}
