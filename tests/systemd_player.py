"""The daemon run the way systemd runs the shipped units, and restarted the way
``systemctl restart`` restarts it, under a stream of requests through nginx.

What systemd does, and this plays: the socket unit owns the listening socket
for good (here: this process); each start runs ``ExecStartPre=`` (check-config
--offline) and then the daemon with the socket as file descriptor 3
(``LISTEN_FDS``, ``LISTEN_PID``), and counts it started at ``READY=1`` on
``NOTIFY_SOCKET``; a stop is SIGTERM, then waiting for the process to end
(``TimeoutStopSec=``, then SIGKILL). Requests that come in between wait in the
socket's listen queue for the next process.

``python -m tests.systemd_player --restarts 30`` measures how many requests a
series of restarts loses (docs/operations.md's figures come from it).
"""

from __future__ import annotations

import argparse
import collections
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from demo.nginx import Nginx
from demo.ports import free_port
from demo.processes import terminate
from demo.run import write_demo_config
from demo.school import SCHOOL
from demo.slapd import Slapd
from soak.proxy import DelayingProxy
from testbed.poll import poll_until
from testbed.stack import XmppStandIn, basic_auth, request

PASSED_FD = 3  # SD_LISTEN_FDS_START
# systemd's default TimeoutStopSec=: past it the daemon is killed.
STOP_TIMEOUT_SECONDS = 90.0
START_TIMEOUT_SECONDS = 60.0
LISTEN_BACKLOG = 4096
# Answers a restart may give: anything else (nginx's 500/502/504, a reset) is a lost request.
GOOD_STATUSES = frozenset({200, 302, 401})

LENIENT = """
[regulation]
max_failures_per_user = 10000
max_failures_per_user_overall = 10000
max_failures_per_address = 100000
"""


class SystemdPlayer:
    """Owns the listening socket; starts, stops and restarts the daemon on it."""

    def __init__(self, workdir: Path, config: Path, socket_path: Path) -> None:
        self.workdir = workdir
        self.config = config
        self.listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listening.bind(str(socket_path))
        self.listening.listen(LISTEN_BACKLOG)
        self.log_path = workdir / "sidecar.log"
        self.notify_path = workdir / "notify.sock"
        self.notifications = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notifications.bind(str(self.notify_path))
        self.process: subprocess.Popen[bytes] | None = None
        self.stop_seconds: list[float] = []
        self.killed = 0
        # Runs in the daemon's process before it starts (a lower descriptor limit, say).
        self.before_exec: Callable[[], None] | None = None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JITSI_AUTH_SIDECAR_")}
        env["NOTIFY_SOCKET"] = str(self.notify_path)
        return env

    def start(self) -> None:
        check = subprocess.run(
            [
                sys.executable,
                "-m",
                "sidecar.cli",
                "check-config",
                "--offline",
                "--quiet",
                "--config",
                str(self.config),
            ],
            capture_output=True,
            env=self._env(),
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        fd = self.listening.fileno()
        before_exec = self.before_exec

        def hand_over_socket() -> None:
            os.dup2(fd, PASSED_FD)
            if before_exec is not None:
                before_exec()

        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "/bin/sh",
                    "-c",
                    # exec keeps the shell's pid: LISTEN_PID names the daemon.
                    'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" -m sidecar.cli serve --config "$1"',
                    sys.executable,
                    str(self.config),
                ],
                pass_fds=(fd, PASSED_FD),
                preexec_fn=hand_over_socket,
                stdout=log,
                stderr=log,
                env=self._env(),
            )
        self._expect(b"READY=1", START_TIMEOUT_SECONDS)

    def _expect(self, message: bytes, seconds: float) -> None:
        self.notifications.settimeout(seconds)
        while True:
            try:
                got, _ = self.notifications.recvfrom(1024)
            except TimeoutError:
                raise AssertionError(f"no {message!r}:\n{self.log()[-3000:]}") from None
            if got == message:
                return

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.killed += 1
            process.kill()
            process.wait()
        self.stop_seconds.append(time.monotonic() - started)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def close(self) -> None:
        terminate(self.process)
        self.process = None
        self.notifications.close()
        self.listening.close()


@dataclass
class Tally:
    """Answers by status (0: no answer at all) and what the failures were."""

    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def failed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status not in GOOD_STATUSES)


