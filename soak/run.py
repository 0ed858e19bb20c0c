"""``python -m soak`` (``make soak``): a mixed load through nginx and the sidecar
for a few minutes while slapd is killed and started again, and while a proxy
makes every directory answer late; then the counts.

What must hold, and is reported: no request with a wrong password is let in;
the verify endpoint answers 200, 401 or 403 only (anything else is a 500 in
nginx); how long after slapd is back a fresh login works again; resident
memory at the start and at the end.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import secrets
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from demo.jitsi_http import JitsiHttp
from demo.nginx import free_port
from demo.run import SUBJECT, classroom_config, write_demo_config
from demo.school import SCHOOL
from demo.slapd import Slapd
from soak.proxy import DelayingProxy
from tests.stack import Browser, Stack, start_stack

RESULTS = Path(__file__).with_name("results")
# Nothing here is about bans: every failure is a made-up name.
LENIENT = """
[regulation]
max_failures_per_user = 10000
max_failures_per_user_overall = 1000000
max_failures_per_address = 100000
"""
WORKERS = 6
VERIFY_ANSWERS = {200, 401, 403}
BELOW_EPHEMERAL = (20000, 32000)
LET_IN = {200, 302}


@dataclass
class Tally:
    """Answers by kind of request, and what must never happen."""

    answers: Counter[str] = field(default_factory=Counter)
    wrong_password_let_in: int = 0
    verify_other_status: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind: str, status: int) -> None:
        with self.lock:
            self.answers[f"{kind} {status}"] += 1


def basic(uid: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{uid}:{password}".encode()).decode()}


class Load:
    """Threads sending a mix of requests until told to stop."""

    def __init__(self, stack: Stack, tally: Tally) -> None:
        self._stack = stack
        self._tally = tally
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(WORKERS)]
        teacher, pupil = SCHOOL.teachers[0], SCHOOL.pupils[0]
        self._teacher = Browser(stack)
        self._pupil = Browser(stack)
        self._teacher.log_in(teacher.uid, teacher.password, "/Mathe7b")
        self._pupil.log_in(pupil.uid, pupil.password, "/Geschlossen")
        self._actions: list[Callable[[], None]] = [
            self._fresh_login,
            self._teacher_enters,
            self._pupil_waits,
            self._wrong_password,
            self._verify_directly,
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _loop(self) -> None:
        while not self._stop.is_set():
            action = random.choice(self._actions)  # noqa: S311 - a load mix, not a secret
            try:
                action()
            except OSError as error:
                with self._tally.lock:
                    self._tally.errors[type(error).__name__] += 1

    def _fresh_login(self) -> None:
        person = random.choice(SCHOOL.pupils)  # noqa: S311
        self._tally.count("login", Browser(self._stack).log_in(person.uid, person.password).status)

    def _teacher_enters(self) -> None:
        self._tally.count("teacher session", self._teacher.get("/Mathe7b").status)

    def _pupil_waits(self) -> None:
        # The room is never open: the waiting page, from the session's role.
        self._tally.count("pupil waiting", self._pupil.get("/Geschlossen").status)

    def _wrong_password(self) -> None:
        person = random.choice(SCHOOL.people)  # noqa: S311
        status = self._stack.get("/Mathe7b", basic(person.uid, secrets.token_hex(6))).status
        self._tally.count("wrong password", status)
        if status in LET_IN:
            with self._tally.lock:
                self._tally.wrong_password_let_in += 1

    def _verify_directly(self) -> None:
        person = random.choice(SCHOOL.people)  # noqa: S311
        password = person.password if random.random() < 0.5 else "wrong"  # noqa: S311
        status = self._stack.sidecar.verify("/Mathe7b", basic(person.uid, password)).status
        self._tally.count("verify", status)
        if status not in VERIFY_ANSWERS:
            with self._tally.lock:
                self._tally.verify_other_status += 1


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def seconds_until_a_login_works(stack: Stack, limit: float) -> float | None:
    person = SCHOOL.pupils[1]
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if Browser(stack).log_in(person.uid, person.password).status == 302:
            return round(time.monotonic() - started, 2)
        time.sleep(0.1)
    return None


def ports_nobody_borrows(count: int) -> list[int]:
    """Free loopback ports below Linux's ephemeral range: under this much load a
    port from that range, free while slapd is stopped, soon becomes the source
    port of some connection, and slapd could not listen there again."""
    found: list[int] = []
    while len(found) < count:
        port = random.randrange(*BELOW_EPHEMERAL)  # noqa: S311
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
    return found


def run(phase_seconds: float, workdir: Path) -> dict[str, object]:
    jitsi = JitsiHttp(domain=SUBJECT).start()
    slapd = Slapd(workdir / "slapd")
    slapd.port, slapd.tls_port = ports_nobody_borrows(2)
    with slapd:
        proxy = DelayingProxy(slapd.port).start()
        port = free_port()
        extra = LENIENT + classroom_config(jitsi)
        config = write_demo_config(workdir, port=port, ldap_url=proxy.url, extra=extra)
        stack = start_stack(workdir, config, workdir / "sidecar.sock", port)
        try:
            assert stack.sidecar.process is not None
            pid = stack.sidecar.process.pid
            tally = Tally()
            load = Load(stack, tally)
            memory_start = resident_kib(pid)
            load.start()
            phases: list[dict[str, object]] = []
            time.sleep(phase_seconds)
            phases.append({"phase": "normal"})
            proxy.forwarding = False
            slapd.stop()
            time.sleep(phase_seconds)
            slapd.start()
            proxy.forwarding = True
            phases.append(
                {"phase": "slapd killed, then back",
                 "login works again after s": seconds_until_a_login_works(stack, 60)}
            )  # fmt: skip
            proxy.delay = 2.0
            time.sleep(phase_seconds)
            proxy.delay = 0.0
            phases.append(
                {"phase": "every directory answer 2 s late, then on time",
                 "login works again after s": seconds_until_a_login_works(stack, 60)}
            )  # fmt: skip
            time.sleep(phase_seconds)
            phases.append({"phase": "normal again"})
            load.stop()
            return {
                "phases": phases,
                "answers": dict(sorted(tally.answers.items())),
                "wrong passwords let in": tally.wrong_password_let_in,
                "verify answers other than 200/401/403": tally.verify_other_status,
                "client errors": dict(tally.errors),
                "resident memory KiB at start": memory_start,
                "resident memory KiB at end": resident_kib(pid),
            }
        finally:
            stack.stop()
            proxy.stop()
            jitsi.stop()


def markdown(report: dict[str, object]) -> str:
    lines = ["| what | count |", "| --- | --- |"]
    answers = report["answers"]
    assert isinstance(answers, dict)
    lines += [f"| {kind} | {count} |" for kind, count in answers.items()]
    for key in (
        "wrong passwords let in",
        "verify answers other than 200/401/403",
        "resident memory KiB at start",
        "resident memory KiB at end",
    ):
        lines.append(f"| **{key}** | {report[key]} |")
    phases = report["phases"]
    assert isinstance(phases, list)
    for phase in phases:
        recovered = phase.get("login works again after s")
        if recovered is not None or "login works again after s" in phase:
            lines.append(f"| login works again after: {phase['phase']} | {recovered} s |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--phase-seconds", type=float, default=40.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as workdir:
        report = run(args.phase_seconds, Path(workdir))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    table = markdown(report)
    (RESULTS / "latest.md").write_text(table, "utf-8")
    print(table)
    failed = report["wrong passwords let in"] or report["verify answers other than 200/401/403"]
    return 1 if failed else 0
