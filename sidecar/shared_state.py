"""The Redis that several sidecars share (``[state] redis_url``), and what an
unanswered command means.

Every command gets ``state.timeout`` and no retry: a Redis that does not
answer costs a request half a second at most. Its answer is then None: the
caller falls back to what this process knows itself (bans it counted,
logouts and withdrawals made here), the error is logged once per outage and
counted in ``jitsi_auth_state_errors``, and nobody sees a 500.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sidecar.config import StateSettings
from sidecar.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")


def open_redis(settings: StateSettings) -> Redis | None:
    """A client for ``state.redis_url``, or None when no Redis is configured.

    Connecting is lazy: this never fails, the first command does.
    """
    if not settings.redis_url:
        return None
    secret = settings.redis_password
    password = secret.reveal().decode().strip() if secret is not None else None
    return Redis.from_url(
        settings.redis_url,
        password=password,
        socket_timeout=settings.timeout,
        socket_connect_timeout=settings.timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def digest(text: str) -> str:
    """A key part for ``text`` that names no user, address or session in Redis."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class SharedState:
    """Commands to the shared Redis, each answered or None (see the module's text)."""

    def __init__(self, redis: Redis, *, prefix: str, metrics: Metrics) -> None:
        self.redis = redis
        self._prefix = prefix
        self._metrics = metrics
        self._unreachable = False

    def key(self, kind: str, text: str) -> str:
        return f"{self._prefix}{kind}:{digest(text)}"

    async def run(self, operation: str, command: Awaitable[T]) -> T | None:
        try:
            answer = await command
        except (RedisError, OSError) as error:
            self._metrics.state_errors.labels(operation).inc()
            if not self._unreachable:
                log.error("state: Redis unreachable, going on with this process's own: %s", error)
                self._unreachable = True
            return None
        if self._unreachable:
            log.warning("state: Redis answers again")
            self._unreachable = False
        return answer

    async def mark(self, kind: str, ident: str, until: int) -> None:
        """Remember ``ident`` (an ended session, a withdrawn link) until the Unix time ``until``."""
        await self.run(kind, self.redis.set(self.key(kind, ident), "1", exat=max(1, until)))

    async def marked(self, kind: str, ident: str) -> bool:
        """Whether ``ident`` is marked; False when Redis does not answer (fail open)."""
        return bool(await self.run(kind, self.redis.exists(self.key(kind, ident))))
