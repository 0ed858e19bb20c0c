"""Bad input: a clear answer, never a 500, never a 200 without a good password,
never a redirect off the meet origin."""

from __future__ import annotations

import base64
import http.client

import pytest

from demo.school import SCHOOL
from sidecar.web.app import PAGE_HEADER, REDIRECT_HEADER
from testbed.stack import Reply, Stack, UnixHTTPConnection, request, token_in

TEACHER = SCHOOL.teachers[0]


def basic_header(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


GOOD = basic_header(f"{TEACHER.uid}:{TEACHER.password}".encode())


def assert_on_origin(location: str | None) -> None:
    if location is None:
        return
    assert location.startswith("/"), location
    assert not location.startswith("//"), location
    assert "\\" not in location
    assert "\r" not in location
    assert "\n" not in location


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        basic_header(b"\xc3\x28:\xa0\xa1"),
        basic_header(TEACHER.uid.encode() + b":"),
        basic_header(b":" + TEACHER.password.encode()),
        basic_header(TEACHER.uid.encode() + b":" + b" " * 8),
        basic_header(TEACHER.uid.encode() + b"\x00:" + TEACHER.password.encode()),
        basic_header(TEACHER.uid.encode() + b":" + TEACHER.password.encode() + b"\x00"),
        basic_header(b"*:" + TEACHER.password.encode()),
        basic_header(b")(uid=*:" + TEACHER.password.encode()),
        basic_header(b"\\00:" + TEACHER.password.encode()),
        basic_header(TEACHER.uid[:3].encode() + b"*:" + TEACHER.password.encode()),
        "Bearer " + "x" * 50,
        "Basic " + "A" * 6000,
    ],
)
def test_bad_authorization_through_nginx(
    stack: Stack, basic_stack: Stack, authorization: str
) -> None:
    reply = basic_stack.get("/Mathe7b", {"Authorization": authorization})
    assert reply.status == 401
    assert (reply.header("WWW-Authenticate") or "").startswith("Basic ")
    assert reply.header("Location") is None
    # With the login form first: unreadable credentials are no credentials (the
    # form), readable wrong ones get a new Basic challenge.
    reply = stack.get("/Mathe7b", {"Authorization": authorization})
    if reply.status == 302:
        assert reply.header("Location") == "/auth/login?next=%2FMathe7b"
    else:
        assert reply.status == 401
        assert (reply.header("WWW-Authenticate") or "").startswith("Basic ")


BAD_URIS = [
    "",
    "/",
    "/auth/verify",
    "/..",
    "/%2e%2e",
    "/../etc/passwd",
    "/a/../b",
    "/room%2Fother",
    "/room%2fother",
    "//evil.example/x",
    "/\\evil.example",
    "/%5Cevil.example",
    "https://evil.example/Mathe7b",
    "/%2F%2Fevil.example",
    "/%0d%0aLocation:%20https://evil.example",
    "/room%00",
    "/%ff",
    "/" + "a" * 10_000,
    "/Mathe7b?" + "x" * 10_000,
    "/Mathe7b?jwt=a#b",
]


@pytest.mark.parametrize("uri", BAD_URIS)
def test_bad_original_uri_at_the_sidecar(stack: Stack, uri: str) -> None:
    reply = stack.sidecar.verify(uri, {"Authorization": GOOD})
    assert reply.status in (401, 403)
    assert reply.header(REDIRECT_HEADER) is None
    assert reply.header(PAGE_HEADER) == "not-a-room"


def test_missing_original_uri_at_the_sidecar(stack: Stack) -> None:
    reply = request(
        UnixHTTPConnection(stack.sidecar.socket_path), "/auth/verify", {"Authorization": GOOD}
    )
    assert reply.status == 403
    assert reply.header(PAGE_HEADER) == "not-a-room"


@pytest.mark.parametrize(
    "path",
    [
        "//evil.example/x",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/..%2F..%2Fetc",
        "/Mathe7b/..",
        "/Mathe7b?next=//evil.example",
        "/" + "a" * 3000,
        "/%00",
        "/%ff%fe",
    ],
)
def test_odd_paths_through_nginx(stack: Stack, path: str) -> None:
    reply: Reply = stack.get(path, {"Authorization": GOOD})
    assert reply.status != 500
    assert reply.status < 500 or reply.status == 503
    assert_on_origin(reply.header("Location"))
    if reply.status == 302:
        assert "evil.example" not in (reply.header("Location") or "").split("?")[0]


