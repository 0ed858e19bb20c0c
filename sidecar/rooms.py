"""Room requests: which room a URI names, and the URI that carries its token.

The URI comes from nginx (``X-Original-URI: $request_uri``). Anything that is
not plainly one room name is refused rather than repaired, and every redirect
is built here from parts this module produced itself, so it can only ever be a
path on the meet origin.

The query is read the way Jitsi's web app reads it (``parseURLParams``): split
on ``&``, the name taken as it stands (never percent-decoded), the value up to
the next ``=`` and not decoded either. Only what Jitsi would hand to Prosody
can be judged a valid token; ``%6Awt=``, ``JWT=`` or ``jwt[]=`` are no token
at all, and they are dropped from redirects so that no stale token travels on.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import quote, unquote, unquote_plus

MAX_URI_LENGTH = 4096
MAX_ROOM_LENGTH = 200
# Prosody's nodeprep refuses a room node (the backend-safe name) this long or longer.
MAX_BACKEND_NAME_BYTES = 1023
MAX_QUERY_PARAMETERS = 64
TOKEN_PARAMETER = "jwt"  # noqa: S105 (a parameter name, not a secret)
# Room names Prosody gives a meaning of its own: "*" is "every room" in a token's
# room claim (no room name may hold one, so no claim can be or become it);
# jicofo's health-check rooms are skipped by several Jitsi modules.
WILDCARD = "*"
RESERVED_ROOM_PREFIXES = ("__jicofo-health-check",)

# The room location of Jitsi's nginx site: one path segment without these.
_ROOM_PATH = re.compile(r"/([^/?&:'\"]+)")
# A tenant's room (Jitsi's multi-tenant sites): the tenant a plain name, then the room.
_TENANT_ROOM_PATH = re.compile(r"/([A-Za-z0-9][A-Za-z0-9_-]{0,62})(/[^/?&:'\"]+)")
_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Printable ASCII but "#" (a fragment never reaches a server).
_REQUEST_URI = re.compile(r"[!\"$-~]+")
# What JavaScript's encodeURIComponent leaves alone.
_URI_COMPONENT_SAFE = "-_.!~*'()"
# What the redirect path may carry unescaped; everything else is percent-encoded.
_PATH_SAFE = "-_.~"
# A token as the sidecar writes it (compact JWS, base64url): anything else in
# the jwt= value is something Prosody would read differently from PyJWT.
_COMPACT_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class NotARoom(ValueError):
    """The URI does not name exactly one acceptable room."""


@dataclass(frozen=True)
class RoomRequest:
    room: str  # decoded, as the person typed it
    other_parameters: tuple[str, ...]  # raw "name=value" pieces, order kept
    tokens: tuple[str, ...]  # every jwt= value, raw, as Jitsi's web app reads it
    tenant: str = ""  # /<tenant>/<room> on a multi-tenant site: lower case

    @cached_property
    def backend_name(self) -> str:
        # Asked several times per verify (waiting, the token, its check): made once.
        return backend_safe_room_name(self.room)

    @property
    def path(self) -> str:
        """``/<room>`` (or ``/<tenant>/<room>``), percent-encoded by us: a path on this origin."""
        room = "/" + quote(self.room, safe=_PATH_SAFE)
        return f"/{self.tenant}{room}" if self.tenant else room

    def location_without_token(self) -> str:
        """The room with its other parameters: where a login sends the person."""
        if not self.other_parameters:
            return self.path
        return self.path + "?" + "&".join(self.other_parameters)

    @property
    def token(self) -> str | None:
        """The one well-formed token of the URI, or None (none, several, or malformed)."""
        if len(self.tokens) != 1 or not _COMPACT_TOKEN.fullmatch(self.tokens[0]):
            return None
        return self.tokens[0]

    def location_with_token(self, token: str) -> str:
        """``/<room>?<other parameters>&jwt=<token>#jwt=%22<token>%22``.

        The fragment is the point: a browser keeps the fragment of the link it
        followed unless the redirect brings one of its own, and Jitsi's web app
        reads ``#jwt=`` before ``?jwt=``. Without it a crafted link
        (``/room#jwt=<somebody else's token>``) would survive the login and
        the room would open under that other identity. The web app decodes
        and JSON-parses fragment values, hence the quotes (``%22``).
        """
        encoded = quote(token, safe="")
        query = [*self.other_parameters, f"{TOKEN_PARAMETER}={encoded}"]
        fragment = f"{TOKEN_PARAMETER}=%22{encoded}%22"
        return self.path + "?" + "&".join(query) + "#" + fragment


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
    # As typed, and as Prosody gets it (NFKC: a fullwidth apostrophe is "'",
    # U+2025 is ".."): both must be a name.
    for name in (room, unicodedata.normalize("NFKC", room)):
        if ".." in name or name.startswith("."):
            return False
        # Characters an XMPP room address (nodeprep) or a single path segment cannot hold.
        if any(ch in "/\\?#&:'\"<>@" for ch in name):
            return False
    # Cn: unassigned in this server's Unicode tables, which the browser's may
    # know and normalise otherwise: the token would name another room.
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Cn", "Zl", "Zp") for ch in room):
        return False
    # Judged on the name Prosody sees: "%2A" and a fullwidth asterisk are "*" too.
    backend = backend_safe_room_name(room)
    if len(backend) > MAX_BACKEND_NAME_BYTES:  # ASCII: characters are bytes
        return False
    return WILDCARD not in backend and not backend.startswith(RESERVED_ROOM_PREFIXES)


def _is_token_parameter_look_alike(name: str) -> bool:
    """A name Jitsi does not read as ``jwt`` but a person (or Python) would."""
    return re.sub(r"[^a-z]", "", unquote_plus(name).lower()) == TOKEN_PARAMETER


def parse_room_uri(uri: str, tenants: frozenset[str] = frozenset()) -> RoomRequest:
    """The room ``uri`` names: ``/<room>``, or ``/<tenant>/<room>`` for one of ``tenants``."""
    if not uri or len(uri) > MAX_URI_LENGTH:
        raise NotARoom("empty or too long")
    # nginx hands over the request line's URI as sent: printable ASCII only.
    if not _REQUEST_URI.fullmatch(uri):
        raise NotARoom("characters that never appear in a request URI")
    path, _, query = uri.partition("?")
    tenant = ""
    tenant_match = _TENANT_ROOM_PATH.fullmatch(path) if tenants else None
    if tenant_match is not None:
        tenant = tenant_match.group(1).lower()
        if tenant not in tenants:
            raise NotARoom("not a tenant of this site")
        path = tenant_match.group(2)
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
        name, _, rest = piece.partition("=")
        if name == TOKEN_PARAMETER:
            # parseURLParams: the value ends at the next "=", and is not decoded.
            tokens.append(rest.partition("=")[0])
        elif not _is_token_parameter_look_alike(name):
            others.append(piece)
    return RoomRequest(
        room=room, other_parameters=tuple(others), tokens=tuple(tokens), tenant=tenant
    )


START_PAGE = "/auth/"


def start_page_location(room: RoomRequest | None) -> str:
    """``/auth/`` or ``/auth/?room=<name>``, built here."""
    if room is None:
        return START_PAGE
    return f"{START_PAGE}?room={quote(room.room, safe='')}"


def room_named(name: str) -> RoomRequest:
    """The room a person typed by name (``Mathe 7b``), judged like one in a URI."""
    try:
        segment = quote(name, safe="")
    except UnicodeError:
        raise NotARoom("room name is not UTF-8 text") from None
    return parse_room_uri("/" + segment)


def safe_next(value: str | None, tenants: frozenset[str] = frozenset()) -> str:
    """Where to send somebody after login: a room path or the start page rebuilt here, or ``/``.

    Stricter than "a single-slash path": only room requests and the start
    page send people to the login page, so only those (never ``//host``,
    ``/\\host``, a scheme, ``@``, control characters or encoded whitespace)
    are accepted back, and only as this module rebuilds them.
    """
    if not value:
        return "/"
    path, _, query = value.partition("?")
    if path == START_PAGE:
        names = [piece.partition("=")[2] for piece in query.split("&") if piece.startswith("room=")]
        if len(names) != 1:
            return START_PAGE
        try:
            return start_page_location(room_named(unquote(names[0], errors="strict")))
        except (NotARoom, UnicodeError):
            return START_PAGE
    try:
        return parse_room_uri(value, tenants).location_without_token()
    except NotARoom:
        return "/"
