"""Properties of what the sidecar reads from outside and of the redirects it builds.

Hypothesis looks for inputs that break them: room URIs, ``next=`` values,
Authorization headers, session cookies and guest links, drawn from the space
where such bugs live (percent-escapes, fullwidth and compatibility characters,
controls, ``..``, ``//``, backslashes, ``@``, schemes, overlong values), not only
from random ASCII. The properties: every redirect goes to a path on the meet
origin that the sidecar built itself (``next=`` only as a room path it
rebuilds, no fragment it did not write); empty, whitespace-only, overlong or
NUL-carrying names and passwords are refused before any bind (an empty
password is an anonymous bind, which LDAP grants); a session cookie opens only
as the sidecar sealed it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import string
import tempfile
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, unquote, unquote_plus, urljoin, urlsplit

import hypothesis.configuration
from hypothesis import assume, example, given, reject, settings
from hypothesis import strategies as st
from yarl import URL

from sidecar.config.settings import GuestSettings, Secret, SessionSettings
from sidecar.credentials import (
    MAX_BASIC_HEADER_LENGTH,
    MAX_PASSWORD_LENGTH,
    MAX_USERNAME_LENGTH,
    Credentials,
    check_credentials,
    parse_basic_authorization,
)
from sidecar.guard import LOGIN_PATH, login_location
from sidecar.guest_links import (
    MAX_LINK_LENGTH,
    PATH_PREFIX,
    GuestLink,
    GuestLinks,
    InvalidLink,
    _signing_key,
)
from sidecar.names import (
    MAX_DISPLAY_NAME,
    MAX_GUEST_NAME,
    MAX_MARKS_PER_LETTER,
    MAX_SPACES_IN_A_ROW,
    NameRefused,
    display_name,
    guest_name,
    with_suffix,
)
from sidecar.people import Person
from sidecar.refusals import UnacceptableCredentials
from sidecar.rooms import (
    MAX_QUERY_PARAMETERS,
    MAX_ROOM_LENGTH,
    MAX_URI_LENGTH,
    RESERVED_ROOM_PREFIXES,
    START_PAGE,
    WILDCARD,
    NotARoom,
    RoomRequest,
    parse_room_uri,
    room_named,
    safe_next,
)
from sidecar.sessions import MAX_COOKIE_LENGTH, Session, SessionCookies
from sidecar.web.logs import render_json, render_plain

# Hypothesis caches Unicode tables and constants found in the source under
# ./.hypothesis even without an example database: keep them out of the tree.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    hypothesis.configuration.set_hypothesis_home_dir(
        Path(tempfile.gettempdir()) / "jitsi-auth-sidecar-hypothesis"
    )

# No example database (nothing written into the repository); no per-example
# deadline, because the run time is bounded by max_examples and a loaded
# machine makes per-example timings noisy (Fernet and HKDF most of all).
settings.register_profile("sidecar-properties", database=None, deadline=None)
PROFILE = settings.get_profile("sidecar-properties")


def examples(count: int) -> settings:
    return settings(PROFILE, max_examples=count)


# -- what is drawn ----------------------------------------------------------------

# One character each, chosen because a parser might treat it specially.
TRICKY_CHARACTERS = (
    *"/\\.@:?#&=%+*~'\"<>!()[]; ",
    *"\t\n\r\x00\x1b\x7f\x85\xa0",
    "\u2028",  # line separator (Zl)
    "\u2029",  # paragraph separator (Zp)
    "\u200b",  # zero width space (Cf)
    "\u202e",  # right-to-left override (Cf)
    "\ufeff",  # byte order mark (Cf)
    "\u3000",  # ideographic space (whitespace)
    "\N{FULLWIDTH ASTERISK}",  # NFKC: "*"
    "\N{SMALL ASTERISK}",  # NFKC: "*"
    "\N{FULLWIDTH SOLIDUS}",  # NFKC: "/"
    "\N{FULLWIDTH REVERSE SOLIDUS}",  # NFKC: "\"
    "\N{FULLWIDTH COMMERCIAL AT}",  # NFKC: "@"
    "\N{FULLWIDTH COLON}",  # NFKC: ":"
    "\N{FULLWIDTH APOSTROPHE}",  # NFKC: "'"
    "\N{FULLWIDTH FULL STOP}",  # NFKC: "."
    "\N{FULLWIDTH LOW LINE}",  # NFKC: "_", for the reserved prefix
    "\N{FULLWIDTH LATIN CAPITAL LETTER J}",
    "\N{TWO DOT LEADER}",  # NFKC: ".."
    "\N{LATIN SMALL LIGATURE FI}",
    "\N{CIRCLED DIGIT ONE}",
    "\N{KELVIN SIGN}",
    "\N{LATIN CAPITAL LETTER I WITH DOT ABOVE}",  # lowercases to two code points
    "\N{GREEK CAPITAL LETTER SIGMA}",
    "\N{LATIN SMALL LETTER SHARP S}",
    "\N{LATIN SMALL LETTER U WITH DIAERESIS}",
    "\N{COMBINING DIAERESIS}",
    "\N{GRINNING FACE}",  # four bytes in UTF-8
)
WORDS = (
    "Mathe7b",
    "Mathe 7b",
    "jwt",
    "JWT",
    "__jicofo-health-check",
    "__JICOFO-Health-Check",
    "\N{FULLWIDTH LOW LINE}\N{FULLWIDTH LOW LINE}jicofo-health-check",
    "%5F%5fjicofo-health-check",
    "auth",
    "schule",
    "http:",
    "https://evil.example",
    "javascript:",
    "evil.example",
    "..",
    "//",
)
# Everything Python can hold in a str, lone surrogates included: aiohttp decodes
# header values (X-Original-URI, Authorization, Cookie) with surrogateescape.
ANY_CHARACTER = st.characters(exclude_categories=())
# Everything but lone surrogates: what a query string or a form field (next=)
# can hold once aiohttp has decoded it (invalid UTF-8 becomes U+FFFD there).
DECODED_CHARACTER = st.characters(codec="utf-8")


def escaped(data: bytes) -> str:
    return "".join(f"%{byte:02X}" for byte in data)


def escaped_lower(data: bytes) -> str:
    return escaped(data).lower()


def encoded(text: str) -> str:
    return quote(text, safe="")


ESCAPES: st.SearchStrategy[str] = st.one_of(
    # Any bytes, invalid UTF-8 included, upper- and lower-case hex.
    st.binary(min_size=1, max_size=3).map(escaped),
    st.binary(min_size=1, max_size=3).map(escaped_lower),
    st.sampled_from(TRICKY_CHARACTERS).map(encoded),
    st.text(DECODED_CHARACTER, min_size=1, max_size=2).map(encoded),
    # Malformed, double-encoded, overlong UTF-8 ("/" as C0 AF), an encoded surrogate.
    st.sampled_from(["%", "%2", "%G0", "%%41", "%u002A", "%252F", "%C0%AF", "%ED%A0%80", "%E2%80"]),
)
PRINTABLE_ASCII = "".join(map(chr, range(0x21, 0x7F)))


def as_sent(text: str) -> str:
    """As a browser puts text into a request line: printable ASCII kept, the rest escaped."""
    return quote(text, safe=PRINTABLE_ASCII)


ASCII_PUNCTUATION = "/\\.@:?#&=%+*~'\"<>!()[];"
PLAIN: st.SearchStrategy[str] = st.text(
    string.ascii_letters + string.digits + "-_", min_size=1, max_size=8
)
# Pieces of a URI as nginx hands it over (printable ASCII). Plain ones twice:
# enough of what is drawn must pass the first checks to reach the later ones.
URI_ATOMS: st.SearchStrategy[str] = st.one_of(
    PLAIN,
    PLAIN,
    st.sampled_from(ASCII_PUNCTUATION),
    ESCAPES,
    st.sampled_from(TRICKY_CHARACTERS).map(as_sent),
    st.sampled_from(WORDS).map(as_sent),
)
# Pieces of what no request line holds: raw controls, whitespace, non-ASCII.
RAW_ATOMS: st.SearchStrategy[str] = st.one_of(
    URI_ATOMS,
    st.sampled_from(TRICKY_CHARACTERS),
    st.sampled_from(WORDS),
    st.text(DECODED_CHARACTER, min_size=1, max_size=3),
)
B64URL = string.ascii_letters + string.digits + "-_"
COMPACT_TOKENS: st.SearchStrategy[str] = st.tuples(
    st.text(B64URL, min_size=1, max_size=12),
    st.text(B64URL, min_size=1, max_size=12),
    st.text(B64URL, min_size=1, max_size=40),
).map(".".join)
PARAMETER_NAMES: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(
        [
            "jwt",
            "JWT",
            "Jwt",
            "%6Awt",
            "%6awt",
            "j%77t",
            "jw%74",
            "jwt[]",
            "jwt%00",
            "jwt%20",
            "j+w+t",
            "jwt.",
            "jw",
            "jwtx",
            "lang",
            "config.startWithAudioMuted",
            "room",
            "next",
            "",
        ]
    ),
    URI_ATOMS,
)
PARAMETER_VALUES: st.SearchStrategy[str] = st.one_of(
    COMPACT_TOKENS, st.sampled_from(["", "a.b.c=d", "a.b", "%41.b.c", "a.b.c#x"]), URI_ATOMS
)
PARAMETERS: st.SearchStrategy[str] = st.one_of(
    COMPACT_TOKENS.map("jwt={}".format),
    PARAMETER_NAMES,
    st.tuples(PARAMETER_NAMES, PARAMETER_VALUES).map("=".join),
    st.tuples(PARAMETER_NAMES, PARAMETER_VALUES, PARAMETER_VALUES).map("=".join),
)
QUERIES: st.SearchStrategy[str] = st.lists(PARAMETERS, max_size=6).map("&".join)


def as_query(text: str) -> str:
    return "?" + text


# Starts other than "/" (shaped_uris starts half of its URIs with "/").
STARTS = st.sampled_from(
    [
        "//",
        "/\\",
        "\\",
        "",
        " /",
        "/./",
        "/../",
        "http://",
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "javascript:",
        "/schule/",
        "/SCHULE/",
        "/gym-nord/",
        "/other/",
        "/auth/",
        "/auth/?room=",
        "/auth/login?next=/",
    ]
)


@st.composite
def shaped_uris(draw: st.DrawFn, atoms: st.SearchStrategy[str] = URI_ATOMS) -> str:
    """A start, a path of tricky atoms, maybe a query of tricky parameters."""
    path = "".join(draw(st.lists(atoms, min_size=1, max_size=6)))
    uri = ("/" if draw(st.booleans()) else draw(STARTS)) + path
    if draw(st.booleans()):
        uri += "?" + draw(QUERIES)
    return uri


@st.composite
def room_like_uris(draw: st.DrawFn) -> str:
    """A plain room name with one tricky piece in it: most are rooms, some only just not."""
    tenant = draw(st.just("") | st.sampled_from(["/schule", "/Gym-Nord", "/unknown"]))
    tricky = draw(URI_ATOMS | st.sampled_from(ASCII_PUNCTUATION))
    room = draw(st.just("") | PLAIN) + tricky + draw(st.just("") | PLAIN)
    return tenant + "/" + room + draw(st.just("") | QUERIES.map(as_query))


@st.composite
def long_uris(draw: st.DrawFn) -> str:
    """Values at and beyond the length limits (room, URI, number of parameters)."""
    unit = draw(st.sampled_from(["a", "%41", "\N{FULLWIDTH LATIN CAPITAL LETTER J}", "/"]))
    kind = draw(st.sampled_from(["room", "uri", "parameters"]))
    if kind == "room":
        return "/" + unit * draw(st.integers(MAX_ROOM_LENGTH - 2, MAX_ROOM_LENGTH + 2))
    if kind == "uri":
        return "/room?x=" + unit * draw(st.integers(MAX_URI_LENGTH - 12, MAX_URI_LENGTH + 4))
    count = draw(st.integers(MAX_QUERY_PARAMETERS - 1, MAX_QUERY_PARAMETERS + 1))
    return "/room?" + "&".join(["a=1"] * count)


# Anything that might arrive where a room URI or a next= value is read.
URI_LIKE: st.SearchStrategy[str] = st.one_of(
    room_like_uris(),
    shaped_uris(),
    shaped_uris(RAW_ATOMS),
    long_uris(),
    st.text(ANY_CHARACTER, max_size=40),
    st.text(PRINTABLE_ASCII, max_size=40),
)
# The same, as a str from an HTTP request can be (see DECODED_CHARACTER).
DECODED_URI_LIKE: st.SearchStrategy[str] = st.one_of(
    room_like_uris(),
    shaped_uris(),
    shaped_uris(RAW_ATOMS),
    long_uris(),
    st.text(DECODED_CHARACTER, max_size=40),
    st.text(PRINTABLE_ASCII, max_size=40),
)
# Tenants as configured: lower-case plain names ("auth" would shadow the sidecar's pages).
TENANTS = st.sampled_from(
    [frozenset(), frozenset({"schule"}), frozenset({"schule", "gym-nord", "other"})]
)
# Room names a person types: mostly acceptable, with the characters that make it interesting.
# (Lists of characters, not st.text: text() merges an alphabet of several
# strategies into one range of code points, and the chosen characters would
# become as rare as any other.)
ROOM_NAMES: st.SearchStrategy[str] = st.lists(
    st.one_of(
        st.sampled_from(string.ascii_letters + string.digits + " -_.~!()+%,;=$"),
        st.sampled_from(TRICKY_CHARACTERS),
        DECODED_CHARACTER,
    ),
    min_size=1,
    max_size=24,
).map("".join)


@st.composite
def room_requests(draw: st.DrawFn) -> tuple[RoomRequest, frozenset[str]]:
    """A room request the parser accepted, and the tenants it was parsed with."""
    tenants = draw(TENANTS)
    prefix = draw(st.sampled_from(["", *sorted(tenants), *sorted(t.upper() for t in tenants)]))
    # Encoded as a browser might: all of it, or only what a path cannot hold raw.
    safe = draw(st.sampled_from(["", "-_.~", "-_.~!()+,;=$"]))
    path = ("/" + prefix if prefix else "") + "/" + quote(draw(ROOM_NAMES), safe=safe)
    query = draw(st.one_of(st.just(""), QUERIES.map(as_query)))
    try:
        return parse_room_uri(path + query, tenants), tenants
    except NotARoom:
        # Rare with these names; what the parser refuses has tests of its own.
        reject()


# -- what is checked -------------------------------------------------------------

ORIGIN = "https://meet.school.example"
# Characters that are no part of a room: a path segment's and XMPP nodeprep's.
NOT_IN_A_ROOM = frozenset("/\\?#&:'\"<>@")
# What the backend-safe name consists of: encodeURIComponent's output, lower-cased.
BACKEND_ALPHABET = frozenset(string.ascii_lowercase + string.digits + "-_.!~*'()%")


def jitsi_tokens(uri: str) -> list[str]:
    """The jwt= values as Jitsi's parseURLParams reads them: split on & and =, not decoded."""
    found = []
    for part in uri.partition("?")[2].split("&"):
        param = part.split("=")
        if param[0] == "jwt":
            found.append(param[1] if len(param) > 1 else "")
    return found


