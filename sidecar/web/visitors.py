"""Who is asking for one of the sidecar's own pages: a session, or Basic credentials.

Room requests are judged by the guard; the start page, the statistics and
the guest-link forms only need to know who it is and with which role, and
they take it the same way the guard does: a session's role is re-read from
LDAP when that is due, and a session that no longer counts is nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from sidecar.config.settings import RoleRule
from sidecar.credentials import parse_basic_authorization
from sidecar.people import Person
from sidecar.refusals import LoginRefused
from sidecar.sessions import Session
from sidecar.web.app_keys import AUTHENTICATOR, GUARD, SESSIONS


@dataclass(frozen=True)
class Visitor:
    person: Person
    rule: RoleRule
    session: Session | None  # None: Basic credentials
    renewed: bool = False  # the session changed (role re-read): send it back

    @property
    def is_teacher(self) -> bool:
        return self.rule.moderator

    def set_cookie(self, request: web.Request) -> str | None:
        sessions = request.app[SESSIONS]
        if not self.renewed or self.session is None or sessions is None:
            return None
        return sessions.set_cookie(self.session)


async def visitor(request: web.Request) -> Visitor | None:
    """The person behind ``request`` and their role, or None (nobody, a guest, or no role)."""
    guard = request.app[GUARD]
    session = await guard.open_session(request.cookies)
    if session is not None:
        if session.is_guest:
            return None
        refreshed = await guard.refreshed(session)
        if refreshed is None:
            return None
        current, rule, changed = refreshed
        return Visitor(current.person(), rule, current, renewed=changed)
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
    return Visitor(admission.person, admission.rule, None)
