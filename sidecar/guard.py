"""The decision for one room request: who is asking, for which room, and the answer.

The answer is a :class:`Verdict`; turning it into HTTP for nginx is the web
layer's job. Order matters: the URI is judged before anything else, a
session before credentials, and credentials (and bans) before anything is
sent to LDAP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from sidecar.authentication import Authenticator
from sidecar.config.settings import GUEST_RULE, LoginMethod, RoleRule
from sidecar.credentials import Credentials, parse_basic_authorization
from sidecar.guest_links import GuestLinks
from sidecar.jitsi.room_size import Asker, RoomSize
from sidecar.jitsi.tokens import RoomTokens
from sidecar.metrics import Metrics
from sidecar.people import Person
from sidecar.refusals import (
    LoginRefused,
    RefusalPage,
    UnacceptableCredentials,
)
from sidecar.regulation import place_of
from sidecar.roles import RoleRules
from sidecar.rooms import NotARoom, RoomRequest, backend_safe_room_name, parse_room_uri
from sidecar.sessions import Session, SessionCookies
from sidecar.visits import Visit
from sidecar.waiting_rule import WaitingRule

log = logging.getLogger(__name__)

PageName = RefusalPage | Literal["not-a-room", "waiting", "wrong-room", "guest-invalid"]
LOGIN_PATH = "/auth/login"
PAGE_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class Allow:
    """Serve the meeting page."""

    user_id: str


@dataclass(frozen=True)
class Redirect:
    """Send the browser to ``location``, a path on the meet origin."""

    location: str


@dataclass(frozen=True)
class Challenge:
    """Ask for credentials (HTTP Basic)."""


@dataclass(frozen=True)
class Page:
    """Show one of the sidecar's own pages instead of the room."""

    name: PageName


Verdict = Allow | Redirect | Challenge | Page


@dataclass
class DecisionRecord:
    """What is known of one room request's decision, for its log line and the metrics;
    filled in while it is decided. Never a password, cookie or token."""

    method: Literal["session", "guest", "basic", "none"] = "none"
    user: str = "-"
    role: str = "-"
    room: str = "-"
    reason: str = "-"
    minted: bool = False


@dataclass(frozen=True)
class RoomAccessRequest:
    """What nginx tells about the request it is holding."""

    uri: str
    visit: Visit  # who is asking: the session, worked out once for the request
    method: str = "GET"
    authorization: str | None = None
    client_address: str = ""


def login_location(room: RoomRequest) -> str:
    return f"{LOGIN_PATH}?next={quote(room.location_without_token(), safe='')}"


@dataclass(frozen=True)
class _Case:
    """One room request while it is decided: what every step needs of it."""

    request: RoomAccessRequest
    room: RoomRequest
    decision: DecisionRecord

    def waiting(self, room_size: RoomSize | None, user_id: str) -> WaitingRule:
        asker = Asker(user_id, place_of(self.request.client_address))
        return WaitingRule(room_size, self.room, asker)