def assert_on_origin(location: str) -> None:
    """A path on the meet origin, whatever reads it: Python, yarl or a browser."""
    assert location.startswith("/"), location
    assert not location.startswith(("//", "/\\")), location
    # Printable ASCII only: no control character, no whitespace, nothing a browser folds.
    assert all(0x21 <= ord(ch) <= 0x7E for ch in location), location
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc) == ("", ""), location
    assert not URL(location).is_absolute(), location
    resolved = urlsplit(urljoin(ORIGIN + "/Mathe7b", location))
    assert (resolved.scheme, resolved.netloc) == ("https", "meet.school.example"), location
    # Browsers read "\" as "/" in an http(s) path.
    assert not parts.path.replace("\\", "/").startswith("//"), location


def assert_acceptable_room(request: RoomRequest, tenants: frozenset[str]) -> None:
    room = request.room
    assert room.strip(), room
    assert len(room) <= MAX_ROOM_LENGTH
    assert ".." not in room, room
    assert not room.startswith("."), room
    assert not NOT_IN_A_ROOM & set(room), room
    # As Prosody gets it too: a fullwidth apostrophe is "'", U+2025 is "..".
    folded = unicodedata.normalize("NFKC", room)
    assert not NOT_IN_A_ROOM & set(folded), room
    assert ".." not in folded, room
    assert not folded.startswith("."), room
    categories = {unicodedata.category(ch) for ch in room}
    assert not categories & {"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"}, room
    # The name Prosody sees: never the wildcard, never jicofo's, and already
    # lower-case ASCII (Prosody lowercases ASCII only).
    backend = request.backend_name
    assert WILDCARD not in backend, (room, backend)
    assert not backend.startswith(RESERVED_ROOM_PREFIXES), (room, backend)
    assert set(backend) <= BACKEND_ALPHABET, (room, backend)
    assert len(backend) < 1024, room  # Prosody's nodeprep holds no longer node
    assert request.tenant == "" or request.tenant in tenants


