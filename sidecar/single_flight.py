"""Concurrent identical lookups share one: the first caller asks, the others wait for its answer.

A class of thirty pupils opening one room, or a browser firing its Basic
credentials with every request, must cost one LDAP bind or one room-size
request, not thirty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._in_flight: dict[K, asyncio.Future[V]] = {}

    async def ask_once(self, key: K, ask: Callable[[], Awaitable[V]]) -> V:
        """``await ask()``, once for all callers that come while it is under way."""
        pending = self._in_flight.get(key)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise
                # The first caller went away mid-way; ask for ourselves.
                return await ask()
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            value = await ask()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            # Waiters see the failure; nobody else needs to retrieve it.
            future.exception()
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._in_flight[key]
