"""An independent reading of the rules Jitsi's Prosody applies to a room token.

The sidecar mints tokens for Jitsi's Prosody token authentication
(``token/util.lib.lua`` with ``mod_auth_token``) and for ``token_affiliation``.
This module judges a token the way those would, written from the plugins'
own checks (the list in :mod:`sidecar.jitsi.tokens`), and deliberately
imports nothing from ``sidecar``: a
test that mints with the sidecar and admits here checks one reading of the
rules against another.

Where the project is stricter than Prosody, this module is strict too, and
says so next to the check (a token without ``exp``, ``aud`` as a list, a room
claim that is not already the backend-safe name).
"""

from __future__ import annotations

import hashlib
import json
import string
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})
# Prosody's asap_key_server: the file name (<hex sha256 of kid>.pem) to a PEM, or None.
KeyServer = Callable[[str], bytes | None]

# What JavaScript's encodeURIComponent leaves as it is; everything else is
# percent-encoded as UTF-8 with uppercase hex digits.
_URI_COMPONENT_UNESCAPED = frozenset(string.ascii_letters + string.digits + "-_.!~*'()")

# Lua's string.lower (C locale) only knows ASCII.
_LUA_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

# token_affiliation (Jitsi's and jitsi-contrib's) makes these an owner.
_OWNER_AFFILIATIONS = frozenset({"owner", "moderator", "teacher"})


@dataclass(frozen=True)
class JitsiSite:
    """What the Prosody side is configured with.

    ``subject`` is the XMPP domain Prosody serves (or the tenant); a token's
    ``sub`` must name it or be ``"*"``. An empty ``accepted_audiences`` is
    Prosody's default (``asap_accepted_audiences`` unset): ``aud`` must only
    be present.
    """

    app_id: str
    app_secret: bytes
    subject: str
    accepted_audiences: tuple[str, ...] = ()
    algorithm: str = "HS256"
    asap_key_server: KeyServer | None = None  # for RS*: where public keys come from

    def __post_init__(self) -> None:
        if self.algorithm in RSA_ALGORITHMS:
            if self.asap_key_server is None:
                raise ValueError("RS* needs an asap_key_server")
            return
        if self.algorithm not in HMAC_ALGORITHMS:
            raise ValueError(
                f"algorithm {self.algorithm!r} is not one of {sorted(HMAC_ALGORITHMS)}"
            )
        if not self.app_secret:
            raise ValueError("app_secret is empty")
        if not isinstance(self.accepted_audiences, tuple):
            raise TypeError("accepted_audiences must be a tuple of strings")


class TokenRefused(AssertionError):
    """Prosody (or the project's stricter reading) would refuse the token.

    ``rule`` names the rule that was broken (``"typ"``, ``"exp"``,
    ``"context.user.email"``, ...), ``reason`` says how, for a person.
    """

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


@dataclass(frozen=True)
class Admission:
    """A token Prosody accepts for the room, and the role it gives."""

    claims: dict[str, Any]
    moderator: bool
    user_id: str
    user_name: str

    @property
    def features(self) -> dict[str, Any]:
        features: dict[str, Any] = self.claims["context"].get("features") or {}
        return features

    @property
    def name_locked(self) -> bool:
        """mod_muc_displayname keeps the token's name only for ``name-readonly`` exactly true."""
        return self.features.get("name-readonly") is True

    @property
    def passes_the_lobby(self) -> bool:
        """jitsi-contrib's token_lobby_bypass compares ``context.user.lobby_bypass`` with
        the boolean true (since 2022; nothing reads ``context.features.lobby_bypass``)."""
        return self.claims["context"]["user"].get("lobby_bypass") is True

    @property
    def email(self) -> str:
        """What presence_identity shows the room: context.user.email ("" is nothing)."""
        email: str = self.claims["context"]["user"].get("email", "")
        return email

    @property
    def group(self) -> str | None:
        """context.group (mod_auth_token keeps it as jitsi_meet_context_group)."""
        group: str | None = self.claims["context"].get("group")
        return group


def _decode_uri_component(text: str) -> str:
    """JavaScript's decodeURIComponent: every escape decoded, ValueError if malformed."""
    decoded: list[str] = []
    escaped = bytearray()
    position = 0
    while position < len(text):
        if text[position] != "%":
            if escaped:
                # strict UTF-8, as the JS algorithm: overlong forms, surrogates fail
                decoded.append(escaped.decode("utf-8"))
                escaped.clear()
            decoded.append(text[position])
            position += 1
            continue
        digits = text[position + 1 : position + 3]
        if len(digits) != 2 or not all(digit in string.hexdigits for digit in digits):
            raise ValueError(f"malformed escape at {position} in {text!r}")
        escaped.append(int(digits, 16))
        position += 3
    if escaped:
        decoded.append(escaped.decode("utf-8"))
    return "".join(decoded)