def assert_room_redirect(location: str, token: str) -> None:
    """Exactly one token, the one given, in the query and in a fragment of our own."""
    assert_on_origin(location)
    assert location.count("#") == 1, location
    before, _, fragment = location.partition("#")
    encoded = quote(token, safe="")
    assert fragment == f"jwt=%22{encoded}%22", location
    # As Jitsi reads the query, and as Python (yarl, aiohttp) does.
    assert jitsi_tokens(before) == [encoded], location
    assert URL(before).query.getall("jwt") == [token], location


# -- 1. the room URI parser --------------------------------------------------------


@examples(500)
@given(uri=room_like_uris() | URI_LIKE, tenants=TENANTS)
@example(uri="/%EF%BC%8A", tenants=frozenset())  # fullwidth "*"
@example(uri="/a%2A", tenants=frozenset())
@example(uri="/%EF%BC%BF%EF%BC%BFjicofo-health-check", tenants=frozenset())  # fullwidth "_"
@example(uri="/SCHULE/%EF%B9%A1", tenants=frozenset({"schule"}))  # small "*"
@example(uri="/%E2%80%8Bx", tenants=frozenset())
def test_a_uri_is_a_room_that_prosody_may_see_or_not_a_room(
    uri: str, tenants: frozenset[str]
) -> None:
    """Only NotARoom escapes; whatever is accepted is a room name every rule allows."""
    try:
        request = parse_room_uri(uri, tenants)
    except NotARoom:
        return
    assert_acceptable_room(request, tenants)
    assert len(request.other_parameters) + len(request.tokens) <= MAX_QUERY_PARAMETERS


