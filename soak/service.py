"""The sidecar run as systemd runs ``jitsi-auth-sidecar.service`` beside its socket unit.

The harness holds the listening unix socket (the socket unit's part: nginx can
connect whether or not a sidecar runs), and for every start: runs
``check-config --offline --quiet`` as ``ExecStartPre`` does, starts the
daemon with the socket as descriptor 3 (``LISTEN_FDS``/``LISTEN_PID``) under
a fixed descriptor limit, and waits for ``READY=1`` on a ``NOTIFY_SOCKET`` of
its own. A restart starts the new process and waits until it is ready before
the old one gets SIGTERM (``--restart-order=ready-first``), or stops the old
one first as ``systemctl restart`` does (``stop-first``); either way the
socket stays open, so a request that comes meanwhile waits in its backlog.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BACKLOG = 4096  # what the socket unit's Backlog= would be
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 90.0  # systemd's TimeoutStopSec default; then SIGKILL
CHECK_TIMEOUT = 60.0
RESTART_ORDERS = ("ready-first", "stop-first")


class ServiceError(RuntimeError):
    """The daemon did not start: ExecStartPre failed, it exited, or it never said READY=1."""


@dataclass
class Stopped:
    seconds: float
    killed: bool  # did not end within STOP_TIMEOUT after SIGTERM
    stopping_notified: bool  # said STOPPING=1
    returncode: int | None


class Daemon:
    """One sidecar process and its notification socket."""

    def __init__(self, process: subprocess.Popen[bytes], notifications: socket.socket) -> None:
        self.process = process
        self.notifications = notifications

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_for(self, message: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.notifications.settimeout(0.2)
            try:
                if self.notifications.recv(4096).strip() == message:
                    return True
            except TimeoutError:
                if self.process.poll() is not None:
                    return False
        return False

    def stop(self) -> Stopped:
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        notified = self.wait_for(b"STOPPING=1", 5.0)
        killed = False
        try:
            self.process.wait(max(0.0, STOP_TIMEOUT - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            killed = True
            self.process.kill()
            self.process.wait()
        self.notifications.close()
        return Stopped(
            round(time.monotonic() - started, 3), killed, notified, self.process.returncode
        )


@dataclass
class Restart:
    started: float  # time.monotonic()
    check_config_seconds: float
    ready_seconds: float  # from the start of the restart until READY=1
    stopped: Stopped
    ended: float


class Service:
    def __init__(
        self, workdir: Path, config: Path, socket_path: Path, *, nofile: int, log_path: Path
    ) -> None:
        self.workdir = workdir
        self.config = config
        self.socket_path = socket_path
        self.nofile = nofile
        self.log_path = log_path
        self.listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listening.bind(str(socket_path))
        self.listening.listen(BACKLOG)
        self.current: Daemon | None = None
        self._started = 0

    @property
    def pid(self) -> int:
        assert self.current is not None, "the sidecar is not running"
        return self.current.pid

    def _env(self, notify_path: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JITSI_AUTH_SIDECAR_")}
        env["NOTIFY_SOCKET"] = str(notify_path)
        return env

    def check_config(self) -> float:
        """ExecStartPre: the unit's own command line; a failure stops the start."""
        started = time.monotonic()
        checked = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "sidecar.cli", "check-config", "--offline", "--quiet",
             "--config", str(self.config)],
            capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False,
        )  # fmt: skip
        if checked.returncode != 0:
            raise ServiceError(f"ExecStartPre failed: {checked.stdout}{checked.stderr}"[-2000:])
        return time.monotonic() - started

    def _spawn(self) -> Daemon:
        self._started += 1
        notify_path = self.workdir / f"notify.{self._started}.sock"
        notify_path.unlink(missing_ok=True)
        notifications = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notifications.bind(str(notify_path))
        fd = self.listening.fileno()
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "soak.launch", str(fd), str(self.nofile), "--",
                 sys.executable, "-m", "sidecar.cli", "serve", "--config", str(self.config)],
                pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=self._env(notify_path),
            )  # fmt: skip
        daemon = Daemon(process, notifications)
        if not daemon.wait_for(b"READY=1", READY_TIMEOUT):
            daemon.stop()
            tail = self.log_path.read_text("utf-8", errors="replace")[-2000:]
            raise ServiceError(f"the sidecar never said READY=1:\n{tail}")
        return daemon

    def start(self) -> None:
        self.check_config()
        self.current = self._spawn()

    def restart(self, order: str = "ready-first") -> Restart:
        started = time.monotonic()
        old, self.current = self.current, None
        stopped = Stopped(0.0, False, False, None)
        if order == "stop-first" and old is not None:
            stopped = old.stop()
        checked = self.check_config()
        self.current = self._spawn()
        ready = time.monotonic() - started
        if order == "ready-first" and old is not None:
            stopped = old.stop()
        return Restart(started, round(checked, 3), round(ready, 3), stopped, time.monotonic())

    def stop(self) -> Stopped | None:
        daemon, self.current = self.current, None
        return daemon.stop() if daemon is not None else None

    def close(self) -> None:
        self.stop()
        self.listening.close()
        self.socket_path.unlink(missing_ok=True)


def open_descriptors(pid: int) -> int | None:
    """How many descriptors ``pid`` has open (``/proc/<pid>/fd``); None once it has gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def descriptor_limit(pid: int) -> str | None:
    """The process's "Max open files" line from ``/proc/<pid>/limits``: soft, hard."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text("ascii").splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft}/{hard}"
    except OSError:
        return None
    return None


def resident_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text("ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


TCP_STATES = {"01": "established", "06": "time-wait", "08": "close-wait", "0A": "listening"}


def _sockets(pid: int) -> dict[str, str]:
    """Socket inode -> what it is: a TCP peer (port and state) or a unix socket's path."""
    found: dict[str, str] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text("ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rpartition(":")[2], 16)
            state = TCP_STATES.get(fields[3], fields[3])
            found[fields[9]] = f"tcp to port {remote_port}, {state}"
    try:
        lines = Path(f"/proc/{pid}/net/unix").read_text("ascii").splitlines()[1:]
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        path = Path(fields[7]).name if len(fields) > 7 else "no path"
        found[fields[6]] = f"unix ({path})"
    return found


def descriptor_kinds(pid: int) -> dict[str, int]:
    """The process's open descriptors by what they are: sockets by peer, pipes, files."""
    kinds: dict[str, int] = {}
    targets = []
    try:
        listed = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return kinds
    for fd in listed:
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor, for one)
    sockets = _sockets(pid) if any(t.startswith("socket:") for t in targets) else {}
    for target in targets:
        if target.startswith("socket:["):
            kind = sockets.get(target[8:-1], "socket (gone or other)")
        elif target.startswith(("pipe:", "anon_inode:")):
            kind = target.split("[")[0].rstrip(":")
        else:
            kind = "file " + Path(target).name
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items()))
