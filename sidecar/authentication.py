"""A password check, the same for the login form and for Basic: regulated first,
then cached (Basic only) or checked against the directory."""

from __future__ import annotations

import logging
from functools import partial

from sidecar.credential_cache import CredentialCache
from sidecar.credentials import Credentials
from sidecar.directory import Directory
from sidecar.people import Person
from sidecar.refusals import Banned, InvalidCredentials
from sidecar.regulation import Regulator

log = logging.getLogger(__name__)


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
        try:
            with self._regulator.attempt(credentials.username, address) as attempt:
                authenticate = partial(self._directory.authenticate, found=attempt.found_entry)
                if cached:
                    person = await self._cache.get_or_check(credentials, authenticate)
                else:
                    person = await authenticate(credentials)
                attempt.succeeded()
        except Banned as banned:
            log.info(
                "login of %r from %s refused: %s banned",
                credentials.username,
                address,
                banned.scope,
            )
            raise
        except InvalidCredentials:
            log.info("login failed for %r from %s", credentials.username, address)
            raise
        return person
