"""Jitsi room tokens: minted the way Prosody's token authentication checks them.

The rules (see DESIGN.md, "The token"): header ``typ`` exactly ``JWT`` and the
configured algorithm (HMAC with the app secret, or RSA with a ``kid``);
``iss`` the app id, ``aud`` one string, ``sub`` always; ``room`` the
backend-safe room name; integer ``exp``/``nbf`` with ``nbf`` a little in the
past because Prosody allows no clock skew; every ``context.user`` value a
string, moderator rights both as ``affiliation`` and ``moderator`` there, and
as a top-level boolean for older plugins; ``context.features`` as each role
allows (the name locked by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from sidecar.config import JitsiSettings, RoleRule
from sidecar.people import Person

# Clocks of this host and Prosody's may differ by this much.
NOT_BEFORE_SLACK_SECONDS = 60
# A token that runs out sooner than this is replaced before Jitsi gets it.
MIN_REMAINING_SECONDS = 300
ANY_ROOM = "*"
# Room checks send a token in a query string, which Prosody may log when it
# refuses it: it lives only as long as one check needs (beyond nbf's slack).
ROOM_CHECK_TTL_SECONDS = 120
# Who the sidecar's own tokens (for Prosody's HTTP checks) name.
SIDECAR = Person(
    user_id="jitsi-auth-sidecar", display_name="jitsi-auth-sidecar", email="", groups=frozenset()
)
_ROOM_CHECK = RoleRule(name="room-check", groups=frozenset(), moderator=False, any_room=False)


def signing_keys(settings: JitsiSettings) -> tuple[Any, Any]:
    """The key tokens are signed with and the one they are checked with.

    HS*: the shared app_secret, both. RS*: the private key, and its public
    half (which Prosody fetches by kid, see asap.py).
    """
    if settings.algorithm.startswith("RS"):
        assert settings.signing_key is not None  # checked by the configuration
        private = serialization.load_pem_private_key(settings.signing_key.reveal(), None)
        return private, private.public_key()
    assert settings.app_secret is not None  # checked by the configuration
    secret = settings.app_secret.reveal()
    return secret, secret


class RoomTokens:
    def __init__(self, settings: JitsiSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._signing_key, self._verifying_key = signing_keys(settings)
        # Prosody finds an RS* token's public key by its kid.
        self._header = {"typ": "JWT"}
        if settings.algorithm.startswith("RS"):
            self._header["kid"] = settings.key_id
        self._clock = clock

    def _room_claim(self, rule: RoleRule, backend_room: str) -> str:
        if rule.any_room:
            return ANY_ROOM
        # Prosody reads "*" as every room. Room names are refused long before
        # this, but a role without any_room must never be able to write it.
        if ANY_ROOM in backend_room:
            raise ValueError("a room claim with a wildcard for a role without any_room")
        return backend_room

    def mint(
        self,
        person: Person,
        rule: RoleRule,
        backend_room: str,
        *,
        ttl: int | None = None,
        tenant: str = "",
    ) -> str:
        now = int(self._clock())
        settings = self._settings
        ttl = ttl or rule.token_ttl or settings.token_ttl
        claims: dict[str, Any] = {
            "iss": settings.app_id,
            "aud": settings.audience,
            # Prosody's multi-tenant check: sub names the tenant of [tenant]room.
            "sub": tenant or settings.subject,
            "room": self._room_claim(rule, backend_room),
            "iat": now,
            "nbf": now - NOT_BEFORE_SLACK_SECONDS,
            "exp": now + ttl,
            "moderator": rule.moderator,
            "context": self._context(person, rule),
        }
        return jwt.encode(
            claims, self._signing_key, algorithm=settings.algorithm, headers=self._header
        )

    @staticmethod
    def _context(person: Person, rule: RoleRule) -> dict[str, Any]:
        user: dict[str, str] = {
            "id": person.user_id,
            "name": person.display_name,
            # Prosody's presence_identity shows it to the whole room.
            "email": person.email if rule.sends_email else "",
            "affiliation": "owner" if rule.moderator else "member",
            "moderator": "true" if rule.moderator else "false",
        }
        if person.avatar:
            user["avatar"] = person.avatar
        context: dict[str, Any] = {"user": user, "features": rule.token_features}
        if person.group:
            context["group"] = person.group
        return context

    def room_check_token(self, backend_room: str, tenant: str = "") -> str:
        """A participant token for ``backend_room`` alone, naming the sidecar itself.

        For Prosody's room-size API with ``enable_roomsize_token_verification``.
        """
        return self.mint(
            SIDECAR, _ROOM_CHECK, backend_room, ttl=ROOM_CHECK_TTL_SECONDS, tenant=tenant
        )

    def is_current(
        self, token: str, person: Person, rule: RoleRule, backend_room: str, tenant: str = ""
    ) -> bool:
        """True when ``token`` is ours, for this person, role and room, and not about to expire."""
        settings = self._settings
        try:
            # One decode gives header and claims: this runs on every room page load.
            decoded = jwt.decode_complete(
                token,
                self._verifying_key,
                algorithms=[settings.algorithm],
                audience=settings.audience,
                issuer=settings.app_id,
                # Time is judged below with our own clock and margin.
                options={
                    "require": ["exp", "nbf", "sub", "room", "context"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError:
            return False
        header, claims = decoded["header"], decoded["payload"]
        now = self._clock()
        exp, nbf = claims["exp"], claims["nbf"]
        if not isinstance(exp, int) or not isinstance(nbf, int):
            return False
        if not nbf <= now or exp - now < MIN_REMAINING_SECONDS:
            return False
        context = claims["context"]
        user = context.get("user") if isinstance(context, dict) else None
        return (
            header.get("typ") == "JWT"
            and header.get("kid") == self._header.get("kid")
            and claims["sub"] == (tenant or settings.subject)
            and claims["room"] == self._room_claim(rule, backend_room)
            and isinstance(user, dict)
            and user.get("id") == person.user_id
            and claims.get("moderator") is rule.moderator
            # Role options changed since (features, e-mail): a new token carries them.
            and context == self._context(person, rule)
        )
