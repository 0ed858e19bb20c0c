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

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cachetools import TLRUCache
from cryptography.hazmat.primitives import serialization
from jwt import PyJWS
from jwt.algorithms import Algorithm
from jwt.types import JWKDict

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


class _KeyPreparedOnce(Algorithm):
    """One of PyJWT's algorithms, with the site's one key prepared once.

    PyJWT prepares the key again for every token it signs or checks (for a
    secret that means trying to read it as PEM, SSH and DER first): a third of
    the work of minting one.
    """

    def __init__(self, algorithm: Algorithm, keys: tuple[Any, ...]) -> None:
        self._algorithm = algorithm
        self._prepared = [(key, algorithm.prepare_key(key)) for key in keys]

    def prepare_key(self, key: Any) -> Any:
        for raw, prepared in self._prepared:
            if key is raw:
                return prepared
        return self._algorithm.prepare_key(key)

    def sign(self, msg: bytes, key: Any) -> bytes:
        return self._algorithm.sign(msg, key)

    def verify(self, msg: bytes, key: Any, sig: bytes) -> bool:
        return self._algorithm.verify(msg, key, sig)

    def check_key_length(self, key: Any) -> str | None:
        return self._algorithm.check_key_length(key)

    @staticmethod
    def to_jwk(key_obj: Any, as_dict: bool = False) -> Any:
        raise NotImplementedError("not used: keys are never exported as JWK here")

    @staticmethod
    def from_jwk(jwk: str | JWKDict) -> Any:
        raise NotImplementedError("not used: keys are never read from JWK here")


def _signer(settings: JitsiSettings, key: Any) -> PyJWS:
    """PyJWT's signer for the configured algorithm alone, with ``key`` prepared once."""
    signer = PyJWS(algorithms=[settings.algorithm])
    original = signer.get_algorithm_by_name(settings.algorithm)
    signer.unregister_algorithm(settings.algorithm)
    signer.register_algorithm(settings.algorithm, _KeyPreparedOnce(original, (key,)))
    return signer


@dataclass(frozen=True)
class VerifiedToken:
    """What is compared of a token whose signature checked out."""

    exp: int
    nbf: int
    sub: object
    room: object
    user_id: object
    moderator: object
    context: object


class RoomTokens:
    def __init__(self, settings: JitsiSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._signing_key, self._verifying_key = signing_keys(settings)
        self._signer = _signer(settings, self._signing_key)
        # Prosody finds an RS* token's public key by its kid.
        self._header = {"typ": "JWT"}
        if settings.algorithm.startswith("RS"):
            self._header["kid"] = settings.key_id
        self._clock = clock
        # Tokens whose signature checked out, by their exact text, until they expire:
        # every room page load brings its token again, and verifying is most of its cost.
        # Tokens that fail are not kept, so made-up ones cost time but no memory.
        self._verified: TLRUCache[str, VerifiedToken] = TLRUCache(
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
        # What jwt.encode does, with the key prepared once (see _KeyPreparedOnce).
        payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        return self._signer.encode(
            payload, self._signing_key, algorithm=settings.algorithm, headers=self._header
        )

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
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify(token)
            if verified is None:
                return False
            self._verified[token] = verified
        now = self._clock()
        if not verified.nbf <= now or verified.exp - now < MIN_REMAINING_SECONDS:
            return False
        return (
            verified.sub == (tenant or self._settings.subject)
            and verified.room == self._room_claim(rule, backend_room)
            and verified.user_id == person.user_id
            and verified.moderator is rule.moderator
            # Role options changed since (features, e-mail): a new token carries them.
            and verified.context == self._context(person, rule)
        )

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
        return VerifiedToken(
            exp=exp,
            nbf=nbf,
            sub=claims["sub"],
            room=claims["room"],
            user_id=user.get("id"),
            moderator=claims.get("moderator"),
            context=context,
        )
