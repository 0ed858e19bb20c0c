"""``jitsi-auth-sidecar``: serve, and the admin commands check-config, test-login, mint."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from aiohttp import web

from sidecar import admin
from sidecar.appkeys import METRICS
from sidecar.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    Settings,
    TcpAddress,
    UnixAddress,
    load_settings,
)
from sidecar.guest_links import StateFileError
from sidecar.logs import configure as configure_logging
from sidecar.memory import settle_after_start
from sidecar.metrics_server import start_metrics_listener
from sidecar.systemd import inherited_socket, notify
from sidecar.web import PathOnlyAccessLogger, create_app
from sidecar.workers import Supervisor, Worker

log = logging.getLogger("sidecar")

MAX_HEADER_BYTES = 65536
# nginx opens a connection per verify; under a burst the default 128 overflows
# and nginx answers 500 for the rest.
LISTEN_BACKLOG = 4096
# How long a stopping daemon lets requests it already took in finish.
SHUTDOWN_GRACE_SECONDS = 5.0
DRAIN_POLL_SECONDS = 0.02


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
    ``listener`` when a supervisor runs several (sidecar.workers)."""
    app = create_app(settings)
    runner = web.AppRunner(
        app,
        access_log_class=PathOnlyAccessLogger,
        handle_signals=False,
        # nginx may hand over request lines longer than aiohttp's 8 KiB default;
        # a 400 from the verify endpoint would become a 500 in nginx.
        max_field_size=MAX_HEADER_BYTES,
        max_line_size=MAX_HEADER_BYTES,
    )
    await runner.setup()
    settle_after_start()
    listen = settings.server.listen
    passed = listener or inherited_socket()
    site: web.BaseSite
    if passed is not None:
        # systemd's socket: it owns address, mode and group, and keeps
        # requests waiting in its backlog while this process restarts.
        site = web.SockSite(runner, passed)
    elif isinstance(listen, UnixAddress):
        site = web.UnixSite(runner, str(listen.path), backlog=LISTEN_BACKLOG)
    else:
        site = web.TCPSite(runner, listen.host, listen.port, backlog=LISTEN_BACKLOG)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise ListenError(
            f"server.listen: cannot listen on {site.name}: {error.strerror}"
        ) from None
    if passed is None and isinstance(listen, UnixAddress):
        # Only nginx (the socket's group) may talk to the sidecar.
        if settings.server.socket_group is not None:
            shutil.chown(listen.path, group=settings.server.socket_group)
        os.chmod(listen.path, settings.server.socket_mode)
    log.info("listening on %s", site.name)
    try:
        metrics_runner = await _metrics_listener(app, settings, worker)
    except ListenError:
        await runner.cleanup()
        raise
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready.set()
    if on_ready is not None:
        on_ready()
    notify("READY=1")
    try:
        await stop.wait()
    finally:
        notify("STOPPING=1")
        # Stop accepting first: what comes now waits in the socket's backlog for
        # the next process. Then let the requests already taken in finish, or
        # closing their connections would answer them with a reset (a 500).
        await site.stop()
        await _drained(runner)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
        log.info("stopped")


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


async def _drained(runner: web.AppRunner) -> None:
    """Wait (a little at most) until no connection is open any more."""
    # Connections the loop accepted in its last round register a moment later.
    await asyncio.sleep(DRAIN_POLL_SECONDS * 5)
    server = runner.server
    for _ in range(int(SHUTDOWN_GRACE_SECONDS / DRAIN_POLL_SECONDS)):
        if server is None or not server.connections:
            return
        await asyncio.sleep(DRAIN_POLL_SECONDS)


def _load(path: Path) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as error:
        # One line that names the key: that is all an admin needs to fix it.
        print(f"jitsi-auth-sidecar: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jitsi-auth-sidecar", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version('jitsi-auth-sidecar')}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_command = commands.add_parser("serve", help="run the daemon")
    serve_command.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    admin.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in admin.COMMANDS:
        return admin.run(args)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if args.command == "serve":
        settings = _load(args.config)
        configure_logging(settings.server.log_format)
        if settings.server.workers > 1:
            try:
                return Supervisor(settings, _worker(settings), backlog=LISTEN_BACKLOG).run()
            except OSError as error:
                print(f"jitsi-auth-sidecar: server.listen: {error.strerror}", file=sys.stderr)
                return 2
        return _serve_here(settings)
    raise AssertionError(args.command)


def _serve_here(settings: Settings, **how: Any) -> int:
    try:
        asyncio.run(serve(settings, **how))
    except (ListenError, StateFileError) as error:
        print(f"jitsi-auth-sidecar: {error}", file=sys.stderr)
        return 2
    return 0


def _worker(settings: Settings) -> Worker:
    def run(listener: socket.socket, number: int, ready: Callable[[], None]) -> int:
        return _serve_here(settings, listener=listener, worker=number, on_ready=ready)

    return run


if __name__ == "__main__":
    raise SystemExit(main())
