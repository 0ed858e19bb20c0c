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

from sidecar.guard import Allow, DecisionRecord, Page, Redirect, RoomAccessRequest, Verdict
from sidecar.rooms import NotARoom, RoomRequest, parse_room_uri
from sidecar.web.app_keys import GUARD, SETTINGS, WAITING
from sidecar.web.visitors import visit_of

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
    request: web.Request, verdict: Verdict, decision: DecisionRecord, room: RoomRequest
) -> web.Response:
    """A renewed session's cookie is added by the visits middleware, as for verify."""
    if isinstance(verdict, Page) and verdict.name == "waiting":
        seconds, set_cookie = request.app[WAITING].next_check(request.cookies, room.path)
        response = web.json_response({"state": "waiting", "next": seconds})
        if set_cookie is not None:
            response.headers.add("Set-Cookie", set_cookie)
        return response
    if isinstance(verdict, Redirect) and decision.minted:
        return web.json_response({"state": "open", "go": verdict.location})
    if isinstance(verdict, Allow):
        return web.json_response({"state": "open", "go": room.location_without_token()})
    # Nothing about why: the room's own address shows it to whoever may see it.
    return web.json_response(
        {"state": "ask-the-page", "go": room.location_without_token()}, status=403
    )


async def room_state(request: web.Request) -> web.Response:
    room = _room(request)
    access = RoomAccessRequest(
        # Without whatever token the address had: the guard's own answer.
        uri=room.location_without_token(),
        visit=visit_of(request),
        method="GET",
        authorization=request.headers.get("Authorization"),
        client_address=request.headers.get("X-Real-IP", ""),
    )
    decision = DecisionRecord()
    verdict = await request.app[GUARD].decide(access, decision)
    return _answer(request, verdict, decision, room)
