"""The sidecar's own pages: login, logout, and what nginx shows instead of a room."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiohttp import web

from sidecar.config.settings import LOGO_TYPES, in_language
from sidecar.credentials import check_credentials, parse_basic_authorization
from sidecar.refusals import Banned, LoginRefused, UnacceptableCredentials, minutes_to_wait
from sidecar.rooms import NotARoom, parse_room_uri, room_named, safe_next
from sidecar.sessions import Session
from sidecar.web.app_keys import (
    AUTHENTICATOR,
    CSRF_TOKENS,
    DECISION_LOG,
    METRICS,
    REGULATOR,
    RENDERED,
    SESSIONS,
    SETTINGS,
    TEMPLATES,
    WAITING,
)
from sidecar.web.csrf import FIELD as CSRF_FIELD
from sidecar.web.i18n import Translator, choose_language
from sidecar.web.visitors import visit_of

log = logging.getLogger(__name__)

# Status of each page nginx may show instead of a room (/auth/page/<name>).
PAGE_STATUS = {
    "challenge": 401,
    "forbidden": 403,
    "not-a-room": 404,
    "banned": 429,
    "unavailable": 503,
    "error": 500,
    "waiting": 200,
    "wrong-room": 403,
    "guest-invalid": 403,
}
# Pages after which somebody may need to ask a person: they show [site] help_text.
HELP_PAGES = frozenset(
    {"challenge", "forbidden", "banned", "unavailable", "error", "not-a-room", "guest-invalid"}
)


def _tenants(request: web.Request) -> frozenset[str]:
    return request.app[SETTINGS].jitsi.tenant_set


def translator(request: web.Request) -> Translator:
    settings = request.app[SETTINGS]
    return Translator(
        choose_language(request.headers.get("Accept-Language"), settings.login.default_language),
        settings.site.address,
    )


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    body = _rendered(request, translator(request), template, **context)
    return web.Response(status=status, text=body, content_type="text/html")


def _rendered(request: web.Request, t: Translator, template: str, **context: Any) -> str:
    settings = request.app[SETTINGS]
    return (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            t=t,
            help_text=in_language(settings.site.help_text, t.language),
            school_name=settings.login.school_name,
            has_logo=settings.login.logo_file is not None,
            **context,
        )
    )


def message(
    request: web.Request,
    name: str,
    *,
    text: str | None = None,
    link: str | None = None,
    link_text: str | None = None,
    logout_link: bool = False,
) -> web.Response:
    """Page ``name``: its words, a link onwards, and always one to the start page.

    Rendered once for each thing it shows (its language, words and links): the
    Basic challenge follows every wrong password, the same page for the same room.
    """
    t = translator(request)
    text = text if text is not None else t(f"{name}.text")
    shown = (t.language, name, text, link, link_text, logout_link)
    rendered = request.app[RENDERED]
    body = rendered.get(shown)
    if body is None:
        body = _rendered(
            request,
            t,
            "message.html",
            name=name,
            text=text,
            link=link,
            link_text=link_text,
            logout_link=logout_link,
            with_help=name in HELP_PAGES,
        )
        rendered[shown] = body
    return web.Response(status=PAGE_STATUS.get(name, 200), text=body, content_type="text/html")


def _banned_page(request: web.Request, minutes: int) -> web.Response:
    """429: "try again in N minutes"."""
    t = translator(request)
    text = t("banned.text_one") if minutes <= 1 else t("banned.text", minutes=minutes)
    response = message(request, "banned", text=text)
    response.headers["Retry-After"] = str(minutes * 60)
    return response


async def named_page(
    request: web.Request, name: str, *, retry: str, ban_minutes: int = 1
) -> web.Response:
    """A page shown instead of a room, or instead of a login: the one place each is made.

    ``retry`` is where "try again" leads; ``ban_minutes`` is for the banned page.
    """
    t = translator(request)
    if name == "banned":
        return _banned_page(request, ban_minutes)
    if name == "unavailable":
        response = message(request, name, link=retry, link_text=t("retry"))
        response.headers["Retry-After"] = "30"
        return response
    if name == "challenge":
        response = message(request, name, link=retry, link_text=t("retry"))
        realm = request.app[SETTINGS].login.realm
        response.headers["WWW-Authenticate"] = f'Basic realm="{realm}", charset="UTF-8"'
        return response
    if name == "not-a-room":
        return message(request, name, link="/auth/", link_text=t("start"))
    if name == "waiting":
        return _waiting_page(request, retry)
    if name == "wrong-room":
        return await _wrong_room_page(request)
    return message(request, name)


async def _wrong_room_page(request: web.Request) -> web.Response:
    """A guest on another room's address: the page names the room of their invitation."""
    t = translator(request)
    guest = await visit_of(request).guest()
    if guest is None:
        return message(request, "wrong-room", text=t("wrong-room.text_unknown"))
    return guest_room_message(request, "wrong-room", guest)