@examples(500)
@given(uri=room_like_uris() | shaped_uris(), tenants=TENANTS)
@example(uri="/room?jwt=a.b.c=d&%6Awt=x.y.z&JWT=1.2.3&jwt", tenants=frozenset())
def test_tokens_are_read_as_jitsi_reads_them_and_look_alikes_never_travel_on(
    uri: str, tenants: frozenset[str]
) -> None:
    try:
        request = parse_room_uri(uri, tenants)
    except NotARoom:
        return
    assert list(request.tokens) == jitsi_tokens(uri)
    if request.token is not None:
        assert jitsi_tokens(uri) == [request.token]
    pieces = uri.partition("?")[2].split("&")
    remaining = iter(pieces)
    for piece in request.other_parameters:
        # Verbatim pieces of the query, in their order.
        assert piece in remaining, (uri, request.other_parameters)
        name = piece.partition("=")[0]
        # Neither Jitsi nor Python (decoding, in any case) would read a token from it.
        assert name != "jwt"
        assert unquote_plus(name).lower() != "jwt"


@examples(300)
@given(requested=room_requests(), token=COMPACT_TOKENS)
def test_a_room_location_parses_back_to_the_same_room(
    requested: tuple[RoomRequest, frozenset[str]], token: str
) -> None:
    """What the browser is sent to is the room the token was made for."""
    request, tenants = requested
    again = parse_room_uri(request.location_without_token(), tenants)
    assert (again.backend_name, again.room, again.tenant) == (
        request.backend_name,
        request.room,
        request.tenant,
    )
    assert again.other_parameters == request.other_parameters
    assert again.tokens == ()
    # The browser sends no fragment: what comes back after the redirect is the query.
    with_token = parse_room_uri(request.location_with_token(token).partition("#")[0], tenants)
    assert with_token.backend_name == request.backend_name
    assert with_token.other_parameters == request.other_parameters
    assert with_token.token == token


# -- 2. the redirects ----------------------------------------------------------------


@examples(400)
@given(requested=room_requests(), token=st.one_of(COMPACT_TOKENS, st.text(DECODED_CHARACTER)))
def test_every_redirect_is_a_path_on_the_origin_with_exactly_our_token(
    requested: tuple[RoomRequest, frozenset[str]], token: str
) -> None:
    request, _ = requested
    assert_room_redirect(request.location_with_token(token), token)
    without = request.location_without_token()
    assert_on_origin(without)
    assert "#" not in without
    assert jitsi_tokens(without) == []
    assert URL(without).query.getall("jwt", []) == []


@examples(200)
@given(token=COMPACT_TOKENS)
def test_the_fragment_gives_jitsi_the_token_itself(token: str) -> None:
    """Jitsi's web app decodes and JSON-parses a fragment value."""
    fragment = room_named("Mathe 7b").location_with_token(token).partition("#")[2]
    name, _, value = fragment.partition("=")
    assert (name, json.loads(unquote(value))) == ("jwt", token)


@examples(300)
@given(
    room=st.builds(RoomRequest, room=ROOM_NAMES, other_parameters=st.just(()), tokens=st.just(()))
)
def test_the_room_path_is_on_the_origin_whatever_the_room_holds(room: RoomRequest) -> None:
    """The path is built from the room alone, by percent-encoding: even a name never accepted."""
    assert_on_origin(room.location_without_token())
    assert_on_origin(room.location_with_token("a.b.c"))


@examples(300)
@given(requested=room_requests())
def test_the_login_page_sends_the_person_back_to_the_room(
    requested: tuple[RoomRequest, frozenset[str]],
) -> None:
    """login_location's next= survives the way aiohttp reads it, and safe_next keeps it."""
    request, tenants = requested
    location = login_location(request)
    assert_on_origin(location)
    url = URL(location)
    assert url.path == LOGIN_PATH
    assert list(url.query) == ["next"]
    assert safe_next(url.query["next"], tenants) == request.location_without_token()


def must_fall_back(value: str) -> bool:
    """A next= value no room and no start page could be: ``//x``, ``/\\x``, a scheme, ``@``,
    control characters (raw or encoded), whitespace (raw, or all of an encoded name)."""
    path = value.partition("?")[0]
    if path == START_PAGE:
        return False
    if not path.startswith("/") or path.startswith(("//", "/\\")):
        return True
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in value):
        return True
    name = unquote(path[1:], errors="replace")
    if not name.strip() or "/" in name:
        return True
    return any(ch in "@\\:" or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name)


@examples(500)
@given(value=DECODED_URI_LIKE)
@example(value="//evil.example")
@example(value="/\\evil.example")
@example(value="https://evil.example/")
@example(value="/%2F%2Fevil.example")
@example(value="/%09")
@example(value="/user@evil.example")
def test_next_falls_back_to_the_root_unless_it_is_rebuilt(value: str) -> None:
    """Without tenants every two-segment path is refused, which makes the rule simple."""
    location = safe_next(value)
    assert_on_origin(location)
    if must_fall_back(value):
        assert location == "/", (value, location)