def test_verify_answers_only_200_401_403(stack: Stack) -> None:
    cases = [
        ("/Mathe7b", {}),
        ("/Mathe7b", {"Authorization": GOOD}),
        ("/Mathe7b", {"Authorization": "garbage"}),
        ("/nix/da", {"Authorization": GOOD}),
        ("/Mathe7b", {"Authorization": basic_header(b"hans:x")}),
    ]
    for uri, headers in cases:
        assert stack.sidecar.verify(uri, headers).status in (200, 401, 403)


@pytest.mark.parametrize(
    ("path", "authenticated"),
    [
        ("/Mathe7b?x=" + "%41" * 1300, False),
        ("/Mathe7b?x=" + "a" * 3900, True),
        # 113 x 漢: a node of 1017 bytes, just short of what Prosody holds.
        ("/" + "%E6%BC%A2" * 113, True),
        ("/" + "%E6%BC%A2" * 113 + "?x=" + "%41" * 900, False),
    ],
)
def test_long_but_valid_room_uris_never_get_a_500(
    stack: Stack, path: str, authenticated: bool
) -> None:
    headers = {"Authorization": GOOD} if authenticated else {}
    reply = stack.get(path, headers)
    assert reply.status == 302
    location = reply.header("Location") or ""
    assert_on_origin(location)
    assert location.startswith("/auth/login?next=" if not authenticated else path.split("?")[0])


def test_the_verify_location_is_internal(stack: Stack) -> None:
    reply = stack.get("/_jitsi_auth_sidecar/verify", {"Authorization": GOOD})
    assert reply.status == 404
    assert reply.header("X-Jitsi-Auth-Redirect") is None


def test_client_cannot_choose_the_headers_the_sidecar_trusts(stack: Stack) -> None:
    spoofed = {
        "Authorization": GOOD,
        "X-Original-URI": "/Physik",
        "X-Real-IP": "203.0.113.9",
    }
    reply = stack.get("/Mathe7b", spoofed)
    assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")


def test_two_tokens_are_never_enough(stack: Stack) -> None:
    """Jitsi reads the last jwt=; the sidecar accepts exactly one, its own."""
    own = stack.get("/Mathe7b", {"Authorization": GOOD}).header("Location") or ""
    token = token_in(own)
    for uri in (f"/Mathe7b?jwt={token}&jwt=forged", f"/Mathe7b?jwt=forged&jwt={token}"):
        reply = stack.get(uri, {"Authorization": GOOD})
        assert reply.status == 302
        token_in(reply.header("Location") or "")  # one jwt= in the query, the same in the fragment


@pytest.mark.parametrize(
    "headers",
    [
        {"Accept-Language": "de\x01"},
        {"Authorization": GOOD + "\x01"},
        {"Authorization": "Basic \x7f"},
        {"Cookie": "jitsi_auth_session=abc\x01"},
    ],
)
def test_control_characters_in_headers_never_get_a_500(
    stack: Stack, headers: dict[str, str]
) -> None:
    for path in ("/Mathe7b", "/auth/login?next=%2FMathe7b"):
        reply = stack.get(path, headers)
        assert reply.status in (200, 302, 401), (path, reply.status)
    # The sidecar never saw (or logged) the raw value.
    assert "\\x01" not in stack.sidecar.log()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded; charset=bogus",
        "application/x-www-form-urlencoded; charset=utf-16",
        "multipart/form-data",
    ],
)
def test_unreadable_forms_are_a_400(stack: Stack, content_type: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", stack.nginx.port, timeout=20)
    for path in ("/auth/login", "/auth/logout"):
        reply = request(
            connection, path, {"Content-Type": content_type}, method="POST", body=b"a=b"
        )
        assert reply.status == 400, (path, reply.status)
    assert "Traceback" not in stack.sidecar.log()
