"""The aiohttp application nginx talks to.

``/auth/verify`` answers nginx's ``auth_request`` with 200, 401 or 403 only
(anything else becomes a 500 in nginx), and says where the browser should go
in response headers that the include file reads with ``auth_request_set``.
Pages under ``/auth/page/`` are what nginx shows instead of a room.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import jinja2
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from sidecar.config import Settings
from sidecar.directory import Directory
from sidecar.guard import Allow, Challenge, Guard, Page, Redirect, RoomAccessRequest, Verdict
from sidecar.roles import RoleRules
from sidecar.rooms import NotARoom, parse_room_uri
from sidecar.tokens import RoomTokens

log = logging.getLogger(__name__)

# Response headers the include file reads (auth_request_set $upstream_http_...).
REDIRECT_HEADER = "X-Jitsi-Auth-Redirect"
PAGE_HEADER = "X-Jitsi-Auth-Page"
USER_HEADER = "X-Jitsi-Auth-User"

SETTINGS = web.AppKey("settings", Settings)
GUARD = web.AppKey("guard", Guard)
TEMPLATES = web.AppKey("templates", jinja2.Environment)

PAGE_STATUS = {"challenge": 401, "forbidden": 403, "not-a-room": 404, "unavailable": 503}


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Method, path without query string, status and time.

    Query strings carry ``jwt=`` and headers carry passwords and cookies, so
    neither is ever written.
    """

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms", request.method, request.path, response.status, time * 1000
        )


def _verdict_response(verdict: Verdict) -> web.Response:
    if isinstance(verdict, Allow):
        return web.Response(status=200, headers={USER_HEADER: verdict.user_id})
    if isinstance(verdict, Redirect):
        return web.Response(status=401, headers={REDIRECT_HEADER: verdict.location})
    if isinstance(verdict, Challenge):
        return web.Response(status=401)
    assert isinstance(verdict, Page)
    return web.Response(status=403, headers={PAGE_HEADER: verdict.name})


async def verify(request: web.Request) -> web.Response:
    access = RoomAccessRequest(
        uri=request.headers.get("X-Original-URI", ""),
        authorization=request.headers.get("Authorization"),
    )
    verdict = await request.app[GUARD].decide(access)
    return _verdict_response(verdict)


async def page(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    status = PAGE_STATUS.get(name)
    if status is None:
        raise web.HTTPNotFound(text="Not found")
    settings = request.app[SETTINGS]
    body = (
        request.app[TEMPLATES]
        .get_template(f"{name}.html")
        .render(
            retry_uri=_safe_retry_uri(request.headers.get("X-Original-URI", "/")),
        )
    )
    response = web.Response(status=status, text=body, content_type="text/html")
    if name == "challenge":
        response.headers["WWW-Authenticate"] = (
            f'Basic realm="{settings.login.realm}", charset="UTF-8"'
        )
    elif name == "unavailable":
        response.headers["Retry-After"] = "30"
    response.headers["Cache-Control"] = "no-store"
    return response


def _safe_retry_uri(uri: str) -> str:
    """The room path (never its query, which may hold a token) for a "try again" link."""
    try:
        room = parse_room_uri(uri)
    except NotARoom:
        return "/"
    return room.path


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def make_templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("sidecar", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def _resources(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        directory = Directory(settings.ldap)
        app[GUARD] = Guard(directory, RoleRules(settings.roles), RoomTokens(settings.jitsi))
        yield
        directory.close()

    return resources


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[TEMPLATES] = make_templates()
    app.cleanup_ctx.append(_resources(settings))
    app.router.add_route("*", "/auth/verify", verify)
    app.router.add_get("/auth/page/{name}", page)
    app.router.add_get("/auth/health", health)
    app.router.add_static("/auth/static/", Path(__file__).with_name("static"))
    return app