def _encode_uri_component(text: str) -> str:
    """JavaScript's encodeURIComponent; ValueError for a lone surrogate (URIError in JS)."""
    encoded: list[str] = []
    for character in text:
        if character in _URI_COMPONENT_UNESCAPED:
            encoded.append(character)
        else:
            encoded.extend(f"%{byte:02X}" for byte in character.encode("utf-8"))
    return "".join(encoded)


def prosody_room_name(path_segment: str) -> str:
    """The room name Jitsi's web app sends to Prosody for a raw URL path segment.

    URL-decode (a segment that does not decode is kept as it is), Unicode
    NFKC, lowercase, encodeURIComponent, lowercase again.
    """
    try:
        room = _decode_uri_component(path_segment)
    except ValueError:
        # the web app swallows the URIError and carries on with the raw segment
        room = path_segment
    room = unicodedata.normalize("NFKC", room).lower()
    return _encode_uri_component(room).lower()


def _lua_lower(text: str) -> str:
    return text.translate(_LUA_LOWER)


def _is_integer(value: object) -> bool:
    # JSON true would be a Python int; Lua sees a boolean, not a number
    return isinstance(value, int) and not isinstance(value, bool)


def _check_header(token: str, site: JitsiSite) -> None:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as error:
        raise TokenRefused("format", f"not a compact JWS: {error}") from error
    typ = header.get("typ")
    if typ != "JWT":
        raise TokenRefused("typ", f'header typ is {typ!r}, must be exactly "JWT"')
    alg = header.get("alg")
    if alg != site.algorithm:
        raise TokenRefused("alg", f"header alg is {alg!r}, the site expects {site.algorithm!r}")


def _verification_key(token: str, site: JitsiSite) -> Any:
    """app_secret, or (RS*) the public key the key server has for the token's kid."""
    if site.asap_key_server is None:
        return site.app_secret
    kid = jwt.get_unverified_header(token).get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRefused("kid", "an RS* token needs a kid to find its public key")
    pem = site.asap_key_server(hashlib.sha256(kid.encode("utf-8")).hexdigest() + ".pem")
    if pem is None:
        raise TokenRefused("kid", f"the key server has no key for kid {kid!r}")
    return serialization.load_pem_public_key(pem)


def _verified_claims(token: str, site: JitsiSite) -> dict[str, Any]:
    try:
        signed = jwt.PyJWS().decode_complete(
            token, key=_verification_key(token, site), algorithms=[site.algorithm]
        )
    except jwt.InvalidSignatureError as error:
        raise TokenRefused("signature", "signature does not verify with app_secret") from error
    except jwt.InvalidTokenError as error:
        raise TokenRefused("format", f"token refused before its signature: {error}") from error
    payload: bytes = signed["payload"]
    try:
        claims = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TokenRefused("payload", "payload is not JSON") from error
    if not isinstance(claims, dict):
        raise TokenRefused("payload", f"payload is a JSON {type(claims).__name__}, not an object")
    return claims


def _check_times(claims: dict[str, Any], now: int) -> None:
    # Prosody accepts a token without exp; the project never mints one.
    if "exp" not in claims:
        raise TokenRefused("exp", "exp is missing (the project always sets it)")
    exp = claims["exp"]
    if not _is_integer(exp):
        raise TokenRefused("exp", f"exp is {exp!r}, not an integer")
    nbf = claims.get("nbf")
    if "nbf" in claims and not _is_integer(nbf):
        raise TokenRefused("nbf", f"nbf is {nbf!r}, not an integer")
    # no clock skew anywhere: Prosody compares with os.time() as it is
    if now >= exp:
        raise TokenRefused("exp", f"expired: exp {exp} <= now {now}")
    if nbf is not None and now < nbf:
        raise TokenRefused("nbf", f"not yet valid: nbf {nbf} > now {now}")


