"""File descriptors: as many as the system allows, and a listener that copes
when there are none left.

Every connection from nginx is a descriptor, and so is every LDAP, Redis
and Prosody connection. systemd's default soft limit (1024) is a small
fraction of the hard one; the daemon raises the soft limit to the hard limit
at start.

When every descriptor is in use, ``accept()`` fails with EMFILE. asyncio
then pauses the listener for a second, but goes on calling ``accept()`` for
the rest of its batch (up to the listen backlog, 4096 here), reporting each
failure with a traceback: thousands of log records a second. The
:class:`PacedListener` ends the batch at the first such failure, so the
loop's own pause is all that happens, and :class:`AcceptFailures` keeps the
count and the time for the health check and a log line at most once in a
while.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import socket
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# What asyncio treats as "out of resources" when accept() fails (it pauses then).
RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# What the loop reports such a failure as (asyncio's selector_events).
ACCEPT_FAILURE_MESSAGE = "socket.accept() out of system resource"
# One log line about failing accepts per this many seconds, however many failed.
LOG_INTERVAL_SECONDS = 30.0
# The health check reports a failing accept for this long after the last one.
UNHEALTHY_SECONDS = 10.0


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the (soft, hard) now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as error:
        log.warning("cannot raise the descriptor limit from %d to %d: %s", soft, hard, error)
        return soft, hard
    log.info("descriptor limit raised from %d to %d", soft, hard)
    return hard, hard


def open_descriptors() -> int | None:
    """How many descriptors this process has open (None where /proc cannot tell)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


class AcceptFailures:
    """When accepting connections last failed for want of descriptors, and how often."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.count = 0
        self.last: float | None = None
        self._logged_at: float | None = None
        self._unlogged = 0

    def record(self, error: OSError) -> None:
        now = self._clock()
        self.count += 1
        self.last = now
        self._unlogged += 1
        if self._logged_at is None or now - self._logged_at >= LOG_INTERVAL_SECONDS:
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            log.error(
                "cannot accept connections: %s (%d times since the last report; "
                "%s descriptors open, limit %d); retrying every second",
                error.strerror or error,
                self._unlogged,
                open_descriptors() or "?",
                soft,
            )
            self._logged_at = now
            self._unlogged = 0

    def failing(self) -> bool:
        """Whether an accept failed within the last UNHEALTHY_SECONDS."""
        return self.last is not None and self._clock() - self.last < UNHEALTHY_SECONDS


class PacedListener(socket.socket):
    """A listening socket whose accept() reports running out of descriptors once
    per pause instead of once per waiting connection."""

    failures: AcceptFailures
    _resting: bool
    _stopped: bool

    @classmethod
    def wrap(cls, listener: socket.socket, failures: AcceptFailures) -> PacedListener:
        """The same listening socket (the descriptor moves over to the result)."""
        paced = cls(listener.family, listener.type, listener.proto, fileno=listener.detach())
        paced.failures = failures
        paced._resting = False
        paced._stopped = False
        return paced

    def stop_accepting(self) -> None:
        """Accept nothing more; the listen queue stays as it is, for the next process.

        Not by closing the asyncio server: a connection accepted in the same
        round would then fail to register with it and be dropped unanswered.
        """
        self._stopped = True
        asyncio.get_running_loop().remove_reader(self.fileno())

    def accept(self) -> tuple[socket.socket, Any]:
        if self._stopped:
            # asyncio's retry after running out of descriptors added the reader again.
            asyncio.get_running_loop().remove_reader(self.fileno())
            raise BlockingIOError(errno.EAGAIN, "no longer accepting")
        if self._resting:
            # asyncio ends its batch here, as it does when the queue is empty;
            # its pause (a second) has begun with the first failure.
            raise BlockingIOError(errno.EAGAIN, "resting after running out of descriptors")
        try:
            return super().accept()
        except OSError as error:
            if error.errno not in RESOURCE_ERRORS:
                raise
            self.failures.record(error)
            self._resting = True
            asyncio.get_running_loop().call_soon(self._rest_over)
            raise

    def _rest_over(self) -> None:
        self._resting = False


def quiet_accept_failures(loop: asyncio.AbstractEventLoop) -> None:
    """Leave the report of a failed accept to :class:`AcceptFailures` (one line at most
    every LOG_INTERVAL_SECONDS) instead of the loop's traceback for each one."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == ACCEPT_FAILURE_MESSAGE:
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
