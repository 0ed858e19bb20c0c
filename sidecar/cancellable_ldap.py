"""bonsai's asyncio connection, made safe to give up on.

bonsai waits for an answer by registering the socket with the event loop.
When a wait is given up (bonsai's own timeout, or the login's deadline
cancelling it), two things went wrong: on a cancellation the reader and
writer stayed registered, and the loop kept calling back on a socket nobody
would read (a core at 100 %); and in both cases the pending operation was
never abandoned, so libldap kept its socket open (one more for every probe
of a hung server). Here a wait that is given up unregisters the socket,
abandons the operation and closes the connection, whose state is unknown
after an abandoned operation.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import bonsai
from bonsai.asyncio import AIOLDAPConnection


class CancellableConnection(AIOLDAPConnection):
    async def _poll(self, msg_id: int, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - bonsai's signature
        try:
            return await super()._poll(msg_id, timeout)  # type: ignore[no-untyped-call]
        except (asyncio.CancelledError, TimeoutError):
            self._give_up(msg_id)
            raise

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
