"""Who is asking, once per request: the middleware that puts a :class:`Visit` on
every request and writes the session cookie it ends with, and the person
behind one of the sidecar's own pages.

Room requests are judged by the guard; the start page, the statistics and
the guest-link forms only need to know who it is and with which role, and
they take it from the same visit the guard would: a session's role is
re-read from LDAP when that is due, and a session that no longer counts is
nobody. Basic credentials count for these pages too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from sidecar.config.settings import RoleRule
from sidecar.credentials import parse_basic_authorization
from sidecar.people import Person
from sidecar.refusals import LoginRefused
from sidecar.visits import Visit
from sidecar.web.app_keys import AUTHENTICATOR, SESSIONS, VISITS

log = logging.getLogger(__name__)

VISIT = web.RequestKey("visit", Visit)


@dataclass(frozen=True)
class Visitor:
    """A person on one of the sidecar's pages, with their role."""

    person: Person
    rule: RoleRule

    @property
    def is_teacher(self) -> bool:
        return self.rule.moderator


def visit_of(request: web.Request) -> Visit:
    return request[VISIT]


@web.middleware
async def visits(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """One visit per request; the one place a session's ``Set-Cookie`` is written."""
    visit = request.app[VISITS].of(request.cookies)
    request[VISIT] = visit
    try:
        response = await handler(request)
    except web.HTTPException as exception:
        # Redirects (after a login, say) are raised, and carry the cookie too.
        _write_cookie(request, visit, exception)
        raise
    _write_cookie(request, visit, response)
    return response


def _write_cookie(request: web.Request, visit: Visit, response: web.StreamResponse) -> None:
    sessions = request.app[SESSIONS]
    if sessions is None:
        return
    if visit.clearing:
        response.headers.add("Set-Cookie", sessions.clear_cookie())
    elif visit.cookie_to_send is not None:
        try:
            cookie = sessions.set_cookie(visit.cookie_to_send)
        except Exception:
            # The answer stands without it: never a 500 (on /auth/verify nginx
            # would show its own). A renewal is made again on the next request.
            log.exception("could not seal the session cookie")
            return
        # On /auth/verify nginx hands this on to the browser (auth_request_set + add_header).
        response.headers.add("Set-Cookie", cookie)


async def visitor(request: web.Request) -> Visitor | None:
    """The person behind ``request`` and their role, or None (nobody, a guest, or no role)."""
    visit = visit_of(request)
    session = await visit.session()
    if session is not None:
        checked = await visit.person_role()
        if checked is None:
            return None
        if checked.changed:
            visit.send_cookie(checked.session)
        return Visitor(checked.session.person(), checked.rule)
    authorization = request.headers.get("Authorization")
    if not authorization:
        return None
    try:
        credentials = parse_basic_authorization(authorization)
        admission = await request.app[AUTHENTICATOR].admit(
            credentials, request.headers.get("X-Real-IP", ""), cached=True
        )
    except LoginRefused:
        return None
    return Visitor(admission.person, admission.rule)
