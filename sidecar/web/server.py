"""The daemon's HTTP server: the app on its socket (its own, systemd's or a
supervisor's), the metrics listener, and a bounded stop that answers every
request already taken in."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable

from aiohttp import web

from sidecar.config.settings import ListenAddress, Settings, TcpAddress, UnixAddress
from sidecar.daemon.descriptors import (
    PacedListener,
    quiet_accept_failures,
    raise_descriptor_limit,
)
from sidecar.daemon.memory import return_free_memory, settle_after_start
from sidecar.daemon.systemd import inherited_socket, notify
from sidecar.daemon.workers import listening_socket
from sidecar.web.app import ACCEPT_FAILURES, DIRECTORY, PathOnlyAccessLogger, create_app
from sidecar.web.app_keys import METRICS
from sidecar.web.draining import drain
from sidecar.web.metrics_app import start_metrics_listener

log = logging.getLogger("sidecar")

MAX_HEADER_BYTES = 65536
# An idle connection from nginx is closed after this long: longer than the include's
# upstream keeps one (keepalive_timeout 60s), so that nginx closes it first and
# never sends a check on a connection the sidecar is closing (aiohttp's own
# default is an hour).
IDLE_CONNECTION_SECONDS = 75.0
# nginx opens a connection per verify beyond the ones it keeps; under a burst the
# default 128 overflows and nginx answers 500 for the rest.
LISTEN_BACKLOG = 4096
# A stop is bounded, so that requests waiting in the listen queue meanwhile
# (systemd's socket keeps them for the next process) still get their answer
# within nginx's proxy_read_timeout (15 s): stopping, the next start (about two
# seconds here) and their own directory work must fit into it.
STOP_SECONDS = 5.0
# The directory work of requests in hand ends this soon after the stop begins
# (sidecar.deadlines): a slow directory must not hold the stop up.
STOP_DIRECTORY_SECONDS = 3.0


def runner_for(app: web.Application) -> web.AppRunner:
    """How the app is served to nginx."""
    return web.AppRunner(
        app,
        access_log_class=PathOnlyAccessLogger,
        handle_signals=False,
        # nginx may hand over request lines longer than aiohttp's 8 KiB default;
        # a 400 from the verify endpoint would become a 500 in nginx.
        max_field_size=MAX_HEADER_BYTES,
        max_line_size=MAX_HEADER_BYTES,
        # What the drain (in serve) left busy is cut at once: the stop is bounded.
        shutdown_timeout=0.1,
        keepalive_timeout=IDLE_CONNECTION_SECONDS,
    )


class ListenError(RuntimeError):
    """The configured address cannot be listened on (one line for the admin)."""


async def serve(
    settings: Settings,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    listener: socket.socket | None = None,
    worker: int | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); as worker ``worker`` on
    ``listener`` when a supervisor runs several (sidecar.daemon.workers)."""
    raise_descriptor_limit()
    loop = asyncio.get_running_loop()
    quiet_accept_failures(loop)
    app = create_app(settings, worker=worker)
    runner = runner_for(app)
    await runner.setup()
    settle_after_start()
    listen = settings.server.listen
    # systemd's socket, when it passed one: it owns address, mode and group,
    # and keeps requests waiting in its backlog while this process restarts.
    inherited = None if listener is not None else inherited_socket()
    passed = listener or inherited
    own = passed is None
    try:
        if passed is None:
            passed = listening_socket(settings, LISTEN_BACKLOG)
    except OSError as error:
        await runner.cleanup()
        raise ListenError(
            f"server.listen: cannot listen on {_spelled(listen)}: {error.strerror}"
        ) from None
    # The backlog is given again: asyncio calls listen() with it on this socket
    # (aiohttp's default, 128, would shrink systemd's queue).
    paced = PacedListener.wrap(passed, app[ACCEPT_FAILURES])
    site = web.SockSite(runner, paced, backlog=LISTEN_BACKLOG)
    await site.start()
    log.info(
        "listening on %s%s", _spelled(listen), " (the socket systemd passed)" if inherited else ""
    )
    try:
        metrics_runner = await _metrics_listener(app, settings, worker)
    except ListenError:
        await runner.cleanup()
        raise
    stop = stop or asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready.set()
    if on_ready is not None:
        on_ready()
    notify("READY=1")
    trimming = asyncio.create_task(return_free_memory())
    try:
        await stop.wait()
    finally:
        trimming.cancel()
        notify("STOPPING=1")
        # Stop accepting first: what comes now waits in the socket's backlog for
        # the next process. Then answer every request already taken in (closing
        # a connection before would answer it with a reset: a 500 in nginx),
        # with the directory's deadlines brought forward so that this is quick.
        paced.stop_accepting()
        app[DIRECTORY].deadlines.hurry(STOP_DIRECTORY_SECONDS)
        await drain(runner.server, seconds=STOP_SECONDS)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
        if own and isinstance(listen, UnixAddress):
            listen.path.unlink(missing_ok=True)
        log.info("stopped")


def _spelled(listen: ListenAddress) -> str:
    """An address as server.listen spells it."""
    if isinstance(listen, UnixAddress):
        return f"unix:{listen.path}"
    return f"{listen.host}:{listen.port}"


async def _metrics_listener(
    app: web.Application, settings: Settings, worker: int | None
) -> web.AppRunner | None:
    listen = settings.server.metrics_listen
    if listen is None:
        return None
    if worker is not None:
        # Each worker counts for itself: the next port, or the path with its number.
        listen = (
            UnixAddress(listen.path.with_name(f"{listen.path.name}.{worker}"))
            if isinstance(listen, UnixAddress)
            else TcpAddress(listen.host, listen.port + worker)
        )
    try:
        metrics_runner = await start_metrics_listener(app[METRICS], listen)
    except OSError as error:
        raise ListenError(
            f"server.metrics_listen: cannot listen on {listen}: {error.strerror}"
        ) from None
    log.info("metrics on %s", listen)
    return metrics_runner
