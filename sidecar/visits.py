"""Who is asking, worked out at most once per request: the session, its role.

A request may be looked at by several parts of the sidecar (the guard, a
page, the guest forms); each asks its :class:`Visit`, which loads the session
cookie once (with Redis: one look-up of logouts elsewhere), re-reads the role
from LDAP only when that is due and at most once, and keeps the session that
is to be sent back. The web layer makes one visit per request and writes that
session's cookie in one place (:mod:`sidecar.web.visitors`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from cachetools import TTLCache

from sidecar.config.settings import LoginMethod, RoleRule
from sidecar.ldap.directory import Directory
from sidecar.refusals import DirectoryUnavailable
from sidecar.roles import RoleRules
from sidecar.sessions import OPENED_COOKIES, TOUCH_INTERVAL_SECONDS, Session, SessionCookies
from sidecar.single_flight import SingleFlight

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionRole:
    """A person's session as it stands after its role check, and the rule of that role."""

    session: Session
    rule: RoleRule
    changed: bool  # re-read from LDAP just now: the cookie is to be sent back


class Visits:
    """What every visit needs; one per application."""

    def __init__(
        self,
        *,
        sessions: SessionCookies | None,
        directory: Directory,
        roles: RoleRules,
        methods: tuple[LoginMethod, ...],
    ) -> None:
        self.sessions = sessions
        self._directory = directory
        self._roles = roles
        self._methods = methods
        # Sessions whose role was re-read lately, by id: the browser sends the old
        # cookie with the loads already under way (and a client that keeps no
        # cookies, with every load), and those need no directory look-up of their own.
        self._rechecked: TTLCache[str, SessionRole] = TTLCache(
            OPENED_COOKIES, TOUCH_INTERVAL_SECONDS
        )
        self._rechecking: SingleFlight[str, SessionRole | None] = SingleFlight()

    def of(self, cookies: Mapping[str, str]) -> Visit:
        """The visit of a request carrying ``cookies``; nothing is loaded yet."""
        return Visit(self, cookies)

    def counts(self, session: Session) -> bool:
        """Guests come by link, whichever login methods the school's people use."""
        return session.is_guest or "form" in self._methods

    async def role_checked(self, session: Session) -> SessionRole | None:
        """The session with its role re-read from LDAP when that is due, and its rule;
        None (and the session ended) when no role is left."""
        sessions = self.sessions
        assert sessions is not None
        if sessions.role_check_due(session) and self._directory.can_look_up:
            recent = self._rechecked.get(session.session_id)
            if recent is not None and recent.session.issued_at == session.issued_at:
                return recent
            # The loads that come while the directory is asked wait for its answer.
            return await self._rechecking.ask_once(
                session.session_id, lambda: self._recheck(session)
            )
        rule = self._roles.rule_named(session.role)
        if rule is None:
            # The configuration no longer has this role.
            await sessions.log_out(session)
            return None
        return SessionRole(session, rule, changed=False)

    async def _recheck(self, session: Session) -> SessionRole | None:
        """:meth:`role_checked` when the role is due: re-read from the directory."""
        sessions = self.sessions
        assert sessions is not None
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
                await sessions.log_out(session)
                return None
            if found.name != session.role:
                log.info("role of %r is now %s", session.user_id, found.name)
            changed = sessions.rechecked(session, person, found.name)
        rule = self._roles.rule_named(changed.role)
        if rule is None:
            # The configuration no longer has this role.
            await sessions.log_out(session)
            return None
        checked = SessionRole(changed, rule, changed=True)
        self._rechecked[session.session_id] = checked
        return checked


class Visit:
    """One request's answer to "who is asking", each part worked out once."""

    def __init__(self, visits: Visits, cookies: Mapping[str, str]) -> None:
        self._visits = visits
        self._cookies = cookies
        self._loaded = False
        self._cookie_session: Session | None = None
        self._role: SessionRole | None = None
        self._role_checked = False
        self.cookie_to_send: Session | None = None  # sealed into the answer's cookie
        self.clearing = False  # the answer clears the session cookie (a logout)

    async def cookie_session(self) -> Session | None:
        """The session the cookie carries (ours, current, not logged out), loaded once."""
        sessions = self._visits.sessions
        if not self._loaded and sessions is not None:
            self._cookie_session = await sessions.load(self._cookies)
        self._loaded = True
        return self._cookie_session

    async def session(self) -> Session | None:
        """The session, if it counts here (see :meth:`Visits.counts`)."""
        session = await self.cookie_session()
        if session is None or not self._visits.counts(session):
            return None
        return session

    async def guest(self) -> Session | None:
        """The session when it is a guest's."""
        session = await self.session()
        return session if session is not None and session.is_guest else None

    async def person_role(self) -> SessionRole | None:
        """A person's session with its role checked (once per request); None for a
        guest, nobody, or somebody without a role any more."""
        if not self._role_checked:
            self._role_checked = True
            session = await self.session()
            if session is not None and not session.is_guest:
                self._role = await self._visits.role_checked(session)
        return self._role

    def send_cookie(self, session: Session | None) -> None:
        """Send ``session`` (new or renewed) with the answer; None: nothing to send."""
        if session is not None:
            self.cookie_to_send = session

    def clear_cookie(self) -> None:
        self.clearing = True
