"""One login decision, for the login form and for Basic alike: these credentials,
from this address, to an admission (a person and their role) or a refusal.

Regulated first (bans, checks under way; a cached answer too), then cached
(Basic only) or checked against the directory, then mapped to a role. Every way it can fail is a
:class:`~sidecar.refusals.LoginRefused`, which names the page that explains it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from sidecar.config.settings import RoleRule
from sidecar.credential_cache import CredentialCache
from sidecar.credentials import Credentials
from sidecar.ldap.directory import Directory
from sidecar.metrics import Metrics
from sidecar.people import Person
from sidecar.refusals import NoRole
from sidecar.regulation import Regulator, place_of
from sidecar.roles import RoleRules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Admission:
    person: Person
    rule: RoleRule


class Authenticator:
    def __init__(
        self,
        directory: Directory,
        cache: CredentialCache,
        regulator: Regulator,
        roles: RoleRules,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._directory = directory
        self._cache = cache
        self._regulator = regulator
        self._roles = roles

    async def admit(self, credentials: Credentials, address: str, *, cached: bool) -> Admission:
        """The person and their role, or a :class:`LoginRefused`.

        With ``cached`` (Basic, sent with every request), good credentials
        seen lately pass without a bind, even while the directory is down.
        """
        person = await self._person(credentials, address, cached=cached)
        rule = self._roles.role_for(person)
        if rule is None:
            raise NoRole(person.user_id)
        return Admission(person, rule)

    async def _person(self, credentials: Credentials, address: str, *, cached: bool) -> Person:
        if not cached:
            return await self._checked(credentials, address)
        # Bans first, the cache after: an answer from the cache tells right from
        # wrong as well as a bind does, and a banned address or name learns
        # nothing from a guess (the person's own known places stay open).
        new_places = await self._regulator.refuse_if_banned(credentials.username, address)
        person = self._cache.cached(credentials)
        self._metrics.cache.labels("miss" if person is None else "hit").inc()
        if person is not None:
            # Right credentials from a new place make it one of her usual places,
            # as a bind would: failures of others there do not lock her out.
            await self._regulator.learn_places(new_places)
            return person
        # Concurrent requests with the same credentials (a browser's parallel
        # loads) are one check: one bind, counted once.
        return await self._cache.get_or_check(
            credentials, partial(self._checked, address=address), place=place_of(address)
        )

    async def _checked(self, credentials: Credentials, address: str) -> Person:
        """A regulated check against the directory. Refusals are told once, in the
        decision's log line (sidecar.web.logs)."""
        async with self._regulator.attempt(
            credentials.username, address, entry_first=self._directory.searches_first
        ) as attempt:
            person = await self._directory.authenticate(
                credentials, found=attempt.found_entry, usual=attempt.usual_entry
            )
            await attempt.succeeded()
        return person