@examples(500)
@given(
    value=st.one_of(DECODED_URI_LIKE, st.none(), st.text(ANY_CHARACTER, max_size=40)),
    tenants=TENANTS,
)
@example(value="/auth/?room=\ud800", tenants=frozenset())
def test_next_is_only_ever_a_location_the_sidecar_builds(
    value: str | None, tenants: frozenset[str]
) -> None:
    location = safe_next(value, tenants)
    assert_on_origin(location)
    assert jitsi_tokens(location) == []
    # Stable: what it gives is accepted back as itself.
    assert safe_next(location, tenants) == location
    if location in ("/", START_PAGE):
        return
    if location.startswith(START_PAGE + "?room="):
        room = room_named(unquote(location.removeprefix(START_PAGE + "?room=")))
        assert location == f"{START_PAGE}?room={quote(room.room, safe='')}"
        return
    # Otherwise a room location, rebuilt from a parsed room.
    assert parse_room_uri(location, tenants).location_without_token() == location


# -- 3. the Authorization parser --------------------------------------------------


def repeated(text: str, count: int) -> str:
    return text * count


def basic(scheme: str, text: str) -> str:
    return scheme + base64.b64encode(text.encode("utf-8")).decode("ascii")


SCHEMES = st.sampled_from(
    [
        "Basic ",
        "basic ",
        "BASIC ",
        "Basic  ",
        " Basic ",
        "Basic\t",
        "Bearer ",
        "Basic",
        "",
        "Digest ",
    ]
)
# User names and passwords a person might send, and the ones nobody should.
CREDENTIAL_TEXT: st.SearchStrategy[str] = st.one_of(
    st.text(string.ascii_letters + string.digits + " .:-", min_size=1, max_size=12),
    st.text(DECODED_CHARACTER, max_size=12),
    st.text(st.sampled_from(TRICKY_CHARACTERS), max_size=4),
    st.sampled_from(["", " ", "\x00", "a\x00", "\u3000", "\u2028", "anna", "anna:pw"]),
    st.builds(
        repeated,
        st.sampled_from(["a", " ", "\N{GRINNING FACE}"]),
        st.integers(250, 1030),
    ),
)