class Load:
    """``clients`` threads asking nginx without a pause, each always the same:
    in turn cached Basic room requests of a teacher and of a pupil, the login
    page, and a wrong password (never cached: a search and a bind each)."""

    def __init__(self, nginx: Nginx, clients: int, *, seconds_limit: float = 600.0) -> None:
        self._nginx = nginx
        self._clients = clients
        self._seconds_limit = seconds_limit
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.tally = Tally()
        teacher, pupil = SCHOOL.teachers[0], SCHOOL.pupils[0]
        self._asks: list[tuple[str, dict[str, str]]] = [
            ("/Mathe7b", basic_auth(teacher.uid, teacher.password)),
            ("/Bio7b", basic_auth(pupil.uid, pupil.password)),
            ("/auth/login?next=/Mathe7b", {}),
            ("/Mathe7b", basic_auth(pupil.uid, "not the password")),
        ]

    def start(self) -> None:
        for number in range(self._clients):
            thread = threading.Thread(target=self._ask, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(60)

    def wait_for(self, answers: int) -> None:
        """Until ``answers`` more have come (bounded by the load's time limit)."""
        target = self.tally.total + answers
        poll_until(lambda: self.tally.total >= target, seconds=self._seconds_limit, interval=0.02)

    def _ask(self, number: int) -> None:
        deadline = time.monotonic() + self._seconds_limit
        path, headers = self._asks[number % len(self._asks)]
        while not self._stopping.is_set() and time.monotonic() < deadline:
            connection = http.client.HTTPConnection("127.0.0.1", self._nginx.port, timeout=30)
            try:
                status = request(connection, path, headers).status
            except OSError:
                status = 0
            self.tally.count(status)


@contextmanager
def restartable_stack(
    workdir: Path, ldap_url: str, *, extra: str = ""
) -> Iterator[tuple[SystemdPlayer, Nginx]]:
    """nginx in front of a daemon the player runs on its socket; the daemon is started."""
    port = free_port()
    config = write_demo_config(workdir, port=port, ldap_url=ldap_url, extra=LENIENT + extra)
    socket_path = workdir / "held.sock"
    player = SystemdPlayer(workdir, config, socket_path)
    xmpp = XmppStandIn(workdir)
    nginx_dir = workdir / "nginx"
    nginx_dir.mkdir()
    nginx = Nginx(nginx_dir, port=port, sidecar_socket=socket_path, xmpp_port=xmpp.port)
    try:
        xmpp.start()
        player.start()
        nginx.start()
        yield player, nginx
    finally:
        nginx.stop()
        player.close()
        xmpp.stop()


def restarts_under_load(
    player: SystemdPlayer, nginx: Nginx, *, restarts: int, clients: int, between: int
) -> Tally:
    """``restarts`` restarts in a row, ``between`` answers apart, while ``clients`` ask."""
    load = Load(nginx, clients)
    load.start()
    try:
        load.wait_for(between)
        for _ in range(restarts):
            player.restart()
            load.wait_for(between)
    finally:
        load.stop()
    return load.tally


def prime(nginx: Nginx) -> None:
    """The cached people's first login, before the directory slows down."""
    for person, room in ((SCHOOL.teachers[0], "/Mathe7b"), (SCHOOL.pupils[0], "/Bio7b")):
        connection = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=30)
        request(connection, room, basic_auth(person.uid, person.password))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=30)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--between", type=int, default=2000, help="answers between restarts")
    parser.add_argument("--slow", type=float, default=0.0, help="seconds each LDAP answer is late")
    parser.add_argument("--keep", type=Path, help="an empty directory to keep the logs in")
    parser.add_argument("--keep-cache", action="store_true", help="set cache.basic_state_file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        workdir = args.keep or Path(temporary)
        with Slapd(workdir / "slapd") as slapd:
            proxy = DelayingProxy(slapd.port).start()
            try:
                extra = (
                    f'\n[cache]\nbasic_state_file = "{workdir / "basic_cache"}"\n'
                    if args.keep_cache
                    else ""
                )
                with restartable_stack(workdir, proxy.url, extra=extra) as (player, nginx):
                    prime(nginx)
                    proxy.delay = args.slow
                    tally = restarts_under_load(
                        player,
                        nginx,
                        restarts=args.restarts,
                        clients=args.clients,
                        between=args.between,
                    )
                    errors = nginx.error_log.read_text("utf-8", errors="replace")
            finally:
                proxy.stop()
    stops = sorted(player.stop_seconds)
    print(f"restarts: {args.restarts}, clients: {args.clients}, directory late by {args.slow} s")
    print(f"Basic cache kept across restarts: {args.keep_cache}")
    print(f"answers: {tally.total}, failed: {tally.failed}")
    print("by status:", dict(sorted(tally.statuses.items())))
    print(f"stop took: median {stops[len(stops) // 2]:.2f} s, longest {stops[-1]:.2f} s")
    print(f"killed at TimeoutStopSec: {player.killed}")
    resets = errors.count("Connection reset by peer")
    closed = errors.count("prematurely closed")
    print(f"nginx error log: {resets} resets, {closed} premature closes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
