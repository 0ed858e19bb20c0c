"""bonsai's asyncio connection, made cheaper to wait on and safe to give up on.

Waiting: bonsai registers the socket for reading *and writing* while it waits
for an answer. A connected socket is always writable, so the loop calls back
at once, over and over, until the answer comes: a busy loop of 50 to 130
calls for every operation. Once a connection is open, its answers are waited
for here by readability alone. Opening (connect, STARTTLS, bind) keeps
bonsai's own wait: its state machine moves on only when looked at, partly in
a thread no socket event announces, and a wait that looks less often left
sockets open when given up.

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


class CancellableConnection(AIOLDAPConnection):
    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(client, loop)  # type: ignore[no-untyped-call]
        self._opened = False

    async def _poll(self, msg_id: int, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - bonsai's signature
        try:
            if not self._opened:
                # bonsai's own wait, writability included: see the module's text.
                return await super()._poll(msg_id, timeout)  # type: ignore[no-untyped-call]
            return await self._answer(msg_id, timeout)
        except (asyncio.CancelledError, TimeoutError):
            self._give_up(msg_id)
            raise
        finally:
            self._opened = True

    async def _answer(self, msg_id: int, seconds: float | None) -> Any:
        """The answer to ``msg_id`` on an open connection, woken by readability alone."""
        loop = self._loop
        answer: asyncio.Future[Any] = loop.create_future()
        fileno = self.fileno()

        def look() -> None:
            if answer.done():
                return
            try:
                # The base class's own: non-blocking, None while there is no answer.
                result = BaseLDAPConnection.get_result(self, msg_id)
            except bonsai.LDAPError as error:
                answer.set_exception(error)
                return
            if result is not None:
                answer.set_result(result)

        loop.add_reader(fileno, look)
        try:
            look()  # answered already (sent and read in one go)?
            return await asyncio.wait_for(answer, seconds)
        finally:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(fileno)

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
