"""``/auth/room-state``: whether a waiting pupil or guest may go in now.

The waiting page and the start page ask it from a small script instead of
reloading themselves (``static/waiting.js``). The answer comes from the
guard itself, asked as if the browser had opened the room, so it tells
nobody more than opening the room would, and each ask spends the asker's
room-size budget exactly as a reload of the waiting page did. The pace is
the waiting page's own (``WaitingPace``, the same cookie).

``{"state": "waiting", "next": seconds}`` while the room is closed;
``{"state": "open", "go": address}`` once it is open, the address holding
the token the guard minted for this asker (as the redirect of a reload
would); ``{"state": "ask-the-page", "go": address}`` for anything else
(logged out, a withdrawn invitation, the directory down): the script then
opens the room's address, and the page there says what applies.
"""

from __future__ import annotations

from aiohttp import web

from sidecar.guard import Allow, Decision, Page, Redirect, RoomAccessRequest, Verdict
from sidecar.rooms import NotARoom, RoomRequest, parse_room_uri
from sidecar.web.app_keys import GUARD, SESSIONS, SETTINGS, WAITING

PATH = "/auth/room-state"
MAX_ADDRESS = 2048


def _room(request: web.Request) -> RoomRequest:
    """The room of ``?room=<its address>``: path and query, never a token of somebody's."""
    address = request.query.get("room", "")
    try:
        if len(address) > MAX_ADDRESS:
            raise NotARoom("too long")
        return parse_room_uri(address, request.app[SETTINGS].jitsi.tenant_set)
    except NotARoom:
        raise web.HTTPBadRequest(text="Not a room address") from None


def _answer(
    request: web.Request, verdict: Verdict, decision: Decision, room: RoomRequest
) -> web.Response:
    if isinstance(verdict, Page) and verdict.name == "waiting":
        seconds, set_cookie = request.app[WAITING].next_check(request.cookies, room.path)
        response = web.json_response({"state": "waiting", "next": seconds})
        if set_cookie is not None:
            response.headers.add("Set-Cookie", set_cookie)
        return response
    session = None
    if isinstance(verdict, Redirect) and decision.minted:
        response = web.json_response({"state": "open", "go": verdict.location})
        session = verdict.session
    elif isinstance(verdict, Allow):
        response = web.json_response({"state": "open", "go": room.location_without_token()})
        session = verdict.session
    else:
        # Nothing about why: the room's own address shows it to whoever may see it.
        response = web.json_response(
            {"state": "ask-the-page", "go": room.location_without_token()}, status=403
        )
    sessions = request.app[SESSIONS]
    if session is not None and sessions is not None:
        # A touched or renewed session, as verify hands it to nginx.
        response.headers.add("Set-Cookie", sessions.set_cookie(session))
    return response


async def room_state(request: web.Request) -> web.Response:
    room = _room(request)
    access = RoomAccessRequest(
        # Without whatever token the address had: the guard's own answer.
        uri=room.location_without_token(),
        method="GET",
        authorization=request.headers.get("Authorization"),
        cookies=request.cookies,
        client_address=request.headers.get("X-Real-IP", ""),
    )
    decision = Decision()
    verdict = await request.app[GUARD].decide(access, decision)
    return _answer(request, verdict, decision, room)
