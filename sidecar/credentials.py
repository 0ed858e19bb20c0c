"""User names and passwords as they arrive, checked before anything binds.

An empty password is an anonymous bind in LDAP and would "succeed", so every
value that could not be a real login is refused here, before the directory is
asked at all.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from dataclasses import dataclass

from sidecar.refusals import UnacceptableCredentials

MAX_USERNAME_LENGTH = 256
MAX_PASSWORD_LENGTH = 1024
# Base64 of the longest acceptable pair, with room for the colon and padding.
MAX_BASIC_HEADER_LENGTH = 6 + 4 * ((4 * (MAX_USERNAME_LENGTH + MAX_PASSWORD_LENGTH + 1)) // 3 + 3)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password='***')"


def _has_control_character(value: str) -> bool:
    # Cs: a lone surrogate, which is no character of UTF-8 text (an undecodable
    # byte read from a pipe, say) and would fail inside the LDAP library.
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def check_credentials(username: str, password: str) -> Credentials:
    if not username or not username.strip():
        raise UnacceptableCredentials("empty user name")
    if len(username) > MAX_USERNAME_LENGTH:
        raise UnacceptableCredentials("user name too long")
    if username != username.strip():
        raise UnacceptableCredentials("user name with surrounding whitespace")
    if _has_control_character(username):
        raise UnacceptableCredentials("control character in user name")
    if not password or not password.strip():
        raise UnacceptableCredentials("empty password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UnacceptableCredentials("password too long")
    if _has_control_character(password):
        raise UnacceptableCredentials("control character in password")
    return Credentials(username=username, password=password)


def parse_basic_authorization(header: str) -> Credentials:
    """``Authorization: Basic <base64(user:password)>`` to checked credentials."""
    if len(header) > MAX_BASIC_HEADER_LENGTH:
        raise UnacceptableCredentials("authorization header too long")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise UnacceptableCredentials("not Basic authorization")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise UnacceptableCredentials("authorization is not base64 of UTF-8") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise UnacceptableCredentials("authorization without a colon")
    return check_credentials(username, password)