class Guard:
    def __init__(
        self,
        *,
        authenticator: Authenticator,
        roles: RoleRules,
        tokens: RoomTokens,
        sessions: SessionCookies | None,
        methods: tuple[LoginMethod, ...],
        room_size: RoomSize | None = None,
        guest_links: GuestLinks | None = None,
        tenants: frozenset[str] = frozenset(),
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._authenticator = authenticator
        self._roles = roles
        self._tokens = tokens
        self._sessions = sessions
        self._methods = methods
        # Set when roles without moderator rights wait for a teacher to open the room.
        self._room_size = room_size
        self._guest_links = guest_links
        self._tenants = tenants

    async def decide(
        self, request: RoomAccessRequest, decision: DecisionRecord | None = None
    ) -> Verdict:
        """The answer to ``request``; ``decision`` is filled in with what led to it."""
        decision = decision or DecisionRecord()
        try:
            room = parse_room_uri(request.uri, self._tenants)
        except NotARoom as reason:
            decision.reason = f"not a room: {reason}"
            return Page("not-a-room")
        decision.room = f"{room.tenant}/{room.backend_name}" if room.tenant else room.backend_name
        case = _Case(request, room, decision)
        session = await request.visit.session()
        if session is not None:
            decision.method = "guest" if session.is_guest else "session"
            decision.user, decision.role = session.user_id, session.role
            waiting = case.waiting(self._room_size, session.user_id)
            if session.is_guest:
                return await self._admit_guest(session, case, waiting)
            return await self._admit_session(session, case, waiting)
        credentials = self._basic_credentials(request.authorization)
        if credentials is not None:
            decision.method, decision.user = "basic", credentials.username
            return await self._admit_basic(credentials, case)
        decision.reason = "no session or credentials"
        if self._methods[0] == "form":
            return Redirect(login_location(room))
        return Challenge()

    # -- sessions ------------------------------------------------------------

    async def _admit_session(self, session: Session, case: _Case, waiting: WaitingRule) -> Verdict:
        assert self._sessions is not None
        # A closed room is answered from the role the session has: a class
        # waiting (and refreshing every few seconds) must not cost LDAP lookups.
        rule = self._roles.rule_named(session.role)
        if rule is not None and await waiting.must_wait(rule):
            case.decision.reason = "room not open yet"
            return Page("waiting")
        checked = await case.request.visit.person_role()
        if checked is None:
            case.decision.reason = "no role any more"
            return Page("forbidden")
        case.decision.role = checked.rule.name
        current = checked.session
        send_back = current if checked.changed else self._sessions.touch(session)
        return await self._token_verdict(
            current.person(), checked.rule, case, waiting, send_back=send_back
        )

    async def _admit_guest(self, session: Session, case: _Case, waiting: WaitingRule) -> Verdict:
        """A guest: their one room only, never LDAP, gone once the link is withdrawn."""
        assert self._sessions is not None
        if self._guest_links is None or await self._guest_links.withdrawn(session.link_id):
            case.decision.reason = "guest link withdrawn"
            await self._sessions.log_out(session)
            return Page("guest-invalid")
        # Invitations name a room of the site itself, never a tenant's.
        room = case.room
        if room.tenant or backend_safe_room_name(session.room) != room.backend_name:
            case.decision.reason = "a guest in another room"
            return Page("wrong-room")
        send_back = self._sessions.touch(session)
        return await self._token_verdict(
            session.person(), GUEST_RULE, case, waiting, send_back=send_back
        )

    # -- Basic -----------------------------------------------------------------

    def _basic_credentials(self, authorization: str | None) -> Credentials | None:
        if not authorization or "basic" not in self._methods:
            return None
        try:
            return parse_basic_authorization(authorization)
        except UnacceptableCredentials as reason:
            log.info("refused credentials before any bind: %s", reason)
            return None

    async def _admit_basic(self, credentials: Credentials, case: _Case) -> Verdict:
        try:
            admission = await self._authenticator.admit(
                credentials, case.request.client_address, cached=True
            )
        except LoginRefused as refusal:
            case.decision.reason = refusal.reason
            # Wrong credentials: the browser asks again; anything else has its page.
            return Challenge() if refusal.page is None else Page(refusal.page)
        person = admission.person
        case.decision.user, case.decision.role = person.user_id, admission.rule.name
        waiting = case.waiting(self._room_size, person.user_id)
        return await self._token_verdict(person, admission.rule, case, waiting, send_back=None)

    # -- the answer ----------------------------------------------------------------

    async def _token_verdict(
        self,
        person: Person,
        rule: RoleRule,
        case: _Case,
        waiting: WaitingRule,
        *,
        send_back: Session | None,
    ) -> Verdict:
        """The answer with a token; ``send_back`` (a renewed session) goes with it
        unless the room is closed."""
        if await waiting.must_wait(rule):
            # Even with a token from earlier: the page is not served while the
            # room is closed (Prosody alone decides what that token still does).
            case.decision.reason = "room not open yet"
            return Page("waiting")
        room = case.room
        token = room.token
        if token is not None and self._tokens.is_current(
            token, person, rule, room.backend_name, room.tenant
        ):
            # The renewed session goes with an answer that lets her in, and
            # only once that answer is made (an error on the way sends none).
            case.request.visit.send_cookie(send_back)
            if case.request.method in PAGE_METHODS:
                return Allow(person.user_id)
            # nginx serves the page for GET and HEAD only; send anything else
            # to the same address, which the browser fetches with GET.
            return Redirect(room.location_with_token(token))
        token = self._tokens.mint(person, rule, room.backend_name, tenant=room.tenant)
        case.decision.minted = True
        self._metrics.tokens.labels(rule.name).inc()
        case.request.visit.send_cookie(send_back)
        return Redirect(room.location_with_token(token))
