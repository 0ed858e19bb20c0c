"""bonsai's asyncio connection, made cheap to wait on and safe to give up on.

Waiting: bonsai registers the socket for reading *and writing* while it waits
for an answer. A connected socket is always writable, so the loop called back
at once, over and over, until the answer came: a busy loop of 50 to 130 calls
and more than a millisecond of CPU for every bind, on a core slapd needs too.
Here an answer is waited for by readability. While a connection opens, the
result is also looked at every few milliseconds: bonsai runs STARTTLS in a
thread of its own that no socket event announces.

Whose descriptor: the loop never watches libldap's own descriptor, but a
duplicate of it that the connection owns and closes itself. libldap closes
its descriptor when a connection fails (the server refused, reset or went
away); the number is then free, and the next socket the daemon accepts may
get it. A registration left on that number would keep the loop from ever
polling the new socket (its client waits until nginx gives up), and removing
it later would fail because a transport now owns the number. A duplicate
cannot be closed under the connection's feet, and its registration ends with
the wait that made it.

The watch belongs to the connection, and every socket event looks at each
operation pending on it. Still, one operation at a time per connection: of
three searches sent at once on one connection, bonsai handed over only one
answer (the others never came), so the directory's pool never shares one.

Giving up (bonsai's own timeout, or the login's deadline cancelling the
wait): the pending operation is abandoned (else libldap keeps its socket
open, one more for every probe of a hung server); a connection given up while
it opens is closed, an open one is left to its owner (other operations may be
pending on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any

import bonsai
from bonsai.asyncio import AIOLDAPConnection
from bonsai.ldapconnection import BaseLDAPConnection

# While a connection opens, how often its result is looked at besides socket
# events: with STARTTLS (announced by nothing), and otherwise (a safety net).
STARTTLS_POLL_SECONDS = 0.001
OPEN_POLL_SECONDS = 0.005
# A given-up open is looked at this long at most until it can be abandoned
# (the thread that makes its handle takes microseconds; this is a bound).
GIVEN_UP_OPEN_SECONDS = 10.0


def _identity(fileno: int) -> tuple[int, int]:
    """What a descriptor refers to: a number may be closed and given to another socket."""
    status = os.fstat(fileno)
    return status.st_dev, status.st_ino


class _Watch:
    """The loop's registration for a connection's socket, on a duplicate it owns.

    ``close()`` ends it. Nothing else closes the duplicate, so no other socket
    can ever get its number while it is registered.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fileno: int, look: Any) -> None:
        self._loop = loop
        self.source = (fileno, _identity(fileno))
        self._own = os.dup(fileno)  # not inheritable, as os.dup makes them
        try:
            loop.add_reader(self._own, look)
        except BaseException:
            os.close(self._own)
            raise

    def follows(self, fileno: int) -> bool:
        """Whether this watch still watches what ``fileno`` refers to now."""
        if fileno != self.source[0]:
            return False
        try:
            return _identity(fileno) == self.source[1]
        except OSError:
            return False

    def close(self) -> None:
        # The duplicate is this watch's own: no transport can hold its number.
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._own)
        os.close(self._own)


class _Outcome:
    """An answer or an error, handed over once.

    An error set on the future itself would stay there, and the future in the
    frames of the error's own traceback: the connection, and its socket, would
    be kept until the collector's next full run.
    """

    def __init__(self, result: Any, error: Exception | None) -> None:
        self._result = result
        self._error = error

    def take(self) -> Any:
        error, self._error = self._error, None
        if error is not None:
            try:
                raise error
            finally:
                del error  # this frame is in the traceback: it must not hold the error
        return self._result


