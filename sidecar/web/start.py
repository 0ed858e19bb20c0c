"""The start page (``/auth/``) and the statistics (``/auth/statistics``).

The start page tells who is logged in, opens rooms in the browser or in a
Jitsi Meet app (deep links with a token, since an app cannot show a login
form), and gives teachers the bridge's figures. Pupils get app links only
once the room is open: waiting applies here as well.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web

from sidecar.config.settings import JITSI_MEET_APP
from sidecar.jitsi.app_links import app_links, web_link_with_token
from sidecar.jitsi.bridge_stats import UNKNOWN, BridgeFigures
from sidecar.jitsi.room_size import Asker
from sidecar.regulation import place_of
from sidecar.rooms import NotARoom, RoomRequest, room_named, start_page_location
from sidecar.waiting_rule import WaitingRule
from sidecar.web.app_keys import (
    BRIDGE,
    CSRF_TOKENS,
    ROOM_SIZE,
    SESSIONS,
    SETTINGS,
    TOKENS,
    WAITING,
)
from sidecar.web.guest_list import guest_links_context
from sidecar.web.pages import guest_room_message, message, named_page, render, translator
from sidecar.web.visitors import Visitor, visit_of, visitor

log = logging.getLogger(__name__)

MAX_ROOM_NAME_INPUT = 200


def _room_asked(request: web.Request) -> tuple[RoomRequest | None, bool]:
    """The room of ``?room=``, and whether a name was given that is no room."""
    name = request.query.get("room", "").strip()
    if not name:
        return None, False
    try:
        return room_named(name[:MAX_ROOM_NAME_INPUT]), False
    except NotARoom:
        return None, True


async def _to_login(request: web.Request, room: RoomRequest | None) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    next_location = start_page_location(room)
    if "form" in settings.login.methods and request.app[SESSIONS] is not None:
        # Set as written: HTTPFound would let yarl undo the escaping of the query.
        location = f"/auth/login?next={quote(next_location, safe='')}"
        return web.Response(status=302, headers={"Location": location})
    return await named_page(request, "challenge", retry=next_location)


async def _may_enter(request: web.Request, who: Visitor, room: RoomRequest) -> bool:
    asker = Asker(who.person.user_id, place_of(request.headers.get("X-Real-IP", "")))
    return not await WaitingRule(request.app[ROOM_SIZE], room, asker).must_wait(who.rule)


async def _figures(request: web.Request) -> BridgeFigures | None:
    bridge = request.app[BRIDGE]
    return None if bridge is None else await bridge.figures()


async def start_page(request: web.Request) -> web.StreamResponse:
    room, not_a_room = _room_asked(request)
    guest = await visit_of(request).guest()
    if guest is not None:
        # A guest's start page: the one room their invitation is for.
        return guest_room_message(request, "guest-home", guest)
    who = await visitor(request)
    if who is None:
        return await _to_login(request, room)
    tokens = request.app[CSRF_TOKENS]
    waiting_cookie = None
    csrf_token, csrf_cookie = tokens.token_for(request.cookies.get(tokens.cookie_name))
    settings = request.app[SETTINGS]
    context: dict[str, Any] = {
        "who": who,
        "room": room,
        "not_a_room": not_a_room,
        "asked": request.query.get("room", "")[:MAX_ROOM_NAME_INPUT],
        "role_name": who.rule.shown_name(translator(request).language),
        "figures": await _figures(request) if who.is_teacher else None,
        "waiting": False,
        "apps": [],
        "app_link": None,
        "guests": await guest_links_context(request, who, room.room if room else ""),
        "guest_room_error": request.query.get("guest_error") == "room",
        "csrf_token": csrf_token,
    }
    if room is not None:
        if await _may_enter(request, who, room):
            token = request.app[TOKENS].mint(who.person, who.rule, room.backend_name)
            log.info("start page: token for %r in %r", who.person.user_id, room.backend_name)
            context["apps"] = app_links(
                settings.server.public_url, room, token, (JITSI_MEET_APP, *settings.apps)
            )
            context["app_link"] = web_link_with_token(settings.server.public_url, room, token)
        else:
            # Checked again at the waiting page's pace (its cookie, keyed by the room).
            refresh, waiting_cookie = request.app[WAITING].next_check(request.cookies, room.path)
            context.update(waiting=True, refresh=refresh, again=start_page_location(room))
    response = render(request, "start.html", **context)
    for cookie in (csrf_cookie, waiting_cookie):
        if cookie is not None:
            response.headers.add("Set-Cookie", cookie)
    return response


def _wants_html(request: web.Request) -> bool:
    """A browser's Accept names text/html; a script's names JSON (or nothing)."""
    accept = request.headers.get("Accept", "").lower()
    return "text/html" in accept and "application/json" not in accept


async def statistics(request: web.Request) -> web.StreamResponse:
    """The bridge's figures for teachers: a page for a browser, else
    ``{"conferences": N, "participants": M}`` (null and 503 while unknown)."""
    html = _wants_html(request)
    if request.app[BRIDGE] is None:
        if html:
            raise web.HTTPNotFound(text="Not found")
        return web.json_response({"error": "no bridge statistics configured"}, status=404)
    who = await visitor(request)
    if who is None or not who.is_teacher:
        if not html:
            return web.json_response({"error": "for teachers only"}, status=403)
        if who is None:
            return await _to_login(request, None)
        t = translator(request)
        response = message(request, "statistics", text=t("statistics.teachers_only"))
        response.set_status(403)
        return response
    figures = await _figures(request) or UNKNOWN
    status = 200 if figures.known else 503
    if html:
        return render(request, "statistics.html", status=status, figures=figures)
    return web.json_response(
        {"conferences": figures.conferences, "participants": figures.participants},
        status=status,
    )