@st.composite
def headers(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["text", "pair", "pair", "pair", "bytes", "base64-ish", "long"]))
    if kind == "text":
        return draw(st.text(ANY_CHARACTER, max_size=40))
    scheme = "Basic " if draw(st.booleans()) else draw(SCHEMES)
    if kind == "pair":
        separator = draw(st.sampled_from([":", ":", "", "::", "\x00:"]))
        return basic(scheme, draw(CREDENTIAL_TEXT) + separator + draw(CREDENTIAL_TEXT))
    if kind == "bytes":
        encoded = base64.b64encode(draw(st.binary(max_size=40))).decode("ascii")
        mangle = draw(st.sampled_from(["", "strip", "urlsafe", "space", "junk"]))
        if mangle == "strip":
            encoded = encoded.rstrip("=")
        elif mangle == "urlsafe":
            encoded = encoded.replace("+", "-").replace("/", "_")
        elif mangle == "space":
            encoded = encoded[:4] + " " + encoded[4:]
        elif mangle == "junk":
            encoded += draw(st.sampled_from(TRICKY_CHARACTERS))
        return scheme + encoded
    if kind == "base64-ish":
        return scheme + draw(st.text(B64URL + "+/= \t.:", max_size=40))
    return scheme + "YTpi" * draw(st.integers(MAX_BASIC_HEADER_LENGTH // 4 - 3, 2000))


def assert_acceptable_credentials(credentials: Credentials) -> None:
    """Nothing that could be an anonymous or a malformed bind."""
    for value, limit in (
        (credentials.username, MAX_USERNAME_LENGTH),
        (credentials.password, MAX_PASSWORD_LENGTH),
    ):
        assert value, credentials
        assert value.strip(), credentials
        assert len(value) <= limit, credentials
        assert not any(unicodedata.category(ch) == "Cc" for ch in value), credentials
    assert credentials.username == credentials.username.strip(), credentials


@examples(500)
@given(header=headers())
@example(header="Basic OmI=")  # ":b", no user name
@example(header="Basic YTo=")  # "a:", an anonymous bind
@example(header="Basic YTog")  # "a: "
@example(header="Basic YToAYg==")  # "a:\0b"
def test_only_acceptable_credentials_come_out_of_an_authorization_header(header: str) -> None:
    try:
        credentials = parse_basic_authorization(header)
    except UnacceptableCredentials:
        return
    assert_acceptable_credentials(credentials)
    assert len(header) <= MAX_BASIC_HEADER_LENGTH
    # What LDAP is handed must be UTF-8: a Basic header only ever gives such text.
    credentials.username.encode("utf-8")
    credentials.password.encode("utf-8")


@examples(500)
@given(username=st.one_of(CREDENTIAL_TEXT, st.text(ANY_CHARACTER)), password=CREDENTIAL_TEXT)
def test_only_acceptable_credentials_pass_the_check(username: str, password: str) -> None:
    try:
        credentials = check_credentials(username, password)
    except UnacceptableCredentials:
        return
    assert_acceptable_credentials(credentials)
    assert credentials == Credentials(username, password)
    # Text an LDAP library can send: no lone surrogate (an undecodable byte).
    credentials.username.encode("utf-8")
    credentials.password.encode("utf-8")


NO_CONTROL_CHARACTER = st.characters(codec="utf-8", exclude_categories=["Cc"])
ACCEPTABLE_USERNAMES: st.SearchStrategy[str] = st.one_of(
    st.text(NO_CONTROL_CHARACTER, min_size=1, max_size=40),
    st.builds(
        repeated,
        st.sampled_from(["a", "\N{GRINNING FACE}", "\u00fc"]),
        st.integers(1, MAX_USERNAME_LENGTH),
    ),
).filter(lambda name: ":" not in name and name.strip() == name and name != "")
ACCEPTABLE_PASSWORDS: st.SearchStrategy[str] = st.one_of(
    st.text(NO_CONTROL_CHARACTER, min_size=1, max_size=40),
    st.builds(
        repeated,
        st.sampled_from([":", "a", "\N{GRINNING FACE}", " :"]),
        st.integers(1, MAX_PASSWORD_LENGTH // 2),
    ),
    st.tuples(st.text(max_size=5), st.text(max_size=5)).map(":".join),
).filter(
    lambda password: (
        password.strip() != "" and not any(unicodedata.category(ch) == "Cc" for ch in password)
    )
)


@examples(300)
@given(
    username=ACCEPTABLE_USERNAMES,
    password=ACCEPTABLE_PASSWORDS,
    scheme=st.sampled_from(["Basic ", "basic ", "BASIC ", "  Basic ", "Basic   "]),
)
@example(
    username="\N{GRINNING FACE}" * MAX_USERNAME_LENGTH,
    password="\N{GRINNING FACE}" * MAX_PASSWORD_LENGTH,
    scheme="Basic ",
)
@example(username="anna", password=":pass:word:", scheme="Basic ")
def test_a_well_formed_basic_header_gives_back_exactly_its_pair(
    username: str, password: str, scheme: str
) -> None:
    """Only the first colon splits; the longest acceptable pair fits the header limit."""
    header = basic(scheme, f"{username}:{password}")
    assert parse_basic_authorization(header) == Credentials(username, password)


@examples(400)
@given(username=CREDENTIAL_TEXT.filter(lambda name: ":" not in name), password=CREDENTIAL_TEXT)
def test_a_basic_header_is_judged_as_the_pair_it_carries(username: str, password: str) -> None:
    """The header adds no way in and takes none away: no length limit cuts an acceptable pair."""
    header = basic("Basic ", f"{username}:{password}")
    expected: Credentials | None
    parsed: Credentials | None
    try:
        expected = check_credentials(username, password)
    except UnacceptableCredentials:
        expected = None
    try:
        parsed = parse_basic_authorization(header)
    except UnacceptableCredentials:
        parsed = None
    assert parsed == expected


# -- 4. session cookies and guest links ---------------------------------------------

NOW = 1_700_000_000
IDLE_TIMEOUT = 600
LIFETIME = 3600
SESSION_KEY = Secret(b"s" * 32)
OTHER_KEY = Secret(b"o" * 48)


def session_cookies(*keys: Secret, clock: float = NOW) -> SessionCookies:
    settings_ = SessionSettings(
        keys=keys, idle_timeout=IDLE_TIMEOUT, lifetime=LIFETIME, role_refresh=300
    )
    return SessionCookies(settings_, clock=lambda: clock)


COOKIES = session_cookies(SESSION_KEY)


def latin1(data: bytes) -> str:
    return data.decode("latin-1")


PEOPLE = st.builds(
    Person,
    user_id=st.text(DECODED_CHARACTER, min_size=1, max_size=20),
    display_name=st.text(DECODED_CHARACTER, max_size=80),
    email=st.just("anna.beispiel@school.example"),
    groups=st.just(frozenset[str]()),
)
ROLES = st.sampled_from(["pupil", "teacher", "guest"])
COOKIE_CHARACTERS = B64URL + "=+/"


@st.composite
def sealed(draw: st.DrawFn, cookies: SessionCookies = COOKIES) -> tuple[Session, str]:
    """A session and the cookie the sidecar sealed it into (lengths, hence padding, vary)."""
    session = cookies.new(draw(PEOPLE), draw(ROLES))
    return session, cookies.seal(session)


@examples(400)
@given(
    cookie=st.one_of(
        st.none(),
        st.text(ANY_CHARACTER, max_size=200),
        st.binary(max_size=400).map(latin1),
        st.text(COOKIE_CHARACTERS, max_size=500),
        # Fernet's version byte and a plausible timestamp, then anything.
        st.text(COOKIE_CHARACTERS, max_size=400).map("gAAAAABl{}".format),
    )
)
def test_a_cookie_the_sidecar_did_not_seal_opens_to_nothing(cookie: str | None) -> None:
    assert COOKIES.open(cookie) is None


@examples(50)
@given(
    made=sealed(),
    filler=st.sampled_from([".", "=", " ", "A", "\x00", "\N{GRINNING FACE}"]),
    extra=st.integers(1, 3 * MAX_COOKIE_LENGTH),
)
def test_an_overlong_cookie_opens_to_nothing(
    made: tuple[Session, str], filler: str, extra: int
) -> None:
    """Even one that holds a real cookie: the length is judged before anything is decoded."""
    _, cookie = made
    overlong = (cookie + filler * MAX_COOKIE_LENGTH)[: MAX_COOKIE_LENGTH + extra]
    assert COOKIES.open(overlong) is None
    assert COOKIES.open(cookie * (1 + MAX_COOKIE_LENGTH // len(cookie))) is None


@examples(20)
@given(made=sealed())
def test_no_truncated_cookie_opens(made: tuple[Session, str]) -> None:
    session, cookie = made
    assert COOKIES.open(cookie) == session
    for end in range(len(cookie)):
        assert COOKIES.open(cookie[:end]) is None, end


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "delete", "insert", "replace", "swap"]),
        # Where, modulo the length: often among the last characters, where base64
        # has unused bits and padding.
        st.integers(-4, -1) | st.integers(0, 1000),
        st.integers(0, 7),  # which bit
        st.sampled_from((*TRICKY_CHARACTERS, *COOKIE_CHARACTERS)),
    ),
    min_size=1,
    max_size=3,
)


def mutate(cookie: str, mutations: list[tuple[str, int, int, str]]) -> str:
    for kind, where, bit, character in mutations:
        if not cookie:
            return character
        index = where % len(cookie)
        head, here, tail = cookie[:index], cookie[index], cookie[index + 1 :]
        if kind == "flip":
            cookie = head + chr(ord(here) ^ (1 << bit)) + tail
        elif kind == "delete":
            cookie = head + tail
        elif kind == "insert":
            cookie = head + character + here + tail
        elif kind == "replace":
            cookie = head + character + tail
        else:
            other = (index + 1 + bit) % len(cookie)
            characters = list(cookie)
            characters[index], characters[other] = characters[other], characters[index]
            cookie = "".join(characters)
    return cookie


@examples(300)
@given(made=sealed(), mutations=MUTATIONS)
def test_a_changed_cookie_never_opens(
    made: tuple[Session, str], mutations: list[tuple[str, int, int, str]]
) -> None:
    """Only the one spelling the sidecar sealed opens. Fernet alone reads base64
    leniently (characters outside the alphabet skipped, "+" read as "-", unused
    low bits ignored); the sidecar does not."""
    _, cookie = made
    changed = mutate(cookie, mutations)
    opened = COOKIES.open(changed)
    assert opened is None or changed == cookie, (changed, opened)


@examples(50)
@given(made=sealed(session_cookies(OTHER_KEY)))
def test_only_a_listed_key_opens_a_cookie(made: tuple[Session, str]) -> None:
    session, cookie = made
    assert COOKIES.open(cookie) is None
    # Listed after the current key (a rotation), the other key still opens it.
    assert session_cookies(SESSION_KEY, OTHER_KEY).open(cookie) == session


@examples(200)
@given(made=sealed(), later=st.integers(0, 3 * LIFETIME))
def test_a_session_ends_on_the_server_when_it_is_idle_too_long(
    made: tuple[Session, str], later: int
) -> None:
    session, cookie = made
    opened = session_cookies(SESSION_KEY, clock=NOW + later).open(cookie)
    assert opened == (session if later < IDLE_TIMEOUT else None)


GUEST_KEY = Secret(b"g" * 40)
LINKS = GuestLinks(GuestSettings(keys=(GUEST_KEY,)), clock=lambda: NOW)


def open_link(value: str) -> GuestLink:
    return asyncio.run(LINKS.open(value))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def json_payload(fields: Mapping[str, object]) -> str:
    return b64(json.dumps(fields).encode("utf-8"))


def long_link(length: int) -> str:
    return "a" * length + ".b"


LINK_VALUES: st.SearchStrategy[str] = st.one_of(
    st.text(ANY_CHARACTER, max_size=80),
    st.tuples(st.text(ANY_CHARACTER, max_size=40), st.text(ANY_CHARACTER, max_size=40)).map(
        ".".join
    ),
    st.tuples(st.text(COOKIE_CHARACTERS, max_size=80), st.text(COOKIE_CHARACTERS, max_size=50)).map(
        ".".join
    ),
    # A well-formed payload with a made-up signature.
    st.tuples(
        st.dictionaries(
            st.sampled_from(["link_id", "room", "expires_at", "inviter_name", "inviter_id", "x"]),
            st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans()),
        ).map(json_payload),
        st.binary(min_size=32, max_size=32).map(b64),
    ).map(".".join),
    st.integers(MAX_LINK_LENGTH - 2, MAX_LINK_LENGTH + 2).map(long_link),
)


