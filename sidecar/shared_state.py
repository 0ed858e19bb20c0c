"""The Redis that several sidecars share (``[state] redis_url``), and what an
unanswered command means.

Every command gets ``state.timeout``. A command that gets no answer
answers None: the caller goes on with what this process knows itself (bans
it counted, logouts and withdrawals made here), and nobody sees a 500.

A pooled connection that Redis closed (a restart of Redis, a killed client)
is found by its first command, which fails at once: that command is sent
once more on a new connection, so that after a restart every process
shares bans again with its first command, not after one failure per pooled
connection. A timeout is never sent again (the command may have been
carried out), except while connecting: a hung Redis may cost one request
twice the timeout. After a timeout Redis is not asked at all for
:data:`PAUSE_SECONDS`, so that a hung Redis costs one request the timeout,
not every request; after a refused connection (Redis not running) for
:data:`REFUSED_PAUSE_SECONDS` only, since asking costs no wait.

Every answer is checked against the shape its command has (:func:`done`,
:func:`integers`, :func:`optional_text`, ...), here and nowhere else: an
answer of another shape (a key of the wrong type, a number that is no
number or a huge one, text that is no UTF-8) is an outage like no answer,
never a 500.

Marks that could not be written (a logout, a withdrawn link) are written
once Redis answers again. Each kind of failure is logged
when it starts and when it ends, and counted in ``jitsi_auth_state_errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sidecar.config.settings import StateSettings
from sidecar.metrics import Metrics

if TYPE_CHECKING:
    # The redis library is loaded only where a Redis is configured: it costs a
    # single-node daemon 8 MB of memory for nothing.
    from redis.asyncio import Redis
    from redis.asyncio.client import Pipeline
    from redis.commands.core import AsyncScript

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long Redis is left alone after it did not answer in time.
PAUSE_SECONDS = 5.0
# ... and after it refused the connection (quick to find out again, but not for every request).
REFUSED_PAUSE_SECONDS = 1.0
# A failure that took this share of the timeout was a wait for an answer, not a refusal.
SLOW_FAILURE_SHARE = 0.8
# Connections to Redis at once; more requests wait (state.timeout at most) for one.
MAX_CONNECTIONS = 64
# Pooled connections not in use are closed this often: a burst (requests piling
# up behind a Redis restart or a slow directory) opens up to MAX_CONNECTIONS,
# and without this they would stay open, idle, until the daemon stops.
IDLE_CONNECTIONS_SECONDS = 15.0
# Marks kept for writing later, at most (the oldest are dropped first).
MAX_UNWRITTEN_MARKS = 10_000


# The longest text (a directory entry, a guest link) and integer the sidecar writes to Redis.
MAX_TEXT = 64 * 1024
MAX_DIGITS = 20


class WrongAnswer(Exception):
    """Redis answered with something the sidecar never writes there."""


def done(answer: object) -> bool:
    """A write: whatever it answered, it was carried out."""
    return True


def integer(answer: object) -> int:
    """A number Redis counted or the sidecar wrote: at most 20 digits."""
    if isinstance(answer, int):  # bool too: EXPIRE answers True or False
        value = int(answer)
    elif isinstance(answer, bytes | str) and 0 < len(answer) <= MAX_DIGITS + 1:
        text = answer.decode("ascii", "replace") if isinstance(answer, bytes) else answer
        if not text.removeprefix("-").isdecimal() or not text.isascii():
            raise WrongAnswer(f"not a number: {text[:40]!r}")
        value = int(text)
    else:
        raise WrongAnswer(f"not a number: {type(answer).__name__} {str(answer)[:40]!r}")
    if abs(value) >= 10**MAX_DIGITS:
        raise WrongAnswer("a number too large")
    return value


def optional_integer(answer: object) -> int | None:
    return None if answer is None else integer(answer)


def optional_text(answer: object) -> str | None:
    """Text the sidecar wrote (UTF-8, at most :data:`MAX_TEXT` bytes), or None: no such key."""
    if answer is None:
        return None
    if not isinstance(answer, bytes) or len(answer) > MAX_TEXT:
        raise WrongAnswer(f"not text: {type(answer).__name__} of {len(str(answer))}")
    try:
        return answer.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise WrongAnswer("text that is no UTF-8") from None


def texts(answer: object) -> list[str]:
    """The members of a set."""
    if not isinstance(answer, list):
        raise WrongAnswer(f"not a list: {type(answer).__name__}")
    found = [optional_text(item) for item in answer]
    return [item for item in found if item is not None]


def optional_score(answer: object) -> float | None:
    """A sorted set member's score (ZSCORE), or None: no such member."""
    if answer is None:
        return None
    if isinstance(answer, bool) or not isinstance(answer, int | float):
        raise WrongAnswer(f"not a score: {type(answer).__name__}")
    return float(answer)


