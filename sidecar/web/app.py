"""The aiohttp application nginx talks to.

``/auth/verify`` answers nginx's ``auth_request`` with 200, 401 or 403 only
(anything else becomes a 500 in nginx), and says where the browser should go
in response headers that the include file reads with ``auth_request_set``.
Pages under ``/auth/`` are the sidecar's own: login, logout, and what nginx
shows instead of a room.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import jinja2
from aiohttp import web
from cachetools import LRUCache

from sidecar.authentication import Authenticator
from sidecar.config.settings import Settings
from sidecar.cookies import CookiePolicy
from sidecar.credential_cache import CredentialCache
from sidecar.daemon.descriptors import AcceptFailures
from sidecar.guard import (
    LOGIN_PATH,
    Allow,
    Challenge,
    DecisionRecord,
    Guard,
    Page,
    Redirect,
    RoomAccessRequest,
    Verdict,
)
from sidecar.guest_links import GuestLinks
from sidecar.jitsi.bridge_stats import BridgeStatistics
from sidecar.jitsi.public_keys import PublicKeys
from sidecar.jitsi.room_budget import RoomBudget
from sidecar.jitsi.room_size import RoomSize
from sidecar.jitsi.tokens import RoomTokens
from sidecar.ldap.directory import Directory
from sidecar.metrics import Metrics
from sidecar.regulation import Regulator
from sidecar.roles import RoleRules
from sidecar.sessions import SessionCookies
from sidecar.shared_state import SharedState, close_idle_connections, open_redis
from sidecar.single_flight import SingleFlight
from sidecar.visits import Visits
from sidecar.web import guest_pages, pages, room_state, start
from sidecar.web.app_keys import (
    AUTHENTICATOR,
    BRIDGE,
    CSRF_TOKENS,
    DECISION_LOG,
    GUARD,
    GUEST_LIMIT,
    GUEST_LINKS,
    LINK_LIMIT,
    METRICS,
    REGULATOR,
    RENDERED,
    ROLES,
    ROOM_SIZE,
    SESSIONS,
    SETTINGS,
    TEMPLATES,
    TOKENS,
    VISITS,
    WAITING,
)
from sidecar.web.csrf import CsrfTokens
from sidecar.web.logs import VERIFY_PATH, DecisionLog
from sidecar.web.logs import PathOnlyAccessLogger as PathOnlyAccessLogger  # what the server uses
from sidecar.web.visitors import visit_of, visits
from sidecar.web.waiting import WaitingPace

log = logging.getLogger(__name__)

# Response headers the include file reads (auth_request_set $upstream_http_...).
REDIRECT_HEADER = "X-Jitsi-Auth-Redirect"
PAGE_HEADER = "X-Jitsi-Auth-Page"
USER_HEADER = "X-Jitsi-Auth-User"

MAX_FORM_BYTES = 16 * 1024
# Message pages kept as rendered (a few KB each): every language, page and room link in use.
RENDERED_PAGES = 256
# How long one readiness answer is believed (load balancers poll every second or so).
READINESS_SECONDS = 2.0
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")
# The directory, for a stopping daemon to bring its deadlines forward (sidecar.web.server).
DIRECTORY: web.AppKey[Directory] = web.AppKey("directory")
# Failed accepts (out of descriptors), for the liveness check (sidecar.daemon.descriptors).
ACCEPT_FAILURES: web.AppKey[AcceptFailures] = web.AppKey("accept_failures")

# The sidecar's pages load nothing from anywhere else and cannot be framed; their
# scripts are files of their own (static/), never inline.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
        "img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _verdict_response(verdict: Verdict) -> web.Response:
    """The answer nginx reads; a renewed session's cookie is added by the visits middleware."""
    if isinstance(verdict, Allow):
        return web.Response(status=200, headers={USER_HEADER: verdict.user_id})
    if isinstance(verdict, Redirect):
        return web.Response(status=401, headers={REDIRECT_HEADER: verdict.location})
    if isinstance(verdict, Challenge):
        return web.Response(status=401)
    assert isinstance(verdict, Page)
    return web.Response(status=403, headers={PAGE_HEADER: verdict.name})


def _outcome(verdict: Verdict, decision: DecisionRecord) -> str:
    if isinstance(verdict, Allow):
        return "allowed"
    if isinstance(verdict, Redirect):
        if decision.minted:
            return "token"
        return "login" if verdict.location.startswith(LOGIN_PATH) else "redirect"
    if isinstance(verdict, Challenge):
        return "challenge"
    return verdict.name