class _Wait:
    """One wait for one answer. It refers to its connection, and the connection to
    it only while it is pending: a given-up connection, and its socket, must not
    be kept until the garbage collector runs."""

    def __init__(self, connection: CancellableConnection, msg_id: int, poll: float | None):
        self._connection = connection
        self._loop = connection._loop
        self.msg_id = msg_id
        self._poll = poll  # while opening: look this often, socket events or not
        self.answer: asyncio.Future[_Outcome] = self._loop.create_future()
        self._timer: asyncio.TimerHandle | None = None

    def look(self) -> None:
        if self.answer.done():
            return
        try:
            # The base class's own: non-blocking, None while there is no answer.
            result = BaseLDAPConnection.get_result(self._connection, self.msg_id)
        except Exception as error:
            # Its traceback would hold this frame, and so this wait, its answer
            # and the error itself: a cycle only the collector ends.
            self.fail(error.with_traceback(None))
            return
        if result is not None:
            self.answer.set_result(_Outcome(result, None))

    def fail(self, error: Exception) -> None:
        if not self.answer.done():
            self.answer.set_result(_Outcome(None, error))

    def schedule(self) -> None:
        if self._poll is not None and not self.answer.done():
            self._timer = self._loop.call_later(self._poll, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._connection._look_at_all()
        self.schedule()

    def stop_polling(self) -> None:
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
        self._waits: dict[int, _Wait] = {}
        self._watch: _Watch | None = None
        # An open given up too early to abandon, still looked at (see _give_up).
        self._finishing: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Operations waiting for their answer on this connection."""
        return len(self._waits)

    async def _poll(self, msg_id: int, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - bonsai's signature
        wait = _Wait(self, msg_id, None if self._opened else self._open_poll)
        self._waits[msg_id] = wait
        try:
            self._follow_socket()
            wait.schedule()
            outcome = await asyncio.wait_for(wait.answer, timeout)
            return outcome.take()
        except (asyncio.CancelledError, TimeoutError):
            self._end(wait)
            self._give_up(msg_id, opening=not self._opened)
            raise
        except Exception:
            if not self._opened:
                # A refused bind: the connection is of no use, and the error's
                # frames would keep it (and its socket) until the collector runs.
                self._end(wait)
                self.close()
            raise
        finally:
            self._end(wait)
            self._opened = True

    def _look_at_all(self) -> None:
        """A socket event or a timer: every pending operation looks for its answer."""
        for wait in list(self._waits.values()):
            wait.look()
        self._follow_socket()

    def _follow_socket(self) -> None:
        """Watch the socket libldap uses now, while anything waits; else watch nothing.

        While opening it changes (bonsai's own, then the connection's), and a
        failed connection has none.
        """
        try:
            current = self.fileno() if self._waits else -1
        except (bonsai.LDAPError, ValueError, OSError):
            current = -1
        if self._watch is not None and self._watch.follows(current):
            return
        self._drop_watch()
        if current > -1:
            with contextlib.suppress(OSError):  # closed meanwhile: nothing to watch
                self._watch = _Watch(self._loop, current, self._look_at_all)

    def _drop_watch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()

    def _end(self, wait: _Wait) -> None:
        wait.stop_polling()
        if self._waits.get(wait.msg_id) is wait:
            del self._waits[wait.msg_id]
        if not self._waits:
            self._drop_watch()

    def close(self) -> None:
        # Whatever else waits on this connection has no answer coming.
        for wait in list(self._waits.values()):
            wait.fail(bonsai.ConnectionError("the connection was closed"))
            self._end(wait)
        self._drop_watch()
        with contextlib.suppress(bonsai.LDAPError, ValueError, OSError):
            super().close()

    def _give_up(self, msg_id: int, *, opening: bool) -> None:
        if opening and not self._handle_made():
            # Too early to abandon: see _handle_made. The open goes on unwatched
            # until it can be abandoned, or ends by itself.
            self._finishing = self._loop.create_task(self._give_up_when_made(msg_id))
            return
        # abandon() is what frees a pending open: close() alone leaves its socket.
        with contextlib.suppress(bonsai.LDAPError, ValueError, OSError):
            self.abandon(msg_id)
        # A connection given up while opening is of no use. An open one may
        # carry others' operations: its owner closes it when it thinks it dead.
        if opening:
            self.close()

    def _handle_made(self) -> bool:
        """Whether libldap's handle for this connection exists yet.

        bonsai opens a connection in a thread of its own and takes libldap's
        handle from it only when the open is next looked at; until then the
        handle is NULL, and abandon() hands that NULL to libldap, which crashes
        the whole process (a segfault in ldap_abandon_ext). Meanwhile fileno()
        is one end of bonsai's socket pair, which the thread rings when done;
        once the handle is made, fileno() is libldap's own socket.
        """
        try:
            fileno = self.fileno()
        except (bonsai.LDAPError, ValueError, OSError):
            return False
        try:
            with socket.socket(fileno=os.dup(fileno)) as probe:
                if probe.family != socket.AF_UNIX:
                    return True
                # A socket pair's ends have no address; ldapi:// has a path.
                return bool(probe.getpeername())
        except OSError:
            return False

    async def _give_up_when_made(self, msg_id: int) -> None:
        """A given-up open, looked at until it can be abandoned or has ended."""
        deadline = self._loop.time() + GIVEN_UP_OPEN_SECONDS
        while self._loop.time() < deadline:
            try:
                result = BaseLDAPConnection.get_result(self, msg_id)
            except Exception:
                return  # ended by itself, with an error: nothing is pending any more
            if result is not None:
                self.close()  # opened after all, and nobody wants it
                return
            if self._handle_made():
                self._give_up(msg_id, opening=True)
                return
            await asyncio.sleep(OPEN_POLL_SECONDS)
