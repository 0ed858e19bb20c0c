"""The decision for one room request: who is asking, for which room, and the answer.

The answer is a :class:`Verdict`; turning it into HTTP for nginx is the web
layer's job. Order matters: the URI is judged before anything else, a
session before credentials, and credentials (and bans) before anything is
sent to LDAP.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

from sidecar.authentication import Authenticator
from sidecar.config.settings import GUEST_RULE, LoginMethod, RoleRule
from sidecar.credentials import Credentials, parse_basic_authorization
from sidecar.guest_links import GuestLinks
from sidecar.jitsi.room_size import Asker, RoomSize
from sidecar.jitsi.tokens import RoomTokens
from sidecar.ldap.directory import Directory
from sidecar.metrics import Metrics
from sidecar.people import Person
from sidecar.refusals import (
    DirectoryUnavailable,
    LoginRefused,
    RefusalPage,
    UnacceptableCredentials,
)
from sidecar.regulation import place_of
from sidecar.roles import RoleRules
from sidecar.rooms import NotARoom, RoomRequest, backend_safe_room_name, parse_room_uri
from sidecar.sessions import Session, SessionCookies

log = logging.getLogger(__name__)

PageName = RefusalPage | Literal["not-a-room", "waiting", "wrong-room", "guest-invalid"]
LOGIN_PATH = "/auth/login"
PAGE_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class Allow:
    """Serve the meeting page."""

    user_id: str
    session: Session | None = None  # to be sent back, when it changed


@dataclass(frozen=True)
class Redirect:
    """Send the browser to ``location``, a path on the meet origin."""

    location: str
    session: Session | None = None


@dataclass(frozen=True)
class Challenge:
    """Ask for credentials (HTTP Basic)."""


@dataclass(frozen=True)
class Page:
    """Show one of the sidecar's own pages instead of the room."""

    name: PageName


Verdict = Allow | Redirect | Challenge | Page


@dataclass
class Decision:
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
    method: str = "GET"
    authorization: str | None = None
    cookies: Mapping[str, str] = field(default_factory=dict)
    client_address: str = ""


def login_location(room: RoomRequest) -> str:
    return f"{LOGIN_PATH}?next={quote(room.location_without_token(), safe='')}"