def guest_room_message(request: web.Request, name: str, session: Session) -> web.Response:
    """Page ``name``, naming the one room a guest's invitation is for, with a link there."""
    t = translator(request)
    try:
        path = room_named(session.room).path
    except NotARoom:
        path = "/"
    text = t("wrong-room.text", room=session.room)
    return message(
        request, name, text=text, link=path, link_text=t("wrong-room.go"), logout_link=True
    )


def _waiting_page(request: web.Request, room_path: str) -> web.Response:
    """The pupil's page while the room is closed, at the room's own address: it checks
    again by itself (a refresh, no JavaScript), and the next check after the
    room opened leads in with a fresh token."""
    refresh, set_cookie = request.app[WAITING].next_check(request.cookies, room_path)
    try:
        asked = parse_room_uri(request.headers.get("X-Original-URI", ""), _tenants(request))
        # The refresh names its address: without one, Chromium treats it on an
        # address with a fragment (Jitsi's "Rejoin") as a same-page jump, never asking.
        room, again = asked.room, asked.location_without_token()
    except NotARoom:
        room, again = None, room_path
    response = render(
        request, "waiting.html", refresh=refresh, room=room, room_path=room_path, again=again
    )
    if set_cookie is not None:
        response.headers.add("Set-Cookie", set_cookie)
    return response


def _room_retry_path(request: web.Request) -> str:
    """The room path (never its query, which may hold a token) for a "try again" link."""
    try:
        return parse_room_uri(request.headers.get("X-Original-URI", ""), _tenants(request)).path
    except NotARoom:
        return "/"


async def _ban_minutes(request: web.Request) -> int:
    """How long the asker is banned, worked out again for this page request."""
    address = request.headers.get("X-Real-IP", "")
    username = ""
    authorization = request.headers.get("Authorization")
    if authorization:
        with contextlib.suppress(UnacceptableCredentials):
            username = parse_basic_authorization(authorization).username
    return minutes_to_wait(await request.app[REGULATOR].banned_for(username, address))


