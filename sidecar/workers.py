"""Several worker processes on one listening socket (``server.workers``).

The parent opens the socket (or takes the one systemd passed), starts the
workers, which all accept on it, says READY=1 to systemd once every worker
serves, and supervises: a worker that dies is started again (one that ends
with code 2, a configuration or state problem, or too many deaths within a
minute stop them all, with a failure for systemd to see); SIGTERM or
SIGINT goes on to every worker, each of which drains as a single process
would, and the parent ends when they have. What the workers must agree on
(bans, logouts, guest links) lives in Redis, which the configuration
requires for more than one worker.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import socket
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from sidecar.config import Settings, UnixAddress
from sidecar.systemd import inherited_socket, notify

log = logging.getLogger(__name__)

# A worker that dies is started again after this pause (it may die at once again),
# unless more than MAX_RESTARTS died within RESTART_WINDOW seconds: then all stop.
RESTART_PAUSE_SECONDS = 1.0
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
# How long the workers may take to start before the parent says READY anyway.
START_SECONDS = 30.0

# Runs one worker on the socket; calls the second argument once it serves.
Worker = Callable[[socket.socket, int, Callable[[], None]], int]


def listening_socket(settings: Settings, backlog: int) -> socket.socket:
    """The configured address, bound and listening, as the single process binds it."""
    listen = settings.server.listen
    if isinstance(listen, UnixAddress):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if listen.path.is_socket():
            listen.path.unlink()  # left by a process that did not stop cleanly
        listener.bind(str(listen.path))
        # Only nginx (the socket's group) may talk to the sidecar.
        if settings.server.socket_group is not None:
            shutil.chown(listen.path, group=settings.server.socket_group)
        os.chmod(listen.path, settings.server.socket_mode)
    else:
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((listen.host, listen.port))
    listener.listen(backlog)
    return listener


def _say_ready(ready_write: int) -> None:
    os.write(ready_write, b".")


class Supervisor:
    def __init__(self, settings: Settings, worker: Worker, *, backlog: int) -> None:
        self._settings = settings
        self._worker = worker
        self._backlog = backlog
        self._children: dict[int, int] = {}  # pid -> worker number
        self._stopping = False
        self._restarts: list[float] = []
        self._start_failure = 0  # the highest exit code of a worker that ended starting

    def run(self) -> int:
        """0 when stopped by a signal; otherwise what made it give up (1 or 2)."""
        # Handlers first: a SIGTERM during the start must reach every worker.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        passed = inherited_socket()
        listener = passed or listening_socket(self._settings, self._backlog)
        ready_read, ready_write = os.pipe()
        for number in range(self._settings.server.workers):
            self._start(number, listener, ready_write)
        code = 0
        if self._all_ready(ready_read):
            notify("READY=1")
            log.info("%d workers serving", len(self._children))
            code = self._supervise(listener)
        elif not self._stopping:
            log.error("the workers did not all start")
            self._stop_all()
            # Code 2 (configuration, state file) is the one systemd should see.
            code = 2 if self._start_failure == 2 else 1
        self._reap()
        for end in (ready_read, ready_write):
            os.close(end)
        listener.close()
        if passed is None and isinstance(self._settings.server.listen, UnixAddress):
            self._settings.server.listen.path.unlink(missing_ok=True)
        log.info("stopped")
        return code

    def _supervise(self, listener: socket.socket) -> int:
        while self._children and not self._stopping:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            number = self._children.pop(pid, -1)
            if number < 0 or self._stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == 2:
                # A problem with the configuration or the state file: starting
                # again would end the same way; systemd should see a failure.
                log.error("worker %d ended with code 2; stopping", number)
                self._stop_all()
                return 2
            if self._too_many_restarts():
                log.error(
                    "workers keep ending (%d in %.0f s); stopping", MAX_RESTARTS, RESTART_WINDOW
                )
                self._stop_all()
                return 1
            log.error("worker %d ended (code %d); starting it again", number, code)
            time.sleep(RESTART_PAUSE_SECONDS)
            if not self._stopping:
                self._start(number, listener, None)
        return 0

    def _too_many_restarts(self) -> bool:
        now = time.monotonic()
        self._restarts = [when for when in self._restarts if now - when < RESTART_WINDOW]
        self._restarts.append(now)
        return len(self._restarts) > MAX_RESTARTS

    def _start(self, number: int, listener: socket.socket, ready_write: int | None) -> None:
        # No signal between the fork and the bookkeeping: a worker the parent
        # does not know of would never be told to stop.
        signals = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        try:
            pid = os.fork()
            if pid == 0:
                self._be_worker(number, listener, ready_write, signals)
            self._children[pid] = number
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)

    def _be_worker(
        self,
        number: int,
        listener: socket.socket,
        ready_write: int | None,
        signals: set[signal.Signals],
    ) -> NoReturn:
        code = 1
        try:
            # Only the parent talks to systemd and decides about stopping.
            os.environ.pop("NOTIFY_SOCKET", None)
            for signum in signals:
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
            ready = (lambda: _say_ready(ready_write)) if ready_write is not None else _nothing
            code = self._worker(listener, number, ready)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)

    def _all_ready(self, ready_read: int) -> bool:
        expected = len(self._children)
        deadline = time.monotonic() + START_SECONDS
        seen = 0
        while seen < expected and not self._stopping:
            if time.monotonic() > deadline or len(self._children) < expected:
                return False
            readable, _, _ = select.select([ready_read], [], [], 0.1)
            if readable:
                seen += len(os.read(ready_read, expected))
            self._reap_nonblocking()
        return seen >= expected and not self._stopping

    def _reap_nonblocking(self) -> None:
        """Workers that ended while starting (they count as not ready)."""
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._children.pop(pid, None)
            self._start_failure = max(self._start_failure, os.waitstatus_to_exitcode(status))

    def _reap(self) -> None:
        while self._children:
            try:
                pid, _ = os.wait()
            except ChildProcessError:
                return
            self._children.pop(pid, None)

    def _stop_all(self) -> None:
        for pid in list(self._children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        notify("STOPPING=1")
        self._stop_all()


def _nothing() -> None:
    """A restarted worker's ready: nobody waits for it."""
