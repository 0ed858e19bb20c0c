"""bonsai's asyncio connection, made cheap to wait on and safe to give up on.

Waiting: bonsai registers the socket for reading *and writing* while it waits
for an answer. A connected socket is always writable, so the loop called back
at once, over and over, until the answer came: a busy loop of 50 to 130 calls
and more than a millisecond of CPU for every bind, on a core slapd needs too.
Here an answer is waited for by readability. While a connection opens, the
result is also looked at every few milliseconds: bonsai runs STARTTLS in a
thread of its own that no socket event announces.

Giving up (bonsai's own timeout, or the login's deadline cancelling the
wait): the socket is unregistered, the pending operation abandoned (else
libldap keeps its socket open, one more for every probe of a hung server) and
the connection closed, since its state is unknown after that.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import bonsai
from bonsai.asyncio import AIOLDAPConnection
from bonsai.ldapconnection import BaseLDAPConnection

# While a connection opens, how often its result is looked at besides socket
# events: with STARTTLS (announced by nothing), and otherwise (a safety net).
STARTTLS_POLL_SECONDS = 0.001
OPEN_POLL_SECONDS = 0.005


class _Wait:
    """One wait for one answer. Its callbacks are bound methods that refer to the
    connection but not back to themselves: closures referring to each other would
    keep a given-up connection, and its socket, until the garbage collector runs."""

    def __init__(self, connection: CancellableConnection, msg_id: int, poll: float | None):
        self._connection = connection
        self._loop = connection._loop
        self._msg_id = msg_id
        self._poll = poll  # while opening: look this often, socket events or not
        self.answer: asyncio.Future[Any] = self._loop.create_future()
        self._watched = -1
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._watch()
        self._schedule()

    def _look(self) -> None:
        if self.answer.done():
            return
        try:
            # The base class's own: non-blocking, None while there is no answer.
            result = BaseLDAPConnection.get_result(self._connection, self._msg_id)
        except Exception as error:
            self.answer.set_exception(error)
            return
        if result is not None:
            self.answer.set_result(result)
            return
        self._watch()
        self._schedule()

    def _schedule(self) -> None:
        # One look pending at a time: a socket event may come before the timer.
        if self._timer is not None:
            self._timer.cancel()
        if self._poll is not None:
            self._timer = self._loop.call_later(self._poll, self._look)

    def _watch(self) -> None:
        # While opening, the descriptor changes (bonsai's own, then the
        # connection's): the one to wait on is the current one.
        current = self._connection.fileno()
        if current == self._watched:
            return
        self._unwatch()
        if current > -1:
            self._loop.add_reader(current, self._look)
        self._watched = current

    def _unwatch(self) -> None:
        if self._watched > -1:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._watched)
        self._watched = -1

    def end(self) -> None:
        self._unwatch()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class CancellableConnection(AIOLDAPConnection):
    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(client, loop)  # type: ignore[no-untyped-call]
        self._opened = False
        # STARTTLS runs in bonsai's thread, unannounced; anything else while
        # opening is announced on a socket, and the slower look is a safety net.
        self._open_poll = STARTTLS_POLL_SECONDS if client.tls else OPEN_POLL_SECONDS

    async def _poll(self, msg_id: int, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - bonsai's signature
        wait = _Wait(self, msg_id, None if self._opened else self._open_poll)
        wait.start()
        try:
            return await asyncio.wait_for(wait.answer, timeout)
        except (asyncio.CancelledError, TimeoutError):
            wait.end()
            self._give_up(msg_id)
            raise
        except Exception:
            if not self._opened:
                # A refused bind: the connection is of no use, and the error's
                # frames would keep it (and its socket) until the collector runs.
                with contextlib.suppress(bonsai.LDAPError, ValueError, OSError):
                    self.close()
            raise
        finally:
            wait.end()
            self._opened = True

    def _give_up(self, msg_id: int) -> None:
        with contextlib.suppress(bonsai.LDAPError, ValueError, OSError):
            fileno = self.fileno()
            if fileno > -1:
                self._loop.remove_reader(fileno)
                self._loop.remove_writer(fileno)
        # abandon() is what frees a pending open: close() alone leaves its socket.
        with contextlib.suppress(bonsai.LDAPError, ValueError, OSError):
            self.abandon(msg_id)
        with contextlib.suppress(bonsai.LDAPError, ValueError, OSError):
            self.close()
