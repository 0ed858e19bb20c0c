"""The metrics listener: ``GET /metrics`` in Prometheus's text format, on
``server.metrics_listen`` only.

A listener of its own, never the one nginx's include talks to, so that no
request through the meet site can read it.
"""

from __future__ import annotations

import os

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sidecar.config.settings import ListenAddress, UnixAddress
from sidecar.metrics import Metrics

# Whoever may read the socket's directory and is in its group (a scraper's user).
SOCKET_MODE = 0o660


def metrics_app(metrics: Metrics) -> web.Application:
    async def scrape(request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app


async def start_metrics_listener(metrics: Metrics, listen: ListenAddress) -> web.AppRunner:
    """Serve ``metrics`` on ``listen`` until the returned runner is cleaned up."""
    runner = web.AppRunner(metrics_app(metrics), access_log=None)
    await runner.setup()
    site: web.BaseSite
    if isinstance(listen, UnixAddress):
        site = web.UnixSite(runner, str(listen.path))
    else:
        site = web.TCPSite(runner, listen.host, listen.port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    if isinstance(listen, UnixAddress):
        os.chmod(listen.path, SOCKET_MODE)
    return runner