def _check_audience(claims: dict[str, Any], site: JitsiSite) -> None:
    if "aud" not in claims:
        raise TokenRefused("aud", "aud is missing")
    aud = claims["aud"]
    # Prosody compares with ==, so a list never matches a configured audience.
    if not isinstance(aud, str):
        raise TokenRefused("aud", f"aud is {aud!r}, not a single string")
    audiences = site.accepted_audiences
    if audiences and "*" not in audiences and aud not in audiences:
        raise TokenRefused("aud", f"aud {aud!r} is not one of {list(audiences)}")


def _check_subject(claims: dict[str, Any], site: JitsiSite) -> None:
    if "sub" not in claims:
        raise TokenRefused("sub", "sub is missing")
    sub = claims["sub"]
    if not isinstance(sub, str):
        raise TokenRefused("sub", f"sub is {sub!r}, not a string")
    if sub != "*" and _lua_lower(sub) != _lua_lower(site.subject):
        raise TokenRefused("sub", f'sub {sub!r} is neither {site.subject!r} nor "*"')


def _check_room(claims: dict[str, Any], room_path_segment: str) -> None:
    if "room" not in claims:
        raise TokenRefused("room", "room is missing")
    room = claims["room"]
    if not isinstance(room, str):
        raise TokenRefused("room", f"room is {room!r}, not a string")
    expected = prosody_room_name(room_path_segment)
    # Exact: Prosody lowercases ASCII in the claim before comparing, but only
    # the canonical name is safe across its versions.
    if room != "*" and room != expected:
        raise TokenRefused(
            "room", f"room {room!r} is not {expected!r} (for {room_path_segment!r}) or '*'"
        )


def _checked_user(claims: dict[str, Any]) -> dict[str, Any]:
    context = claims.get("context")
    if not isinstance(context, dict):
        raise TokenRefused("context", f"context is {context!r}, not an object")
    features = context.get("features")
    if "features" in context and not isinstance(features, dict):
        raise TokenRefused("context.features", f"context.features is {features!r}, not an object")
    group = context.get("group")
    if "group" in context and not isinstance(group, str):
        raise TokenRefused("context.group", f"context.group is {group!r}, not a string")
    user = context.get("user")
    if not isinstance(user, dict):
        raise TokenRefused("context.user", f"context.user is {user!r}, not an object")
    for key in ("id", "name", "email"):
        if key not in user:
            raise TokenRefused(f"context.user.{key}", f"context.user.{key} is missing")
    for key in ("id", "name", "email", "avatar", "affiliation", "moderator"):
        if key in user and not isinstance(user[key], str):
            raise TokenRefused(
                f"context.user.{key}", f"context.user.{key} is {user[key]!r}, not a string"
            )
    # token_lobby_bypass compares with true: "true" would look set and do nothing.
    if "lobby_bypass" in user and not isinstance(user["lobby_bypass"], bool):
        bypass = user["lobby_bypass"]
        raise TokenRefused(
            "context.user.lobby_bypass", f"context.user.lobby_bypass is {bypass!r}, not a boolean"
        )
    # Stricter than Prosody (which ignores it): a bypass there is a bypass that does nothing.
    if isinstance(features, dict) and "lobby_bypass" in features:
        raise TokenRefused(
            "context.features.lobby_bypass",
            "nothing reads it there: token_lobby_bypass reads context.user.lobby_bypass",
        )
    return user


def admit(
    token: str, site: JitsiSite, room_path_segment: str, *, now: int | None = None
) -> Admission:
    """Judge ``token`` for the room at ``room_path_segment`` as Prosody would.

    Raises TokenRefused naming the first rule the token breaks; returns the
    admission with the role token_affiliation would give otherwise.
    """
    if now is None:
        now = int(time.time())
    _check_header(token, site)
    claims = _verified_claims(token, site)
    _check_times(claims, now)

    iss = claims.get("iss")
    if "iss" not in claims:
        raise TokenRefused("iss", "iss is missing")
    if iss != site.app_id:
        raise TokenRefused("iss", f"iss {iss!r} is not the app id {site.app_id!r}")
    _check_audience(claims, site)
    _check_subject(claims, site)
    _check_room(claims, room_path_segment)
    user = _checked_user(claims)

    legacy_moderator = claims.get("moderator")
    if "moderator" in claims and not isinstance(legacy_moderator, bool):
        raise TokenRefused("moderator", f"moderator is {legacy_moderator!r}, not a boolean")

    owner = user.get("affiliation") in _OWNER_AFFILIATIONS or user.get("moderator") == "true"
    return Admission(claims=claims, moderator=owner, user_id=user["id"], user_name=user["name"])
