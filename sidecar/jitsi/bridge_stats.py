"""How busy the videobridge is: conferences and participants, from its ``/colibri/stats``.

Asked at most every few seconds (one request for concurrent askers); when the
bridge does not answer, the figures are unknown (None), never a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from sidecar.single_flight import SingleFlight

log = logging.getLogger(__name__)

ANSWER_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class BridgeFigures:
    conferences: int | None
    participants: int | None

    @property
    def known(self) -> bool:
        return self.conferences is not None and self.participants is not None


UNKNOWN = BridgeFigures(None, None)


def _count(stats: object, name: str) -> int:
    value = stats.get(name) if isinstance(stats, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"no {name} in the bridge's statistics")
    return value


class BridgeStatistics:
    def __init__(
        self,
        url: str,
        *,
        client: aiohttp.ClientSession,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = client
        self._clock = clock
        self._last: tuple[float, BridgeFigures] | None = None
        self._requests: SingleFlight[str, BridgeFigures] = SingleFlight()

    async def figures(self) -> BridgeFigures:
        if self._last is not None and self._clock() - self._last[0] < ANSWER_SECONDS:
            return self._last[1]
        figures = await self._requests.ask_once(self._url, self._ask)
        self._last = (self._clock(), figures)
        return figures

    async def _ask(self) -> BridgeFigures:
        try:
            async with self._client.get(
                self._url,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
            ) as response:
                if response.status != 200:
                    raise ValueError(f"status {response.status}")
                stats = await response.json(content_type=None)
            return BridgeFigures(_count(stats, "conferences"), _count(stats, "participants"))
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.warning("bridge statistics unavailable: %s", error)
            return UNKNOWN
