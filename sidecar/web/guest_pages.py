"""Guests: the page a guest link opens, and the teacher's forms that create and withdraw links.

A guest enters a name and gets a guest session (the same sealed cookie as
everybody, role "guest", bound to the link's room); from there they wait
like a pupil and enter with a participant token whose name says "(Gast)" or
"(guest)". Guests never see the login form and never cause an LDAP request.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web

from sidecar.guest_links import PATH_PREFIX, GuestLink, GuestLinks, InvalidLink, NotSaved
from sidecar.names import NameRefused, guest_name, with_suffix
from sidecar.refusals import minutes_to_wait
from sidecar.regulation import place_of
from sidecar.rooms import NotARoom, room_named, start_page_location
from sidecar.shared_state import SharedState
from sidecar.site_limits import SiteLimit
from sidecar.web.app_keys import (
    CSRF_TOKENS,
    GUEST_LIMIT,
    GUEST_LINKS,
    LINK_LIMIT,
    SESSIONS,
    SETTINGS,
)
from sidecar.web.csrf import FIELD as CSRF_FIELD
from sidecar.web.guest_list import CREATED_ANCHOR, DEFAULT_DAYS, until_text
from sidecar.web.pages import form_field, message, named_page, read_form, render, translator
from sidecar.web.visitors import Visitor, visit_of, visitor

log = logging.getLogger(__name__)

LIMIT_WINDOW_SECONDS = 3600


def _links(request: web.Request) -> GuestLinks:
    links = request.app[GUEST_LINKS]
    if links is None:
        raise web.HTTPNotFound(text="Not found")
    return links


async def _limited(request: web.Request, limit: SiteLimit, key: str) -> web.Response | None:
    """The banned page when ``key`` did this too often lately; otherwise this one counts."""
    wait = await limit.wait_for(key)
    if wait > 0:
        log.info("guest action by %s refused: too many", key)
        return await named_page(request, "banned", retry="/", ban_minutes=minutes_to_wait(wait))
    return None


def _invalid(request: web.Request, problem: str) -> web.Response:
    t = translator(request)
    return message(request, "guest-invalid", text=t(f"guest.{problem}"))


def _guest_form(
    request: web.Request, link: GuestLink, *, status: int = 200, error: str | None = None
) -> web.Response:
    tokens = request.app[CSRF_TOKENS]
    csrf_token, set_cookie = tokens.token_for(request.cookies.get(tokens.cookie_name))
    response = render(
        request,
        "guest.html",
        status=status,
        link=link,
        until=until_text(translator(request), link.expires_at),
        csrf_token=csrf_token,
        error=error,
        action=request.path,
    )
    if set_cookie is not None:
        response.headers.add("Set-Cookie", set_cookie)
    return response


async def guest_page(request: web.Request) -> web.Response:
    try:
        link = await _links(request).open(request.match_info["value"])
    except InvalidLink as invalid:
        return _invalid(request, invalid.problem)
    return _guest_form(request, link)


async def guest_enter(request: web.Request) -> web.StreamResponse:
    links = _links(request)
    form = await read_form(request)
    try:
        link = await links.open(request.match_info["value"])
    except InvalidLink as invalid:
        return _invalid(request, invalid.problem)
    t = translator(request)
    tokens = request.app[CSRF_TOKENS]
    if not tokens.valid(request.cookies.get(tokens.cookie_name), form_field(form, CSRF_FIELD)):
        return _guest_form(request, link, status=403, error=t("login.expired"))
    sessions = request.app[SESSIONS]
    assert sessions is not None  # guest links need sessions (config)
    current = await visit_of(request).cookie_session()
    if current is not None and not current.is_guest:
        # Entering would replace her own session: she logs out first, knowingly.
        text = t("guest.logged_in", name=current.display_name)
        return message(
            request, "logged-in", text=text, link="/auth/logout", link_text=t("start.logout")
        )
    place = place_of(request.headers.get("X-Real-IP", ""))
    limited = await _limited(request, request.app[GUEST_LIMIT], place)
    if limited is not None:
        return limited
    try:
        name = guest_name(form_field(form, "name") or "")
    except NameRefused as refused:
        log.info("guest name refused: %s", refused.reason)
        return _guest_form(request, link, status=400, error=t("guest.name_wrong"))
    session = sessions.new_guest(
        # The suffix whole at the end, whatever a display cuts: never pushed out.
        display_name=with_suffix(name, t("guest.suffix")),
        room=link.room,
        link_id=link.link_id,
        link_expires_at=link.expires_at,
        lifetime=request.app[SETTINGS].guests.session_lifetime,
    )
    log.info("guest %r entered by link %s for %r", session.user_id, link.link_id, link.room)
    visit_of(request).send_cookie(session)
    return web.Response(status=302, headers={"Location": link.room_request.path})


# -- the teacher's side ------------------------------------------------------------


async def _teacher_form(request: web.Request) -> tuple[Any, Visitor]:
    """The posted form of a teacher (CSRF checked), and who she is."""
    _links(request)
    form = await read_form(request)
    tokens = request.app[CSRF_TOKENS]
    if not tokens.valid(request.cookies.get(tokens.cookie_name), form_field(form, CSRF_FIELD)):
        raise web.HTTPForbidden(text="The form had expired. Please go back and try again.")
    who = await visitor(request)
    if who is None or not who.is_teacher:
        raise web.HTTPForbidden(text="Only teachers manage guest links.")
    return form, who


async def create_link(request: web.Request) -> web.StreamResponse:
    form, who = await _teacher_form(request)
    # Per teacher: a school's teachers share its address, and its guests too.
    limited = await _limited(request, request.app[LINK_LIMIT], who.person.user_id)
    if limited is not None:
        return limited
    try:
        room = room_named((form_field(form, "room") or "").strip())
    except NotARoom:
        return web.Response(status=302, headers={"Location": "/auth/?guest_error=room"})
    try:
        days = int(form_field(form, "days") or "")
    except ValueError:
        days = DEFAULT_DAYS
    links = _links(request)
    try:
        path = await links.create(room, days, who.person.user_id, who.person.display_name)
    except NotSaved:
        return _not_saved(request, "guest-not-created", start_page_location(room))
    link = await links.open(path.removeprefix(PATH_PREFIX))
    log.info("%r created a guest link for %r", who.person.user_id, room.backend_name)
    # The start page shows it first, with its copy button, and scrolls there.
    location = f"{start_page_location(room)}&created={quote(link.link_id)}#{CREATED_ANCHOR}"
    return web.Response(status=302, headers={"Location": location})


def _back_location(back: str) -> str:
    """The start page, with the room the teacher had open there."""
    try:
        return start_page_location(room_named(back)) if back else "/auth/"
    except NotARoom:
        return "/auth/"


async def withdraw_form(request: web.Request) -> web.Response:
    """Asks before a link is withdrawn: a link, not a button, leads here."""
    who = await visitor(request)
    if who is None or not who.is_teacher:
        raise web.HTTPForbidden(text="Only teachers manage guest links.")
    back_room = request.query.get("room", "")
    back = _back_location(back_room)
    mine = {link.link_id: link for link in await _links(request).created_by(who.person.user_id)}
    link = mine.get(request.query.get("link_id", ""))
    t = translator(request)
    if link is None:
        return message(
            request,
            "guest-withdrawn",
            text=t("guest.withdraw_gone"),
            link=back,
            link_text=t("guest.back"),
        )
    tokens = request.app[CSRF_TOKENS]
    csrf_token, set_cookie = tokens.token_for(request.cookies.get(tokens.cookie_name))
    response = render(
        request,
        "guest_withdraw.html",
        link=link,
        until=until_text(t, link.expires_at),
        csrf_token=csrf_token,
        back=back,
        back_room=back_room,
    )
    if set_cookie is not None:
        response.headers.add("Set-Cookie", set_cookie)
    return response


async def withdraw_link(request: web.Request) -> web.StreamResponse:
    form, who = await _teacher_form(request)
    link_id = form_field(form, "link_id") or ""
    location = _back_location(form_field(form, "room") or "")
    links = _links(request)
    mine = {link.link_id: link for link in await links.created_by(who.person.user_id)}
    t = translator(request)
    try:
        withdrawn = await links.withdraw(link_id, who.person.user_id)
    except NotSaved:
        return _not_saved(request, "guest-not-withdrawn", location)
    if withdrawn and link_id in mine:
        log.info("%r withdrew guest link %s", who.person.user_id, link_id)
        text = t("guest.withdrawn_done", room=mine[link_id].room)
    else:
        text = t("guest.withdraw_gone")
    # Said afterwards, on a page of its own: nothing disappears silently.
    return message(request, "guest-withdrawn", text=text, link=location, link_text=t("guest.back"))


def _not_saved(request: web.Request, name: str, back: str) -> web.Response:
    """503: the state file could not be written, so nothing was done; back to try again."""
    response = message(request, name, link=back, link_text=translator(request)("guest.back"))
    response.set_status(503)
    return response


def limit(kind: str, per_hour: int, shared: SharedState | None) -> SiteLimit:
    """Guest names per address, or links per teacher: per site where Redis is shared."""
    return SiteLimit(
        kind, per_hour, window=LIMIT_WINDOW_SECONDS, ban_time=LIMIT_WINDOW_SECONDS, shared=shared
    )
