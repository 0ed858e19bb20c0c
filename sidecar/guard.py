"""The decision for one room request: who is asking, for which room, and the answer.

The answer is a :class:`Verdict`; turning it into HTTP for nginx is the web
layer's job. Order matters: the URI is judged before any credentials are
looked at, and credentials are judged before anything is sent to LDAP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from sidecar.credentials import Credentials, UnacceptableCredentials, parse_basic_authorization
from sidecar.directory import Directory, DirectoryUnavailable, InvalidCredentials
from sidecar.people import Person
from sidecar.roles import RoleRules
from sidecar.rooms import NotARoom, RoomRequest, parse_room_uri
from sidecar.tokens import RoomTokens

log = logging.getLogger(__name__)

PageName = Literal["forbidden", "unavailable", "not-a-room"]


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


@dataclass(frozen=True)
class RoomAccessRequest:
    """What nginx tells about the request it is holding."""

    uri: str
    authorization: str | None = None


class Guard:
    def __init__(self, directory: Directory, roles: RoleRules, tokens: RoomTokens) -> None:
        self._directory = directory
        self._roles = roles
        self._tokens = tokens

    async def decide(self, request: RoomAccessRequest) -> Verdict:
        try:
            room = parse_room_uri(request.uri)
        except NotARoom as reason:
            log.info("not a room request: %s", reason)
            return Page("not-a-room")
        credentials = self._basic_credentials(request.authorization)
        if credentials is None:
            return Challenge()
        try:
            person = await self._directory.authenticate(credentials)
        except InvalidCredentials:
            log.info("login failed for %r", credentials.username)
            return Challenge()
        except DirectoryUnavailable:
            return Page("unavailable")
        return self.admit(person, room)

    def admit(self, person: Person, room: RoomRequest) -> Verdict:
        """The verdict for an authenticated person: the room, a fresh token, or no entry."""
        rule = self._roles.role_for(person)
        if rule is None:
            log.info("%r has no role", person.user_id)
            return Page("forbidden")
        backend_room = room.backend_name
        if len(room.tokens) == 1 and self._tokens.is_current(
            room.tokens[0], person, rule, backend_room
        ):
            return Allow(person.user_id)
        token = self._tokens.mint(person, rule, backend_room)
        log.info("token for %r as %s in %r", person.user_id, rule.name, backend_room)
        return Redirect(room.location_with_token(token))

    @staticmethod
    def _basic_credentials(authorization: str | None) -> Credentials | None:
        if not authorization:
            return None
        try:
            return parse_basic_authorization(authorization)
        except UnacceptableCredentials as reason:
            log.info("refused credentials before any bind: %s", reason)
            return None
