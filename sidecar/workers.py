"""Several worker processes on one listening socket (``server.workers``).

The parent opens the socket (or takes the one systemd passed), starts the
workers, which all accept on it, says READY=1 to systemd once every worker
serves, and supervises: a worker that dies is started again; SIGTERM or
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
from collections.abc import Callable
from types import FrameType

from sidecar.config import Settings, UnixAddress
from sidecar.systemd import inherited_socket, notify

log = logging.getLogger(__name__)

# A worker that dies is started again after this pause (it may die at once again).
RESTART_PAUSE_SECONDS = 1.0
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

    def run(self) -> int:
        passed = inherited_socket()
        listener = passed or listening_socket(self._settings, self._backlog)
        ready_read, ready_write = os.pipe()
        for number in range(self._settings.server.workers):
            self._start(number, listener, ready_write)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        self._wait_until_ready(ready_read)
        notify("READY=1")
        log.info("%d workers serving", len(self._children))
        while self._children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            number = self._children.pop(pid, -1)
            if number < 0 or self._stopping:
                continue
            log.error("worker %d ended (status %d); starting it again", number, status)
            time.sleep(RESTART_PAUSE_SECONDS)
            if not self._stopping:
                self._start(number, listener, ready_write)
        listener.close()
        if passed is None and isinstance(self._settings.server.listen, UnixAddress):
            self._settings.server.listen.path.unlink(missing_ok=True)
        log.info("stopped")
        return 0

    def _start(self, number: int, listener: socket.socket, ready_write: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                # Only the parent talks to systemd and decides about stopping.
                os.environ.pop("NOTIFY_SOCKET", None)
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, signal.SIG_DFL)
                code = self._worker(listener, number, lambda: _say_ready(ready_write))
            finally:
                os._exit(code)
        self._children[pid] = number

    def _wait_until_ready(self, ready_read: int) -> None:
        expected = len(self._children)
        deadline = time.monotonic() + START_SECONDS
        seen = 0
        while seen < expected and time.monotonic() < deadline and not self._stopping:
            readable, _, _ = select.select([ready_read], [], [], 0.1)
            if readable:
                seen += len(os.read(ready_read, expected))

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        notify("STOPPING=1")
        for pid in list(self._children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