@examples(300)
@given(value=LINK_VALUES)
def test_only_invalid_link_escapes_for_any_guest_link(value: str) -> None:
    try:
        link = open_link(value)
    except InvalidLink:
        return
    raise AssertionError(f"opened a link the sidecar never signed: {link}")


def signed_value(payload: str) -> str:
    """``payload.signature`` under the sidecar's own key, for any payload at all.

    (path_of signs only well-formed links; one signed by another version of the
    sidecar must still give InvalidLink, not an error or a malformed link.)
    """
    key = _signing_key(GUEST_KEY)
    return payload + "." + b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def json_containers(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.lists(children, max_size=3) | st.dictionaries(
        st.text(max_size=4), children, max_size=3
    )


JSON_VALUES: st.SearchStrategy[object] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),  # NaN and Infinity too, which json reads back
        st.text(ANY_CHARACTER, max_size=12),  # lone surrogates travel as \ud800
        ROOM_NAMES,
    ),
    json_containers,
    max_leaves=6,
)
FIELD_NAMES = st.sampled_from(["link_id", "room", "expires_at", "inviter_name", "inviter_id", "x"])
# What a signed payload might hold, as JSON text (and some that is no JSON).
SIGNED_TEXTS: st.SearchStrategy[str] = st.one_of(
    JSON_VALUES.map(json.dumps),
    st.dictionaries(FIELD_NAMES, JSON_VALUES).map(json.dumps),
    # The right fields with the right types: these open, unless expired or not a room.
    st.fixed_dictionaries(
        {
            "link_id": st.text(B64URL, max_size=8),
            "room": ROOM_NAMES,
            "expires_at": st.integers(NOW - 10, NOW + 86400),
            "inviter_name": st.text(DECODED_CHARACTER, max_size=8),
        },
        optional={"inviter_id": st.text(min_size=1, max_size=8)},
    ).map(json.dumps),
    # The right fields, some with a wrong type.
    st.fixed_dictionaries(
        {
            "link_id": st.text(B64URL, max_size=8) | JSON_VALUES,
            "room": ROOM_NAMES | JSON_VALUES,
            "expires_at": st.integers(NOW - 10, NOW + 86400) | JSON_VALUES,
            "inviter_name": st.text(DECODED_CHARACTER, max_size=8) | JSON_VALUES,
        },
        optional={"inviter_id": st.text(max_size=8), "x": JSON_VALUES},
    ).map(json.dumps),
    # Not JSON; a number too big for a float; lone surrogates, escaped and raw.
    st.sampled_from(["", "{", "[1,", '{"expires_at": 1e999}', '{"room": "\\ud800"}', '"\udcff"']),
)


@examples(300)
@given(text=SIGNED_TEXTS)
def test_a_signed_payload_of_any_shape_opens_to_a_sound_link_or_to_invalid_link(
    text: str,
) -> None:
    """Past the signature: any payload gives a well-typed, current link or InvalidLink."""
    payload = b64(text.encode("utf-8", "surrogatepass"))
    try:
        link = open_link(signed_value(payload))
    except InvalidLink:
        return
    fields = json.loads(text)
    assert (link.link_id, link.room, link.expires_at, link.inviter_name) == (
        fields["link_id"],
        fields["room"],
        fields["expires_at"],
        fields["inviter_name"],
    )
    assert all(isinstance(value, str) for value in (link.link_id, link.room, link.inviter_name))
    assert type(link.expires_at) is int
    assert link.expires_at > NOW
    assert link.inviter_id == ""  # never taken from the link itself
    assert_acceptable_room(room_named(link.room), frozenset())