async def page(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in PAGE_STATUS:
        raise web.HTTPNotFound(text="Not found")
    # No cookie is touched here: anyone can link to these pages, and a GET
    # must never log anybody out. A session whose role is gone was already
    # ended on the server when verify said "forbidden".
    return await named_page(
        request,
        name,
        retry=_room_retry_path(request),
        ban_minutes=await _ban_minutes(request) if name == "banned" else 1,
    )


# -- login ---------------------------------------------------------------------


def _login_form(
    request: web.Request,
    *,
    next_location: str,
    status: int = 200,
    error: str | None = None,
    username: str = "",
) -> web.Response:
    tokens = request.app[CSRF_TOKENS]
    csrf_token, set_cookie = tokens.token_for(request.cookies.get(tokens.cookie_name))
    try:
        room = parse_room_uri(next_location, _tenants(request)).room
    except NotARoom:
        room = None
    response = render(
        request,
        "login.html",
        status=status,
        csrf_token=csrf_token,
        next=next_location,
        room=room,
        error=error,
        username=username,
    )
    if set_cookie is not None:
        response.headers.add("Set-Cookie", set_cookie)
    return response


def _form_login_enabled(request: web.Request) -> None:
    if "form" not in request.app[SETTINGS].login.methods or request.app[SESSIONS] is None:
        raise web.HTTPNotFound(text="Not found")


async def login_form(request: web.Request) -> web.StreamResponse:
    _form_login_enabled(request)
    next_location = safe_next(request.query.get("next"), _tenants(request))
    if await visit_of(request).cookie_session() is not None:
        # Logged in already (a guest too: guests never see the login form; the
        # pages they see have a logout link for a shared computer).
        raise web.HTTPFound(next_location)
    return _login_form(request, next_location=next_location)


async def read_form(request: web.Request) -> Any:
    """The posted form; a body that is not a readable form is a 400, not a 500."""
    try:
        return await request.post()
    except (ValueError, LookupError, UnicodeDecodeError, AssertionError):
        log.info("unreadable form posted to %s", request.path)
        raise web.HTTPBadRequest(text="Bad request") from None


def _login_line(
    request: web.Request, outcome: str, user: str, *, role: str = "-", reason: str = "-"
) -> None:
    """The login form's decision: one log line, one count."""
    request.app[METRICS].logins.labels(outcome).inc()
    address = request.headers.get("X-Real-IP", "") or "-"
    request.app[DECISION_LOG].write(
        "login", outcome=outcome, user=user, role=role, reason=reason, address=address
    )


async def login(request: web.Request) -> web.StreamResponse:
    _form_login_enabled(request)
    t = translator(request)
    form = await read_form(request)
    next_location = safe_next(form_field(form, "next"), _tenants(request))
    tokens = request.app[CSRF_TOKENS]
    username = form_field(form, "username") or ""
    if not tokens.valid(request.cookies.get(tokens.cookie_name), form_field(form, CSRF_FIELD)):
        # No name: what was typed was never checked (a password in the name field?).
        _login_line(request, "refused", "-", reason="CSRF token missing or wrong")
        return _login_form(
            request, next_location=next_location, status=403, error=t("login.expired")
        )
    try:
        credentials = check_credentials(username, form_field(form, "password") or "")
    except UnacceptableCredentials as unacceptable:
        _login_line(request, "refused", "-", reason=unacceptable.reason)
        return _login_form(
            request,
            next_location=next_location,
            status=401,
            error=t("login.missing"),
            username=username[:256],
        )
    address = request.headers.get("X-Real-IP", "")
    try:
        admission = await request.app[AUTHENTICATOR].admit(credentials, address, cached=False)
    except LoginRefused as refusal:
        _login_line(request, "refused", username, reason=refusal.reason)
        if refusal.page is None:
            return _login_form(
                request,
                next_location=next_location,
                status=401,
                error=t("login.invalid"),
                username=username,
            )
        minutes = minutes_to_wait(refusal.seconds) if isinstance(refusal, Banned) else 1
        return await named_page(request, refusal.page, retry=next_location, ban_minutes=minutes)
    sessions = request.app[SESSIONS]
    assert sessions is not None
    visit_of(request).send_cookie(sessions.new(admission.person, admission.rule.name))
    _login_line(request, "ok", admission.person.user_id, role=admission.rule.name)
    raise web.HTTPFound(next_location)


def form_field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


# -- logout --------------------------------------------------------------------


async def logout_form(request: web.Request) -> web.Response:
    """A button, not a logout: a GET (a link, a prefetch) must never end a session."""
    tokens = request.app[CSRF_TOKENS]
    csrf_token, set_cookie = tokens.token_for(request.cookies.get(tokens.cookie_name))
    session = await visit_of(request).cookie_session()
    if session is None:
        # Nobody to log out: said plainly, no question asked.
        t = translator(request)
        text = t("logged_out.nobody")
        return message(request, "logged_out", text=text, link="/auth/", link_text=t("start"))
    response = render(
        request,
        "logout.html",
        csrf_token=csrf_token,
        user_name=session.display_name if session else None,
        error=None,
    )
    if set_cookie is not None:
        response.headers.add("Set-Cookie", set_cookie)
    return response


async def logout(request: web.Request) -> web.Response:
    t = translator(request)
    form = await read_form(request)
    tokens = request.app[CSRF_TOKENS]
    if not tokens.valid(request.cookies.get(tokens.cookie_name), form_field(form, CSRF_FIELD)):
        log.info("logout refused: CSRF token missing or wrong")
        csrf_token, set_cookie = tokens.token_for(request.cookies.get(tokens.cookie_name))
        response = render(
            request,
            "logout.html",
            status=403,
            csrf_token=csrf_token,
            user_name=None,
            error=t("logout.expired"),
        )
        if set_cookie is not None:
            response.headers.add("Set-Cookie", set_cookie)
        return response
    saved = True
    sessions = request.app[SESSIONS]
    visit = visit_of(request)
    session = await visit.cookie_session()
    if sessions is not None and session is not None:
        saved = await sessions.log_out(session)
        log.info("%r logged out%s", session.user_id, "" if saved else " (not saved)")
    # Not saved: this browser is logged out all the same (the cookie goes), and
    # the page says that a restart could bring the session back elsewhere.
    name = "logged_out" if saved else "logged_out_unsaved"
    response = message(request, name, link="/auth/", link_text=t("start"))
    if not saved:
        response.set_status(503)
    visit.clear_cookie()
    return response


async def logo(request: web.Request) -> web.FileResponse:
    logo_file = request.app[SETTINGS].login.logo_file
    if logo_file is None:
        raise web.HTTPNotFound(text="Not found")
    return web.FileResponse(
        logo_file, headers={"Content-Type": LOGO_TYPES[logo_file.suffix.lower()]}
    )
