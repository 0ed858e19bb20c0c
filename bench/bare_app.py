"""The bare baseline: an aiohttp app whose ``/auth/verify`` always answers 200.

Served the way the sidecar serves itself (``sidecar/web/server.py``): an AppRunner
on a unix socket with the same backlog and header limits, on the same event
loop, but without access log or anything else. nginx reaches it through the
project's include, so that the difference to the sidecar is the sidecar's own
work. Run as ``python -m bench.bare_app SOCKET``; SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiohttp import web

from sidecar.web.server import LISTEN_BACKLOG, MAX_HEADER_BYTES


async def allow(request: web.Request) -> web.Response:
    return web.Response()


async def serve(socket_path: str) -> None:
    app = web.Application()
    app.router.add_get("/auth/verify", allow)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        max_field_size=MAX_HEADER_BYTES,
        max_line_size=MAX_HEADER_BYTES,
    )
    await runner.setup()
    site = web.UnixSite(runner, socket_path, backlog=LISTEN_BACKLOG)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m bench.bare_app SOCKET", file=sys.stderr)
        return 2
    asyncio.run(serve(sys.argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
