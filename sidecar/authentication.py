"""A password check, the same for the login form and for Basic: regulated first,
then cached (Basic only) or checked against the directory."""

from __future__ import annotations

import logging
import math

from sidecar.credential_cache import CredentialCache
from sidecar.credentials import Credentials
from sidecar.directory import Directory, InvalidCredentials
from sidecar.people import Person
from sidecar.regulation import Regulator

log = logging.getLogger(__name__)


class Banned(Exception):
    """Too many failures: no bind is made until ``seconds`` have passed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"banned for {seconds:.0f} s")
        self.seconds = seconds

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.seconds / 60))


class Authenticator:
    def __init__(self, directory: Directory, cache: CredentialCache, regulator: Regulator) -> None:
        self._directory = directory
        self._cache = cache
        self._regulator = regulator

    async def check(self, credentials: Credentials, address: str, *, cached: bool) -> Person:
        """The person, or Banned, InvalidCredentials or DirectoryUnavailable.

        With ``cached``, good credentials seen lately pass without a bind,
        even while the directory is down.
        """
        if cached:
            person = self._cache.cached(credentials)
            if person is not None:
                return person
        wait = self._regulator.begin_attempt(credentials.username, address)
        if wait > 0:
            log.info("login of %r from %s refused: banned", credentials.username, address)
            raise Banned(wait)
        try:
            if cached:
                person = await self._cache.get_or_check(credentials, self._directory.authenticate)
            else:
                person = await self._directory.authenticate(credentials)
        except InvalidCredentials:
            log.info("login failed for %r from %s", credentials.username, address)
            self._regulator.failed(credentials.username, address)
            raise
        finally:
            self._regulator.end_attempt(credentials.username, address)
        self._regulator.succeeded(credentials.username)
        return person