def shaped(expected: Sequence[Callable[[object], Any]]) -> Callable[[object], list[Any]]:
    """The answers of a pipeline, one check per command, in the order they were queued."""

    def check(answer: object) -> list[Any]:
        if not isinstance(answer, list) or len(answer) != len(expected):
            raise WrongAnswer(f"not {len(expected)} answers")
        return [each(item) for each, item in zip(expected, answer, strict=True)]

    return check


def optional_texts(count: int) -> Callable[[object], list[str | None]]:
    """The answers of an MGET of ``count`` keys."""

    def check(answer: object) -> list[str | None]:
        if not isinstance(answer, list) or len(answer) != count:
            raise WrongAnswer(f"not {count} answers")
        return [optional_text(item) for item in answer]

    return check


def open_redis(settings: StateSettings) -> Redis | None:
    """A client for ``state.redis_url``, or None when no Redis is configured.

    Connecting is lazy: this never fails, the first command does.
    """
    if not settings.redis_url:
        return None
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as ConnectionLost

    secret = settings.redis_password
    password = secret.reveal().decode().strip() if secret is not None else None
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        password=password,
        max_connections=MAX_CONNECTIONS,
        timeout=settings.timeout,
        socket_timeout=settings.timeout,
        socket_connect_timeout=settings.timeout,
        # Once more on a fresh connection after a connection error (a stale pooled
        # connection), never after a timeout.
        retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionLost,)),
        health_check_interval=0,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections


async def close_idle_connections(redis: Redis, seconds: float = IDLE_CONNECTIONS_SECONDS) -> None:
    """Until cancelled: every ``seconds``, close the pooled connections that no
    command is using. The next command that needs one opens it again (on a unix
    socket or a LAN, a fraction of a millisecond)."""
    from redis.exceptions import RedisError

    while True:
        await asyncio.sleep(seconds)
        # A connection that fails to close is closed already, as far as the pool goes.
        with contextlib.suppress(RedisError, OSError):
            await redis.connection_pool.disconnect(inuse_connections=False)


