"""Why a login was refused: one tree, each refusal carrying what explains it.

Every refusal names the page that explains it to the person (``page``), or
None when the answer is to ask for the password again; the verify endpoint
and the login form both go by that, so the mapping from refusal to page
exists here only.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

BanScope = Literal["user", "address"]
# The sidecar's pages that explain a refusal (/auth/page/<name>).
RefusalPage = Literal["banned", "unavailable", "forbidden"]


class LoginRefused(Exception):
    """No admission from these credentials, now."""

    page: ClassVar[RefusalPage | None] = None
    # For the decision's log line: what happened, in a few words, never a value given.
    summary: ClassVar[str] = "refused"

    @property
    def reason(self) -> str:
        return self.summary


class UnacceptableCredentials(LoginRefused, ValueError):
    """The values cannot be a login (empty, too long, control characters): no bind is made."""

    summary = "unacceptable credentials"


class InvalidCredentials(LoginRefused):
    """Unknown user or wrong password: deliberately indistinguishable."""

    summary = "wrong user name or password"


class DirectoryUnavailable(LoginRefused):
    """The directory did not answer in time, or not at all."""

    page = "unavailable"
    summary = "directory unavailable"


class NoRole(LoginRefused):
    """The password was right, but the person's groups give no role."""

    page = "forbidden"
    summary = "no role"

    def __init__(self, user_id: str) -> None:
        super().__init__(f"{user_id!r} has no role")
        self.user_id = user_id


class Banned(LoginRefused):
    """Too many failures: no bind is made until ``seconds`` have passed.

    ``scope`` says what is banned: ``"user"`` (that name, from this address
    or from everywhere) or ``"address"`` (every name from this address).
    """

    page = "banned"

    def __init__(self, scope: BanScope, seconds: float) -> None:
        super().__init__(f"{scope} banned for {seconds:.0f} s")
        self.scope = scope
        self.seconds = seconds

    @property
    def reason(self) -> str:
        return f"banned ({self.scope}) for {self.seconds:.0f} s"

    @property
    def minutes(self) -> int:
        return minutes_to_wait(self.seconds)


def minutes_to_wait(seconds: float) -> int:
    """Whole minutes for "try again in N minutes": never 0."""
    return max(1, math.ceil(seconds / 60))