async def verify(request: web.Request) -> web.Response:
    started = time.monotonic()
    access = RoomAccessRequest(
        uri=request.headers.get("X-Original-URI", ""),
        visit=visit_of(request),
        method=request.headers.get("X-Original-Method", "GET"),
        authorization=request.headers.get("Authorization"),
        client_address=request.headers.get("X-Real-IP", ""),
    )
    decision = DecisionRecord()
    try:
        verdict: Verdict = await request.app[GUARD].decide(access, decision)
        response = _verdict_response(verdict)
        outcome = _outcome(verdict, decision)
    except Exception:
        # nginx turns anything but 200/401/403 into its own 500 page.
        log.exception("verify failed")
        response = web.Response(status=403, headers={PAGE_HEADER: "error"})
        outcome = "error"
    request.app[METRICS].decisions.labels(outcome, decision.method, decision.role).inc()
    request.app[DECISION_LOG].write(
        "decision",
        outcome=outcome,
        user=decision.user,
        role=decision.role,
        room=decision.room,
        method=decision.method,
        reason=decision.reason,
        ms=round((time.monotonic() - started) * 1000, 1),
        address=access.client_address or "-",
    )
    return response


def _public_key_handler(keys: PublicKeys) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def public_key(request: web.Request) -> web.Response:
        pem = keys.pem(request.match_info["name"])
        if pem is None:
            raise web.HTTPNotFound(text="Not found")
        return web.Response(body=pem, content_type="application/x-pem-file")

    return public_key


async def health(request: web.Request) -> web.Response:
    """The process answers and takes connections in (liveness).

    A daemon out of descriptors cannot take the probe's connection in at
    all (the probe times out) or, when a descriptor came free for it, says
    so here for a few seconds after the last refused connection.
    """
    if request.app[ACCEPT_FAILURES].failing():
        return web.Response(status=503, text="failing: out of file descriptors\n")
    return web.Response(text="ok\n")


async def ready(request: web.Request) -> web.Response:
    """The directory answers too (readiness): 503 while no LDAP server does."""
    if await request.app[READINESS].ready():
        return web.json_response({"ldap": "ok"})
    return web.json_response({"ldap": "unreachable"}, status=503)


class Readiness:
    """Whether LDAP answers, asked at most every few seconds however often it is polled."""

    def __init__(self, directory: Directory, *, clock: Callable[[], float] = time.monotonic):
        self._directory = directory
        self._clock = clock
        self._last: tuple[float, bool] | None = None
        self._checks: SingleFlight[str, bool] = SingleFlight()

    async def ready(self) -> bool:
        if self._last is not None and self._clock() - self._last[0] < READINESS_SECONDS:
            return self._last[1]
        answer = await self._checks.ask_once("ldap", self._reachable)
        self._last = (self._clock(), answer)
        return answer

    async def _reachable(self) -> bool:
        try:
            # Under the directory's deadline: a stopping daemon brings it forward.
            async with self._directory.deadlines.within():
                return await self._directory.reachable()
        except TimeoutError:
            return False


@web.middleware
async def page_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path == VERIFY_PATH:
        # Answers for nginx alone (which never passes them on), and verify
        # catches its own errors: no page headers to add.
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exception:
        _add_page_headers(exception)
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        response = pages.message(request, "error")
    _add_page_headers(response)
    return response