def digest(text: str) -> str:
    """A key part for ``text`` that does not show the user, address or session it names."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class SharedState:
    """Commands to the shared Redis, each answered or None (see the module's text).

    The only door to Redis: its callers say which commands to send
    (:meth:`command`, :meth:`pipeline`, :meth:`evaluate`) and never hold the
    client, so every command they send is bounded and checked here.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._paused_until = 0.0
        timeout = redis.connection_pool.connection_kwargs.get("socket_timeout") or 0.05
        self._slow_failure_seconds = SLOW_FAILURE_SHARE * float(timeout)
        self._failing: set[str] = set()  # operations whose last try failed (logged once)
        self._unwritten: dict[tuple[str, str], int] = {}  # (kind, id) -> until
        from redis import exceptions

        # Not answering in time (paused long after), not reachable (paused briefly),
        # and answering with a refusal (not paused).
        self._timeouts = (exceptions.TimeoutError, TimeoutError)
        self._unreachable = (exceptions.ConnectionError, exceptions.TimeoutError, OSError)
        self._refused = exceptions.RedisError

    def key(self, kind: str, text: str) -> str:
        return f"{self._prefix}{kind}:{digest(text)}"

    async def command(
        self,
        operation: str,
        build: Callable[[Redis], Awaitable[Any]],
        expect: Callable[[Any], T],
    ) -> T | None:
        """The answer to the one command ``build`` makes, checked by ``expect``;
        None when there is none to use (``build`` is not called while Redis is paused)."""
        if self._paused(operation):
            return None
        return await self._ask(operation, build(self._redis), expect)

    async def pipeline(
        self,
        operation: str,
        queue: Callable[[Pipeline], object],
        expect: Callable[[list[Any]], T],
        *,
        transaction: bool = False,
    ) -> T | None:
        """The commands ``queue`` puts on one pipeline, sent as one round trip (as
        one transaction with ``transaction``); their answers, checked by ``expect``."""
        if self._paused(operation):
            return None
        pipe = self._redis.pipeline(transaction=transaction)
        queue(pipe)
        return await self._ask(operation, pipe.execute(), expect)

    def script(self, source: str) -> AsyncScript:
        """A Lua script for :meth:`evaluate` (sent by its digest, its text only once)."""
        return self._redis.register_script(source)

    async def evaluate(
        self,
        operation: str,
        script: AsyncScript,
        keys: list[str],
        arguments: list[Any],
        expect: Callable[[Any], T],
    ) -> T | None:
        """``script``'s answer for ``keys`` and ``arguments``, checked by ``expect``."""
        if self._paused(operation):
            return None
        return await self._ask(operation, script(keys=keys, args=arguments), expect)

    def _paused(self, operation: str) -> bool:
        """Whether Redis is left alone now; a command not sent counts as an error."""
        if self._clock() < self._paused_until:
            self._metrics.state_errors.labels(operation).inc()
            return True
        return False

    async def _ask(
        self, operation: str, command: Awaitable[Any], expect: Callable[[Any], T]
    ) -> T | None:
        """``command``'s answer, checked by ``expect``; None when there is none to use."""
        started = time.monotonic()
        try:
            answer = await command
        except self._unreachable as error:
            # A timeout while connecting comes as a connection error: told apart by
            # the time it took, not by its type.
            waited = time.monotonic() - started >= self._slow_failure_seconds
            timed_out = waited or isinstance(error, self._timeouts)
            self._paused_until = self._clock() + (
                PAUSE_SECONDS if timed_out else REFUSED_PAUSE_SECONDS
            )
            self._failed(operation, f"Redis unreachable: {error}")
            return None
        except self._refused as error:
            # Answered, but refused (read-only, out of memory, ...): not paused.
            self._failed(operation, f"Redis refused: {error}")
            return None
        try:
            checked = expect(answer)
        except WrongAnswer as wrong:
            # Not paused: Redis answers, and each key is checked again when next read.
            self._failed(operation, f"Redis answered with {wrong}")
            return None
        if operation in self._failing:
            self._failing.discard(operation)
            log.warning("state: Redis answers again (%s)", operation)
        if self._unwritten:
            await self._write_unwritten()
        return checked

    def _failed(self, operation: str, problem: str) -> None:
        self._metrics.state_errors.labels(operation).inc()
        if operation not in self._failing:
            self._failing.add(operation)
            log.error("state: %s (%s); going on with this process's own", problem, operation)

    async def mark(self, kind: str, ident: str, until: int) -> None:
        """Remember ``ident`` (an ended session, a withdrawn link) until the Unix time ``until``;
        later, should Redis not answer now."""
        written = await self.command(kind, self._set_mark(kind, ident, until), done)
        if written is None:
            if len(self._unwritten) >= MAX_UNWRITTEN_MARKS:
                del self._unwritten[next(iter(self._unwritten))]
            self._unwritten[(kind, ident)] = until

    def _set_mark(self, kind: str, ident: str, until: int) -> Callable[[Redis], Awaitable[object]]:
        milliseconds = max(1, int((until - self._wall_clock()) * 1000))
        key = self.key(kind, ident)
        return lambda redis: redis.set(key, str(until), px=milliseconds)

    async def _write_unwritten(self) -> None:
        marks, self._unwritten = self._unwritten, {}
        now = self._wall_clock()
        pipe = self._redis.pipeline(transaction=False)
        for (kind, ident), until in marks.items():
            if until > now:
                pipe.set(self.key(kind, ident), str(until), px=int((until - now) * 1000))
        try:
            await pipe.execute()
        except (self._refused, OSError):
            self._unwritten = {**marks, **self._unwritten}

    async def marked(self, kind: str, ident: str) -> int | None:
        """Until when ``ident`` is marked, or None: not marked, or Redis did not answer."""
        key = self.key(kind, ident)
        return await self.command(kind, lambda redis: redis.get(key), optional_integer)
