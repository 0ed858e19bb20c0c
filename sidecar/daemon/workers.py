"""Several worker processes on one listening socket (``server.workers``).

The parent opens the socket (or takes the one systemd passed), starts the
workers, which all accept on it, says READY=1 to systemd once every worker
serves, and supervises. A worker that dies is started again, for ever,
after a pause that doubles with each death within a minute (from
:data:`RESTART_PAUSE_SECONDS` to :data:`LONGEST_RESTART_PAUSE_SECONDS`): a
crash must never leave the socket without a process behind it, and a worker
that crashes at once again must not spin. The parent gives up, stopping
them all with a failure for systemd to see, only when workers cannot start:
one ends with code 2 (a configuration or state problem),
:data:`MAX_START_FAILURES` in a row end before they serve, or they do not
all serve within :data:`START_SECONDS` of the start. SIGTERM or
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

from sidecar.config.settings import Settings, UnixAddress
from sidecar.daemon.systemd import inherited_socket, notify

log = logging.getLogger(__name__)

# A worker that died after it served is started again after this pause, doubled
# for each other death within RESTART_WINDOW seconds, up to the longest pause.
RESTART_PAUSE_SECONDS = 0.5
LONGEST_RESTART_PAUSE_SECONDS = 30.0
RESTART_WINDOW = 60.0
# Workers that end before they serve, one after the other, before the parent gives up.
MAX_START_FAILURES = 3
# How long the workers may take to start (all of them serving) before the parent gives up.
START_SECONDS = 30.0
# How often the parent looks for workers that ended (and for a SIGTERM) while it waits.
POLL_SECONDS = 0.2


def restart_pause(recent_deaths: int, *, first: float, longest: float) -> float:
    """The pause before a worker is started again, the ``recent_deaths``-th death lately."""
    return min(longest, first * (1 << max(0, min(recent_deaths - 1, 30))))


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
    # One short write: it reaches the pipe whole, whatever the other workers write.
    os.write(ready_write, f"{os.getpid()}\n".encode())


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        worker: Worker,
        *,
        backlog: int,
        first_pause: float = RESTART_PAUSE_SECONDS,
        longest_pause: float = LONGEST_RESTART_PAUSE_SECONDS,
    ) -> None:
        self._settings = settings
        self._worker = worker
        self._backlog = backlog
        self._first_pause = first_pause
        self._longest_pause = longest_pause
        self._children: dict[int, int] = {}  # pid -> worker number
        self._serving: set[int] = set()  # pids that said they serve
        self._unread = b""  # the start of a pid not read whole yet
        self._due: dict[int, float] = {}  # worker number -> when to start it again
        self._stopping = False
        self._deaths: list[float] = []
        self._start_failures = 0  # workers that ended before serving, one after the other

    def supervise(self) -> int:
        """0 when stopped by a signal; otherwise what made it give up (1 or 2)."""
        # Handlers first: a SIGTERM during the start must reach every worker.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        passed = inherited_socket()
        listener = passed or listening_socket(self._settings, self._backlog)
        ready_read, ready_write = os.pipe()
        for number in range(self._settings.server.workers):
            self._start(number, listener, ready_write)
        code = self._supervise(listener, ready_read, ready_write)
        if code:
            self._stop_all()
        self._reap()
        for end in (ready_read, ready_write):
            os.close(end)
        listener.close()
        if passed is None and isinstance(self._settings.server.listen, UnixAddress):
            self._settings.server.listen.path.unlink(missing_ok=True)
        log.info("stopped")
        return code

    def _supervise(self, listener: socket.socket, ready_read: int, ready_write: int) -> int:
        """Until a signal (0) or until it gives up (the code to end with)."""
        workers = self._settings.server.workers
        starting_until: float | None = time.monotonic() + START_SECONDS
        while not self._stopping:
            if starting_until is not None:
                if len(self._serving) >= workers:
                    starting_until = None
                    notify("READY=1")
                    log.info("%d workers serving", workers)
                elif time.monotonic() > starting_until:
                    log.error("the workers did not all start within %.0f s", START_SECONDS)
                    return 1
            wait = POLL_SECONDS
            if self._due:
                wait = max(0.0, min(wait, min(self._due.values()) - time.monotonic()))
            readable, _, _ = select.select([ready_read], [], [], wait)
            if readable:
                self._read_ready(ready_read)
            code = self._reap_ended()
            if code is not None:
                return code
            now = time.monotonic()
            for number, when in list(self._due.items()):
                if when <= now and not self._stopping:
                    del self._due[number]
                    self._start(number, listener, ready_write)
        return 0

    def _read_ready(self, ready_read: int) -> None:
        lines = (self._unread + os.read(ready_read, 4096)).split(b"\n")
        self._unread = lines.pop()
        for line in lines:
            pid = int(line)
            if pid in self._children:
                if self._deaths:
                    log.info("worker %d serves again", self._children[pid])
                self._serving.add(pid)
                self._start_failures = 0

    def _reap_ended(self) -> int | None:
        """Start again the workers that ended; the code to give up with, if it is time to."""
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid == 0:
                return None
            number = self._children.pop(pid, -1)
            served = pid in self._serving
            self._serving.discard(pid)
            if number < 0 or self._stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == 2:
                # A problem with the configuration or the state file: starting
                # again would end the same way; systemd should see a failure.
                log.error("worker %d ended with code 2; stopping", number)
                return 2
            if not served:
                self._start_failures += 1
                if self._start_failures >= MAX_START_FAILURES:
                    log.error(
                        "worker %d ended before it served (code %d), %d times in a row; stopping",
                        number,
                        code,
                        self._start_failures,
                    )
                    return 1
            pause = self._pause()
            log.error("worker %d ended (code %d); starting it again in %.1f s", number, code, pause)
            self._due[number] = time.monotonic() + pause
        return None

    def _pause(self) -> float:
        now = time.monotonic()
        self._deaths = [when for when in self._deaths if now - when < RESTART_WINDOW]
        self._deaths.append(now)
        return restart_pause(
            len(self._deaths), first=self._first_pause, longest=self._longest_pause
        )

    def _start(self, number: int, listener: socket.socket, ready_write: int) -> None:
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
        ready_write: int,
        signals: set[signal.Signals],
    ) -> NoReturn:
        code = 1
        try:
            # Only the parent talks to systemd and decides about stopping.
            os.environ.pop("NOTIFY_SOCKET", None)
            for signum in signals:
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
            code = self._worker(listener, number, lambda: _say_ready(ready_write))
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)

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
