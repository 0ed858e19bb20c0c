"""Whether a room is open, from Prosody's ``mod_muc_size``.

``GET <room_size_url>?room=<backend-safe name>&domain=<xmpp domain>[&token=<jwt>]``
answers 200 ``{"participants": N}`` for a room that exists, 404 for one that
does not, and 403 when it wants a valid token for the room
(``enable_roomsize_token_verification``). A room is open when it exists with
somebody in it. Answers are kept for a couple of seconds per room, and
concurrent checks of one room share one request: a class of thirty waiting
pupils costs Prosody one request per room every few seconds.

Anything else (no answer, a 5xx, a 403, garbage) is an error, and
``on_room_size_error`` decides: "wait" keeps pupils waiting, "admit" lets
them in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import aiohttp
from cachetools import TTLCache

from sidecar.config import ClassroomSettings
from sidecar.metrics import Metrics
from sidecar.single_flight import SingleFlight
from sidecar.sliding_counter import SlidingCounter

log = logging.getLogger(__name__)

# How long one answer about a room is believed.
ANSWER_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 2.0
MAX_ROOMS_REMEMBERED = 10_000
# Requests the API gets at most, for rooms not asked about in the last seconds.
MAX_REQUESTS_PER_SECOND = 50
_API = "room-size API"


class RoomSizeError(Exception):
    """The room-size API gave no usable answer."""


class RoomSize:
    def __init__(
        self,
        settings: ClassroomSettings,
        *,
        domain: str,
        client: aiohttp.ClientSession,
        token_for: Callable[[str, str], str] | None,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._url = settings.room_size_url
        self._admit_on_error = settings.on_room_size_error == "admit"
        self._domain = domain
        self._client = client
        self._token_for = token_for
        self._answers: TTLCache[tuple[str, str], bool] = TTLCache(
            MAX_ROOMS_REMEMBERED, ANSWER_SECONDS, timer=clock
        )
        self._requests: SingleFlight[tuple[str, str], bool] = SingleFlight()
        self._requests_lately = SlidingCounter(
            MAX_REQUESTS_PER_SECOND, window=1, ban_time=1, clock=clock
        )

    async def is_open(self, backend_room: str, tenant: str = "") -> bool:
        """Whether ``backend_room`` (of ``tenant``) exists with somebody in it (or the error
        policy's answer)."""
        room = (tenant, backend_room)
        known = self._answers.get(room)
        if known is not None:
            return known
        if self._requests_lately.banned_for(_API) > 0:
            # Somebody asks about more rooms than a school has: they wait, and
            # Prosody is spared (never "admit": that would be for the asking).
            return False
        self._requests_lately.fail(_API)
        answer = await self._requests.run(room, lambda: self._ask(backend_room, tenant))
        self._answers[room] = answer
        return answer

    async def _ask(self, backend_room: str, tenant: str) -> bool:
        try:
            is_open = await self._participants(backend_room, tenant) > 0
        except RoomSizeError as error:
            self._metrics.room_size.labels("error").inc()
            log.warning(
                "room-size API: %s; %s", error, "admitting" if self._admit_on_error else "waiting"
            )
            return self._admit_on_error
        self._metrics.room_size.labels("open" if is_open else "closed").inc()
        return is_open

    async def _participants(self, backend_room: str, tenant: str) -> int:
        # Sent as the web app names the room; aiohttp encodes its "%" once more,
        # and Prosody decodes it back to exactly this name.
        params = {"room": backend_room, "domain": self._domain}
        if tenant:
            params["subdomain"] = tenant
        if self._token_for is not None:
            params["token"] = self._token_for(backend_room, tenant)
        try:
            async with self._client.get(
                self._url,
                params=params,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
            ) as response:
                if response.status == 404:
                    return 0
                if response.status != 200:
                    raise RoomSizeError(f"status {response.status}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise RoomSizeError(type(error).__name__) from None
        participants = body.get("participants") if isinstance(body, dict) else None
        if isinstance(participants, bool) or not isinstance(participants, int):
            raise RoomSizeError("no participant count in the answer")
        return participants