def _add_page_headers(response: web.StreamResponse) -> None:
    response.headers.setdefault("Cache-Control", "no-store")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def make_templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("sidecar.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def _resources(
    settings: Settings, policy: CookiePolicy, worker: int | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        metrics = app[METRICS]
        redis = open_redis(settings.state)
        shared = (
            SharedState(redis, prefix=settings.state.key_prefix, metrics=metrics)
            if redis is not None
            else None
        )
        closing_idle = (
            asyncio.create_task(close_idle_connections(redis)) if redis is not None else None
        )
        directory = Directory(settings.ldap, metrics=metrics)
        regulator = Regulator(settings.regulation, shared=shared, metrics=metrics)
        roles = RoleRules(settings.roles)
        credential_cache = CredentialCache(
            settings.cache,
            keys=settings.sessions.keys,
            state_file=_per_worker(settings.cache.basic_state_file, worker),
        )
        credential_cache.load()
        authenticator = Authenticator(
            directory, credential_cache, regulator, roles, metrics=metrics
        )
        tokens = RoomTokens(settings.jitsi)
        guest_links = GuestLinks(settings.guests, shared=shared) if settings.guests.keys else None
        client = aiohttp.ClientSession()
        room_size = (
            RoomSize(
                settings.classroom,
                domain=settings.xmpp_domain,
                client=client,
                token_for=tokens.room_check_token if settings.classroom.room_size_token else None,
                metrics=metrics,
                budget=RoomBudget(shared),
            )
            if settings.classroom.wait_for_teacher
            else None
        )
        sessions = (
            SessionCookies(settings.sessions, policy=policy, shared=shared)
            if settings.sessions.keys
            else None
        )
        # Per site where Redis is shared (see sidecar.site_limits), else per process.
        for key, kind in ((GUEST_LIMIT, "guest-names"), (LINK_LIMIT, "guest-links-made")):
            app[key] = guest_pages.limit(kind, settings.guests.max_per_address, shared)
        app[REGULATOR] = regulator
        app[AUTHENTICATOR] = authenticator
        app[SESSIONS] = sessions
        app[GUEST_LINKS] = guest_links
        app[ROLES] = roles
        app[TOKENS] = tokens
        app[ROOM_SIZE] = room_size
        app[READINESS] = Readiness(directory)
        app[DIRECTORY] = directory
        app[BRIDGE] = (
            BridgeStatistics(settings.classroom.bridge_stats_url, client=client)
            if settings.classroom.bridge_stats_url
            else None
        )
        app[VISITS] = Visits(
            sessions=sessions, directory=directory, roles=roles, methods=settings.login.methods
        )
        app[GUARD] = Guard(
            authenticator=authenticator,
            roles=roles,
            tokens=tokens,
            sessions=sessions,
            methods=settings.login.methods,
            room_size=room_size,
            guest_links=guest_links,
            tenants=settings.jitsi.tenant_set,
            metrics=metrics,
        )
        yield
        credential_cache.save()
        app[DECISION_LOG].flush()
        directory.close()
        await client.close()
        if closing_idle is not None:
            closing_idle.cancel()
        if redis is not None:
            await redis.aclose()

    return resources


def _per_worker(path: Path | None, worker: int | None) -> Path | None:
    """Each worker keeps its own file (they would overwrite each other's)."""
    if path is None or worker is None:
        return path
    return path.with_name(f"{path.name}.{worker}")


def create_app(settings: Settings, *, worker: int | None = None) -> web.Application:
    app = web.Application(middlewares=[page_headers, visits], client_max_size=MAX_FORM_BYTES)
    policy = CookiePolicy(secure=urlsplit(settings.server.public_url).scheme == "https")
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[DECISION_LOG] = DecisionLog(settings.server.log_format)
    app[TEMPLATES] = make_templates()
    app[RENDERED] = LRUCache(RENDERED_PAGES)
    app[CSRF_TOKENS] = CsrfTokens(policy)
    app[WAITING] = WaitingPace(policy)
    app[ACCEPT_FAILURES] = AcceptFailures()
    app.cleanup_ctx.append(_resources(settings, policy, worker))
    app.router.add_route("*", VERIFY_PATH, verify)
    # Any method: nginx fetches these with the method of the room request.
    app.router.add_route("*", "/auth/page/{name}", pages.page)
    app.router.add_get("/auth/login", pages.login_form)
    app.router.add_post("/auth/login", pages.login)
    app.router.add_get("/auth/logout", pages.logout_form)
    app.router.add_post("/auth/logout", pages.logout)
    app.router.add_get("/auth/logo", pages.logo)
    app.router.add_get("/auth/health", health)
    app.router.add_get("/auth/healthz", health)
    app.router.add_get("/auth/readyz", ready)
    app.router.add_get("/auth/asap/{name}", _public_key_handler(PublicKeys(settings)))
    app.router.add_get("/auth/", start.start_page)
    app.router.add_get("/auth/statistics", start.statistics)
    app.router.add_get(room_state.PATH, room_state.room_state)
    app.router.add_get("/auth/guest/{value}", guest_pages.guest_page)
    app.router.add_post("/auth/guest/{value}", guest_pages.guest_enter)
    app.router.add_post("/auth/guest-links", guest_pages.create_link)
    app.router.add_get("/auth/guest-links/withdraw", guest_pages.withdraw_form)
    app.router.add_post("/auth/guest-links/withdraw", guest_pages.withdraw_link)
    app.router.add_static("/auth/static/", Path(__file__).with_name("static"))
    return app
