"""Jitsi room tokens: minted the way Prosody's token authentication checks them.

The rules: header ``typ`` exactly ``JWT`` and the
configured algorithm (HMAC with the app secret, or RSA with a ``kid``);
``iss`` the app id, ``aud`` one string, ``sub`` always; ``room`` the
backend-safe room name; integer ``exp``/``nbf`` with ``nbf`` a little in the
past because Prosody allows no clock skew; ``context.user`` values strings
(moderator rights both as ``affiliation`` and ``moderator`` there, and as a
top-level boolean for older plugins) but for ``lobby_bypass``, the boolean
``true`` that jitsi-contrib's ``token_lobby_bypass`` compares with;
``context.features`` as each role allows (the name locked by default), and
only what Jitsi reads there.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cachetools import TLRUCache
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import get_default_algorithms

from sidecar.config.settings import JitsiSettings, RoleRule
from sidecar.people import Person

# Clocks of this host and Prosody's may differ by this much.
NOT_BEFORE_SLACK_SECONDS = 60
# A token that runs out sooner than this is replaced before Jitsi gets it.
MIN_REMAINING_SECONDS = 300
ANY_ROOM = "*"
# A JWS in compact form, as this sidecar writes it: three base64url parts.
_COMPACT_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Verified tokens kept (a school's people with a room open, a few times over);
# about a kilobyte each.
VERIFIED_TOKENS = 4096
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


def _segment(data: bytes) -> bytes:
    """One part of a compact JWT: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """What is compared of a token whose signature checked out: its times, and a
    digest of the claims that must be this person's, role's and room's (thousands
    are kept: the claims themselves took 2.6 KB a token, the digest 32 bytes)."""

    exp: int
    nbf: int
    claims: bytes


def _claims_digest(
    sub: object, room: object, user_id: object, moderator: object, context: object
) -> bytes:
    """One digest for the claims a current token must have. JSON tells true from 1,
    which == does not; keys are sorted, so their order in a token does not count."""
    text = json.dumps(
        [sub, room, user_id, moderator, context], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class RoomTokens:
    def __init__(self, settings: JitsiSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        signing_key, self._verifying_key = signing_keys(settings)
        # What jwt.encode does for every token, done once: the key prepared (for
        # a secret, PyJWT tries to read it as PEM, SSH and DER first) and the
        # header encoded, with the same bytes (keys sorted, no spaces).
        self._algorithm = get_default_algorithms()[settings.algorithm]
        self._signing_key = self._algorithm.prepare_key(signing_key)
        # Prosody finds an RS* token's public key by its kid.
        self._header: dict[str, str] = {"typ": "JWT"}
        if settings.algorithm.startswith("RS"):
            self._header["kid"] = settings.key_id
        header = {"alg": settings.algorithm, **self._header}
        self._header_segment = _segment(
            json.dumps(header, separators=(",", ":"), sort_keys=True).encode("ascii")
        )
        self._clock = clock
        # Tokens whose signature checked out, by their exact text, until they expire:
        # every room page load brings its token again, and verifying is most of its cost.
        # Tokens that fail are not kept, so made-up ones cost time but no memory.
        self._verified: TLRUCache[bytes, VerifiedToken] = TLRUCache(
            VERIFIED_TOKENS, ttu=lambda _token, verified, _now: verified.exp, timer=clock
        )

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
        payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        signed = self._header_segment + b"." + _segment(payload)
        signature = self._algorithm.sign(signed, self._signing_key)
        return (signed + b"." + _segment(signature)).decode("ascii")

    @staticmethod
    def _context(person: Person, rule: RoleRule) -> dict[str, Any]:
        user: dict[str, str | bool] = {
            "id": person.user_id,
            "name": person.display_name,
            # Prosody's presence_identity shows it to the whole room.
            "email": person.email if rule.sends_email else "",
            "affiliation": "owner" if rule.moderator else "member",
            "moderator": "true" if rule.moderator else "false",
        }
        if person.avatar:
            user["avatar"] = person.avatar
        if rule.bypasses_lobby:
            # jitsi-contrib's token_lobby_bypass compares exactly this with the
            # boolean true; nothing reads a lobby bypass in context.features.
            user["lobby_bypass"] = True
        context: dict[str, Any] = {"user": user, "features": rule.token_features}
        if person.context_group:
            context["group"] = person.context_group
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
        if not _COMPACT_JWT.fullmatch(token):
            # One spelling per token: older PyJWT read stray characters in the
            # signature leniently, and every spelling would take a cache entry.
            return False
        # Kept by the token's digest: a key of 32 bytes, not the whole token.
        key = hashlib.sha256(token.encode("ascii")).digest()
        verified = self._verified.get(key)
        if verified is None:
            verified = self._verify(token)
            if verified is None:
                return False
            self._verified[key] = verified
        now = self._clock()
        if not verified.nbf <= now or verified.exp - now < MIN_REMAINING_SECONDS:
            return False
        expected = _claims_digest(
            tenant or self._settings.subject,
            self._room_claim(rule, backend_room),
            person.user_id,
            rule.moderator,
            # Role options changed since (features, e-mail): a new token carries them.
            self._context(person, rule),
        )
        return verified.claims == expected

    def _verify(self, token: str) -> VerifiedToken | None:
        """The claims of ``token`` when its signature, header, issuer and audience are ours."""
        settings = self._settings
        try:
            # One decode gives header and claims.
            decoded = jwt.decode_complete(
                token,
                self._verifying_key,
                algorithms=[settings.algorithm],
                audience=settings.audience,
                issuer=settings.app_id,
                # Time is judged by is_current with our own clock and margin.
                options={
                    "require": ["exp", "nbf", "sub", "room", "context"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError:
            return None
        header, claims = decoded["header"], decoded["payload"]
        exp, nbf, context = claims["exp"], claims["nbf"], claims["context"]
        user = context.get("user") if isinstance(context, dict) else None
        if (
            not isinstance(exp, int)
            or not isinstance(nbf, int)
            or header.get("typ") != "JWT"
            or header.get("kid") != self._header.get("kid")
            or not isinstance(user, dict)
        ):
            return None
        try:
            digest = _claims_digest(
                claims["sub"], claims["room"], user.get("id"), claims.get("moderator"), context
            )
        except (ValueError, RecursionError):
            return None  # claims that Python reads but cannot write back: never ours
        return VerifiedToken(exp=exp, nbf=nbf, claims=digest)
