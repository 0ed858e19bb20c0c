"""Room requests: which room a URI names, and the URI that carries its token.

The URI comes from nginx (``X-Original-URI: $request_uri``). Anything that is
not plainly one room name is refused rather than repaired, and every redirect
is built here from parts this module produced itself, so it can only ever be a
path on the meet origin.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_plus

MAX_URI_LENGTH = 4096
MAX_ROOM_LENGTH = 200
MAX_QUERY_PARAMETERS = 64
TOKEN_PARAMETER = "jwt"  # noqa: S105 (a parameter name, not a secret)

# The room location of Jitsi's nginx site: one path segment without these.
_ROOM_PATH = re.compile(r"/([^/?&:'\"]+)")
_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# What JavaScript's encodeURIComponent leaves alone.
_URI_COMPONENT_SAFE = "-_.!~*'()"
# What the redirect path may carry unescaped; everything else is percent-encoded.
_PATH_SAFE = "-_.~"


class NotARoom(ValueError):
    """The URI does not name exactly one acceptable room."""


@dataclass(frozen=True)
class RoomRequest:
    room: str  # decoded, as the person typed it
    other_parameters: tuple[str, ...]  # raw "name=value" pieces, order kept
    tokens: tuple[str, ...]  # every jwt= value found

    @property
    def backend_name(self) -> str:
        return backend_safe_room_name(self.room)

    @property
    def path(self) -> str:
        """``/<room>``, percent-encoded by us: a single-slash path on this origin."""
        return "/" + quote(self.room, safe=_PATH_SAFE)

    def location_without_token(self) -> str:
        """The room with its other parameters: where a login sends the person."""
        if not self.other_parameters:
            return self.path
        return self.path + "?" + "&".join(self.other_parameters)

    def location_with_token(self, token: str) -> str:
        """``/<room>?<other parameters>&jwt=<token>``."""
        query = [*self.other_parameters, f"{TOKEN_PARAMETER}={quote(token, safe='')}"]
        return self.path + "?" + "&".join(query)


def backend_safe_room_name(room: str) -> str:
    """The room name Jitsi's web app sends to Prosody, which the token must match.

    NFKC, lowercase, encodeURIComponent, lowercase again: Prosody lowercases
    ASCII only, so ``Übung`` must travel as ``%c3%bcbung``.
    """
    folded = unicodedata.normalize("NFKC", room).lower()
    return quote(folded, safe=_URI_COMPONENT_SAFE).lower()


def _acceptable_room(room: str) -> bool:
    if not room.strip() or len(room) > MAX_ROOM_LENGTH:
        return False
    if ".." in room or room.startswith("."):
        return False
    # Characters an XMPP room address (nodeprep) or a single path segment cannot hold.
    if any(ch in "/\\?#&:'\"<>@" for ch in room):
        return False
    return not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in room)


def parse_room_uri(uri: str) -> RoomRequest:
    if not uri or len(uri) > MAX_URI_LENGTH:
        raise NotARoom("empty or too long")
    # nginx hands over the request line's URI as sent: printable ASCII only.
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in uri) or "#" in uri:
        raise NotARoom("characters that never appear in a request URI")
    path, _, query = uri.partition("?")
    match = _ROOM_PATH.fullmatch(path)
    if match is None:
        raise NotARoom("not a single path segment")
    if _MALFORMED_ESCAPE.search(match.group(1)):
        # The browser's decodeURIComponent would give up and use the raw text,
        # Python's unquote would decode part of it: the names would differ.
        raise NotARoom("malformed percent-escape")
    try:
        room = unquote(match.group(1), errors="strict")
    except UnicodeDecodeError:
        raise NotARoom("room name is not UTF-8") from None
    if not _acceptable_room(room):
        raise NotARoom("not an acceptable room name")
    others: list[str] = []
    tokens: list[str] = []
    pieces = [piece for piece in query.split("&") if piece] if query else []
    if len(pieces) > MAX_QUERY_PARAMETERS:
        raise NotARoom("too many query parameters")
    for piece in pieces:
        name, _, value = piece.partition("=")
        if unquote_plus(name) == TOKEN_PARAMETER:
            tokens.append(unquote_plus(value))
        else:
            others.append(piece)
    return RoomRequest(room=room, other_parameters=tuple(others), tokens=tuple(tokens))


def safe_next(value: str | None) -> str:
    """Where to send somebody after login: a room path rebuilt here, or ``/``.

    Stricter than "a single-slash path": only room requests are ever sent to
    the login page, so only a room (never ``//host``, ``/\\host``, a scheme,
    ``@``, control characters or encoded whitespace) is accepted back.
    """
    if not value:
        return "/"
    try:
        return parse_room_uri(value).location_without_token()
    except NotARoom:
        return "/"
