"""Which LDAP server to ask first: the configured order, minus the ones that just failed.

A server that did not answer (refused, timed out, or silent after accepting
the connection) would cost every login its whole timeout while it stays
first in ``ldap.urls``. It is moved behind the others instead, and probed in
the background every ``ldap.retry_interval`` seconds until it answers again.
While every server is failing they are all still tried, in configured order:
a cooling server is never refused outright.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# Says whether the server at a URL answers now; must not raise.
Probe = Callable[[str], Awaitable[bool]]


class ServerHealth:
    def __init__(self, urls: tuple[str, ...], *, probe: Probe, retry_interval: float) -> None:
        self._urls = urls
        self._probe = probe
        self._retry_interval = retry_interval
        self._probes: dict[str, asyncio.Task[None]] = {}

    def ordered(self) -> list[str]:
        """The servers to try, in order: answering ones first, as configured."""
        answering = [url for url in self._urls if url not in self._probes]
        return answering + [url for url in self._urls if url in self._probes]

    def failed(self, url: str, reason: str) -> None:
        """``url`` did not answer: ask the others first until a probe finds it back."""
        if url in self._probes:
            return
        log.warning(
            "LDAP server %s failed (%s): asked last, probed every %.0f s",
            url,
            reason,
            self._retry_interval,
        )
        self._probes[url] = asyncio.get_running_loop().create_task(self._probe_until_back(url))

    def answered(self, url: str) -> None:
        """``url`` answered a real request: back in its place at once."""
        task = self._probes.pop(url, None)
        if task is not None:
            task.cancel()
            log.warning("LDAP server %s answers again", url)

    async def _probe_until_back(self, url: str) -> None:
        while True:
            await asyncio.sleep(self._retry_interval)
            if await self._answers(url):
                # Popped here rather than through answered(): a task must not cancel itself.
                self._probes.pop(url, None)
                log.warning("LDAP server %s answers again", url)
                return

    async def _answers(self, url: str) -> bool:
        try:
            return await self._probe(url)
        except Exception:
            # A probe that cannot even be made must not end the probing.
            log.exception("probing LDAP server %s failed", url)
            return False

    def close(self) -> None:
        for task in self._probes.values():
            task.cancel()
        self._probes.clear()