@st.composite
def signed_links(draw: st.DrawFn) -> tuple[GuestLink, str]:
    room = draw(ROOM_NAMES)
    try:
        room_named(room)
    except NotARoom:
        reject()
    link = GuestLink(
        link_id=draw(st.text(B64URL, min_size=1, max_size=16)),
        room=room,
        expires_at=NOW + draw(st.integers(1, 90 * 86400)),
        inviter_name=draw(st.text(DECODED_CHARACTER, max_size=40)),
    )
    return link, LINKS.path_of(link).removeprefix(PATH_PREFIX)


@examples(200)
@given(signed=signed_links(), mutations=MUTATIONS)
def test_a_changed_guest_link_never_opens(
    signed: tuple[GuestLink, str], mutations: list[tuple[str, int, int, str]]
) -> None:
    """Links, unlike cookies, are read strictly: only the very spelling signed opens."""
    link, value = signed
    assert open_link(value) == link
    changed = mutate(value, mutations)
    assume(changed != value)
    try:
        opened = open_link(changed)
    except InvalidLink:
        return
    raise AssertionError(f"a changed link opened: {changed!r} -> {opened}")


# -- names shown in a meeting (sidecar.names) ---------------------------------------------

# What a padded, turned-around or piled-up name is made of, beside any character.
UNSEEN = (
    "\u3164\uffa0\u115f\u1160\u2800\u034f\u17b4\ufe0f\U000e0101\u200b\u200d\u2060\ufeff\u00ad"
    "\u202e\u2066\u061c\n\r\t\x1b\x85\u2028\u2029"
)
NAME_TRICKS = (
    UNSEEN
    + "\u00a0\u2000\u2007\u200a\u202f\u205f\u3000 "
    + "\u0301\u0302\u0323\u0351\u05b8\u05c1\u094d\u20dd"
    + "aZ\u00fc7\u674e\u05e9\u0915"
)
NAME_TEXT = st.text(st.one_of(st.sampled_from(NAME_TRICKS), st.characters()), max_size=300)


def assert_shows_as_written(name: str, *, spaces_in_a_row: int) -> None:
    """Every character of ``name`` can be seen, and nothing piles up or pads."""
    assert name == unicodedata.normalize("NFC", name)
    assert name == name.strip()
    assert any(unicodedata.category(character)[0] in "LN" for character in name), name
    spaces = marks = 0
    previous = " "
    for character in unicodedata.normalize("NFD", name):
        category = unicodedata.category(character)
        assert category not in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}, repr(name)
        assert character not in UNSEEN, repr(name)
        if category[0] == "M":
            marks += 1
            assert previous != " ", repr(name)
            assert marks <= MAX_MARKS_PER_LETTER, repr(name)
            continue
        marks = 0
        assert category != "Zs" or character == " ", repr(name)
        spaces = spaces + 1 if character == " " else 0
        assert spaces <= spaces_in_a_row, repr(name)
        previous = character


@examples(500)
@given(value=st.one_of(st.none(), NAME_TEXT))
@example(value="Anna M\u00fcller" + "\u00a0" * 52 + "x")
@example(value="\u3164\u2800\ufe0f")
@example(value="Max\u202e\nSchmidt")
@example(value="Z" + "\u0301" * 60)
@example(value="x" * 13_000)
def test_a_directory_name_is_shown_cleaned(value: str | None) -> None:
    shown = display_name(value, "max.schmidt")
    assert len(shown) <= MAX_DISPLAY_NAME
    assert_shows_as_written(shown, spaces_in_a_row=1)
    assert display_name(shown, "max.schmidt") == shown  # clean already: left alone


@examples(500)
@given(typed=NAME_TEXT, suffix=st.sampled_from(["(Gast)", "(guest)"]))
@example(typed="Anna M\u00fcller" + "\u00a0" * 52 + "x", suffix="(Gast)")
@example(typed="Anna  M\u00fcller", suffix="(Gast)")
@example(typed="Nguy\u1ec5n", suffix="(Gast)")
def test_a_guest_name_is_refused_or_shown_with_its_suffix(typed: str, suffix: str) -> None:
    try:
        name = guest_name(typed)
    except NameRefused:
        return
    assert len(name) <= MAX_GUEST_NAME
    assert_shows_as_written(name, spaces_in_a_row=MAX_SPACES_IN_A_ROW)
    assert with_suffix(name, suffix) == f"{name} {suffix}"


@examples(300)
@given(name=NAME_TEXT.filter(str.strip), suffix=st.sampled_from(["(Gast)", "(guest)"]))
def test_the_suffix_outlasts_any_cut(name: str, suffix: str) -> None:
    shown = with_suffix(name, suffix, limit=40)
    assert shown.endswith(" " + suffix)
    assert len(shown) <= 40


# -- log lines (sidecar.web.logs) --------------------------------------------------------------

LOG_TEXT = st.text(st.one_of(st.sampled_from(UNSEEN + '"\\= '), st.characters()), max_size=200)


@examples(300)
@given(
    message=LOG_TEXT,
    fields=st.dictionaries(st.sampled_from(["user", "room", "path", "reason"]), LOG_TEXT),
)
def test_a_log_line_is_one_line_whatever_it_carries(message: str, fields: dict[str, str]) -> None:
    plain = render_plain(1.7e9, "INFO", "sidecar.web.pages", message, fields)
    assert plain.isprintable(), repr(plain)  # no line break, control or direction character
    assert plain.startswith("2023-11-14T22:13:20.000Z INFO sidecar.web.pages: ")
    document = render_json(1.7e9, "INFO", "sidecar.web.pages", message, fields)
    assert document.isascii()
    assert document.isprintable()
    assert json.loads(document)["message"] == message
