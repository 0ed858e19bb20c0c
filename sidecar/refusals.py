"""Why a login was refused: one tree, each refusal carrying what explains it.

Callers catch :class:`LoginRefused` where any refusal will do and the
subclasses where the answer differs (a new password prompt, a "try again
later" page, a "directory unreachable" page).
"""

from __future__ import annotations

import math
from typing import Literal

BanScope = Literal["user", "address"]


class LoginRefused(Exception):
    """No person could be established from these credentials, now."""


class InvalidCredentials(LoginRefused):
    """Unknown user or wrong password: deliberately indistinguishable."""


class DirectoryUnavailable(LoginRefused):
    """The directory did not answer in time, or not at all."""


class Banned(LoginRefused):
    """Too many failures: no bind is made until ``seconds`` have passed.

    ``scope`` says what is banned: ``"user"`` (that name, from this address
    or from everywhere) or ``"address"`` (every name from this address).
    """

    def __init__(self, scope: BanScope, seconds: float) -> None:
        super().__init__(f"{scope} banned for {seconds:.0f} s")
        self.scope = scope
        self.seconds = seconds

    @property
    def minutes(self) -> int:
        return minutes_to_wait(self.seconds)


def minutes_to_wait(seconds: float) -> int:
    """Whole minutes for "try again in N minutes": never 0."""
    return max(1, math.ceil(seconds / 60))
