"""Who is asking for one of the sidecar's own pages: a session, or Basic credentials.

Room requests are judged by the guard; the start page, the statistics and
the guest-link forms only need to know who it is and with which role.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from sidecar.appkeys import AUTHENTICATOR, ROLES, SESSIONS
from sidecar.config import RoleRule
from sidecar.credentials import parse_basic_authorization
from sidecar.people import Person
from sidecar.refusals import LoginRefused
from sidecar.sessions import Session


@dataclass(frozen=True)
class Visitor:
    person: Person
    rule: RoleRule
    session: Session | None  # None: Basic credentials

    @property
    def is_teacher(self) -> bool:
        return self.rule.moderator


async def visitor(request: web.Request) -> Visitor | None:
    """The person behind ``request`` and their role, or None (nobody, or no role)."""
    sessions = request.app[SESSIONS]
    session = sessions.load(request.cookies) if sessions is not None else None
    if session is not None:
        rule = request.app[ROLES].rule_named(session.role)
        return None if rule is None else Visitor(session.person(), rule, session)
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