class Guard:
    def __init__(
        self,
        *,
        directory: Directory,
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
        self._directory = directory
        self._authenticator = authenticator
        self._roles = roles
        self._tokens = tokens
        self._sessions = sessions
        self._methods = methods
        # Set when roles without moderator rights wait for a teacher to open the room.
        self._room_size = room_size
        self._guest_links = guest_links
        self._tenants = tenants

    async def decide(self, request: RoomAccessRequest, decision: Decision | None = None) -> Verdict:
        """The answer to ``request``; ``decision`` is filled in with what led to it."""
        decision = decision or Decision()
        try:
            room = parse_room_uri(request.uri, self._tenants)
        except NotARoom as reason:
            decision.reason = f"not a room: {reason}"
            return Page("not-a-room")
        decision.room = f"{room.tenant}/{room.backend_name}" if room.tenant else room.backend_name
        session = await self.open_session(request.cookies)
        if session is not None:
            decision.method = "guest" if session.is_guest else "session"
            decision.user, decision.role = session.user_id, session.role
            asker = Asker(session.user_id, place_of(request.client_address))
            return await self._admit_session(session, room, request.method, decision, asker)
        credentials = self._basic_credentials(request.authorization)
        if credentials is not None:
            decision.method, decision.user = "basic", credentials.username
            return await self._admit_basic(credentials, request, room, decision)
        decision.reason = "no session or credentials"
        if self._methods[0] == "form":
            return Redirect(login_location(room))
        return Challenge()

    # -- sessions ------------------------------------------------------------

    async def open_session(self, cookies: Mapping[str, str]) -> Session | None:
        """The session a request carries, if it counts here."""
        if self._sessions is None:
            return None
        session = await self._sessions.load(cookies)
        # Guests come by link, whichever login methods the school's people use.
        if session is None or (not session.is_guest and "form" not in self._methods):
            return None
        return session

    async def _admit_session(
        self, session: Session, room: RoomRequest, method: str, decision: Decision, asker: Asker
    ) -> Verdict:
        assert self._sessions is not None
        if session.is_guest:
            return await self._admit_guest(session, room, method, decision, asker)
        # A closed room is answered from the role the session has: a class
        # waiting (and refreshing every few seconds) must not cost LDAP lookups.
        rule = self._roles.rule_named(session.role)
        if rule is not None and await self._must_wait(rule, room, asker):
            decision.reason = "room not open yet"
            return Page("waiting")
        refreshed = await self.refreshed(session)
        if refreshed is None:
            decision.reason = "no role any more"
            return Page("forbidden")
        current, rule, changed = refreshed
        decision.role = rule.name
        touched = current if changed else self._sessions.touch(session)
        return await self._token_verdict(
            current.person(), rule, room, touched, method, decision, asker
        )

    async def refreshed(self, session: Session) -> tuple[Session, RoleRule, bool] | None:
        """The session with its role re-read from LDAP when that is due, its rule, and
        whether it changed; None (and the session ended) when no role is left."""
        assert self._sessions is not None
        sessions = self._sessions
        changed: Session | None = None
        if sessions.role_check_due(session) and self._directory.can_look_up:
            try:
                person = await self._directory.look_up(session.user_id)
            except DirectoryUnavailable:
                # Keep the role until the session's lifetime ends: an outage
                # must not throw a lesson out, and it cannot grant anything new.
                # Ask again one refresh interval later, not at every page load.
                log.info("role of %r kept: directory unavailable", session.user_id)
                changed = sessions.rechecked(session, session.person(), session.role)
            else:
                found = self._roles.role_for(person) if person is not None else None
                if person is None or found is None:
                    log.info("session of %r ended: no longer has a role", session.user_id)
                    await sessions.end(session)
                    return None
                if found.name != session.role:
                    log.info("role of %r is now %s", session.user_id, found.name)
                changed = sessions.rechecked(session, person, found.name)
        current = changed or session
        rule = self._roles.rule_named(current.role)
        if rule is None:
            # The configuration no longer has this role.
            await sessions.end(session)
            return None
        return current, rule, changed is not None

    async def _admit_guest(
        self, session: Session, room: RoomRequest, method: str, decision: Decision, asker: Asker
    ) -> Verdict:
        """A guest: their one room only, never LDAP, gone once the link is withdrawn."""
        assert self._sessions is not None
        if self._guest_links is None or await self._guest_links.withdrawn(session.link_id):
            decision.reason = "guest link withdrawn"
            await self._sessions.end(session)
            return Page("guest-invalid")
        # Invitations name a room of the site itself, never a tenant's.
        if room.tenant or backend_safe_room_name(session.room) != room.backend_name:
            decision.reason = "a guest in another room"
            return Page("wrong-room")
        touched = self._sessions.touch(session)
        return await self._token_verdict(
            session.person(), GUEST_RULE, room, touched, method, decision, asker
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

    async def _admit_basic(
        self,
        credentials: Credentials,
        request: RoomAccessRequest,
        room: RoomRequest,
        decision: Decision,
    ) -> Verdict:
        try:
            admission = await self._authenticator.admit(
                credentials, request.client_address, cached=True
            )
        except LoginRefused as refusal:
            decision.reason = refusal.reason
            # Wrong credentials: the browser asks again; anything else has its page.
            return Challenge() if refusal.page is None else Page(refusal.page)
        decision.user, decision.role = admission.person.user_id, admission.rule.name
        asker = Asker(admission.person.user_id, place_of(request.client_address))
        return await self._token_verdict(
            admission.person, admission.rule, room, None, request.method, decision, asker
        )

    # -- the answer ----------------------------------------------------------------

    async def _must_wait(self, rule: RoleRule, room: RoomRequest, asker: Asker) -> bool:
        """Teachers never wait; others do while the room is not open (as far as the
        asker's own budget of room-size checks lets her know)."""
        if rule.moderator or self._room_size is None:
            return False
        return not await self._room_size.is_open(room.backend_name, room.tenant, asker)

    async def _token_verdict(
        self,
        person: Person,
        rule: RoleRule,
        room: RoomRequest,
        session: Session | None,
        method: str,
        decision: Decision,
        asker: Asker,
    ) -> Verdict:
        backend_room = room.backend_name
        if await self._must_wait(rule, room, asker):
            # Even with a token from earlier: the page is not served while the
            # room is closed (Prosody alone decides what that token still does).
            decision.reason = "room not open yet"
            return Page("waiting")
        token = room.token
        tenant = room.tenant
        if token is not None and self._tokens.is_current(token, person, rule, backend_room, tenant):
            if method in PAGE_METHODS:
                return Allow(person.user_id, session)
            # nginx serves the page for GET and HEAD only; send anything else
            # to the same address, which the browser fetches with GET.
            return Redirect(room.location_with_token(token), session)
        token = self._tokens.mint(person, rule, backend_room, tenant=tenant)
        decision.minted = True
        self._metrics.tokens.labels(rule.name).inc()
        return Redirect(room.location_with_token(token), session)
