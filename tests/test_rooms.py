"""Room URIs: which room, the backend-safe name, and redirects that stay on the origin."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest

from demo.school import SCHOOL
from sidecar.rooms import NotARoom, backend_safe_room_name, parse_room_uri, room_named
from testbed.stack import Stack, basic_auth


@pytest.mark.parametrize(
    ("room", "expected"),
    [
        ("Mathe7b", "mathe7b"),
        ("Mathe 7b", "mathe%207b"),
        ("Übung", "%c3%bcbung"),
        ("100%", "100%25"),
        ("\uff2d\uff41\uff54\uff48\uff45", "mathe"),  # NFKC folds fullwidth letters
        ("ﬁzik", "fizik"),
        ("it's(1)!", "it's(1)!"),
    ],
)
def test_backend_safe_room_name(room: str, expected: str) -> None:
    assert backend_safe_room_name(room) == expected


def test_parse_keeps_other_parameters_and_collects_tokens() -> None:
    request = parse_room_uri("/Mathe%207b?lang=de&jwt=old&config.startWithAudioMuted=true&jwt=x")
    assert request.room == "Mathe 7b"
    assert request.backend_name == "mathe%207b"
    assert request.tokens == ("old", "x")
    assert request.other_parameters == ("lang=de", "config.startWithAudioMuted=true")
    assert request.location_with_token("T.O.K") == (
        "/Mathe%207b?lang=de&config.startWithAudioMuted=true&jwt=T.O.K#jwt=%22T.O.K%22"
    )


@pytest.mark.parametrize(
    "query",
    ["%6Awt=a.b.c", "%6awt=a.b.c", "JWT=a.b.c", "jwt[]=a.b.c", "jwt%00=a.b.c", "j%77t=a.b.c"],
)
def test_names_jitsi_does_not_read_as_jwt_are_no_token_and_are_dropped(query: str) -> None:
    """Jitsi's parseURLParams never decodes a parameter name: these carry no token for it."""
    request = parse_room_uri(f"/room?lang=de&{query}")
    assert request.tokens == ()
    assert request.token is None
    assert request.other_parameters == ("lang=de",)


@pytest.mark.parametrize(
    ("query", "tokens"),
    [
        ("jwt=a.b.c", ("a.b.c",)),
        ("jwt=a.b.c=d", ("a.b.c",)),  # the value ends at the next "="
        ("jwt=a%2Eb.c", ("a%2Eb.c",)),  # and is not decoded
        ("jwt", ("",)),
    ],
)
def test_token_values_are_read_as_jitsi_reads_them(query: str, tokens: tuple[str, ...]) -> None:
    assert parse_room_uri(f"/room?{query}").tokens == tokens


@pytest.mark.parametrize(
    "query",
    ["jwt=a.b.c&jwt=a.b.c", "jwt=a%2Eb.c", "jwt=a.b.c%20", "jwt=a.b", "jwt=a.b.c.d", "jwt=", "x=1"],
)
def test_only_one_well_formed_token_counts(query: str) -> None:
    assert parse_room_uri(f"/room?{query}").token is None


def test_one_well_formed_token_counts() -> None:
    assert parse_room_uri("/room?x=1&jwt=aB-_.c0.d_").token == "aB-_.c0.d_"


@pytest.mark.parametrize(
    "segment",
    [
        "*",
        "%2A",
        "%2a",
        "%EF%BC%8A",  # fullwidth asterisk: NFKC makes it "*"
        "%EF%B9%A1",  # small asterisk, likewise
        "a*b",
        "**",
        "__jicofo-health-check",
        "__Jicofo-Health-Check-1234",
        "%EF%BC%87",  # fullwidth apostrophe: NFKC makes it "'", which XMPP refuses
        "%E2%80%A5",  # two dot leader: NFKC makes it ".."
        "%EF%BC%A0x",  # fullwidth commercial at
    ],
)
def test_names_prosody_treats_specially_are_not_rooms(segment: str) -> None:
    with pytest.raises(NotARoom):
        parse_room_uri(f"/{segment}")


def test_redirect_path_encodes_everything_unusual() -> None:
    request = parse_room_uri("/%C3%9Cbung%20(Gruppe%201)")
    assert request.room == "Übung (Gruppe 1)"
    assert request.path == "/%C3%9Cbung%20%28Gruppe%201%29"
    assert request.location_with_token("t").startswith("/%C3%9Cbung")


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "/",
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/room",
        "evil.example",
        "/a/b",
        "/..",
        "/%2e%2e",
        "/room%2Fother",
        "/room%5Cother",
        "/%2F%2Fevil.example",
        "/%00",
        "/room%0d%0aSet-Cookie:x",
        "/%20%20",
        "/%ff%fe",
        "/room name",
        "/room\r\nX: y",
        "/" + "a" * 10_000,
        "/room?" + "&".join(f"p{i}=1" for i in range(100)),
        "/.hidden",
        "/a@evil.example",
        "/room#fragment",
        "/100%",
        "/a%20b%",
        "/a%2",
        "/%zz",
    ],
)
def test_not_a_room(uri: str) -> None:
    with pytest.raises(NotARoom):
        parse_room_uri(uri)


def test_every_accepted_room_redirects_to_a_single_slash_path() -> None:
    for uri in ["/Mathe7b", "/%40x", "/x%3Fy", "/100%25", "/a.b", "/%E2%80%8Bz"]:
        try:
            request = parse_room_uri(uri)
        except NotARoom:
            continue
        location = request.location_with_token("t")
        assert location.startswith("/")
        assert not location.startswith("//")
        assert "\\" not in location


def test_a_typed_room_name_that_is_no_text_is_not_a_room() -> None:
    with pytest.raises(NotARoom):
        room_named("Mathe\udcff")


@pytest.mark.parametrize(
    "room",
    [
        "Mathe\U0001ccf7",  # unassigned in this server's tables, known to newer browsers
        "\ua7cb7b",
        "\U000e0080",  # never assigned
    ],
)
def test_characters_this_server_does_not_know_are_not_a_room(room: str) -> None:
    """Unassigned here (category Cn), the browser may know and normalise them:
    the token would name one room and the browser join another."""
    assert any(unicodedata.category(character) == "Cn" for character in room)
    with pytest.raises(NotARoom):
        parse_room_uri("/" + quote(room))
    with pytest.raises(NotARoom):
        room_named(room)


def test_names_prosody_cannot_hold_are_not_a_room() -> None:
    """Prosody's nodeprep refuses a node of 1024 bytes or more (200 x ü is 1200)."""
    with pytest.raises(NotARoom):
        room_named("ü" * 200)
    with pytest.raises(NotARoom):
        room_named("ü" * 170 + "a" * 4)  # 1024 bytes
    longest = room_named("ü" * 170 + "a" * 3)
    assert len(longest.backend_name) == 1023
    assert len(room_named("a" * 200).backend_name) == 200


@pytest.mark.parametrize(
    "room", ["Mathe\U0001ccf7", "\ua7cb7b", "ü" * 200], ids=["U+1CCF7", "U+A7CB", "200 x ü"]
)
def test_rooms_prosody_cannot_hold_get_the_not_a_room_page(stack: Stack, room: str) -> None:
    teacher = SCHOOL.teachers[0]
    reply = stack.get("/" + quote(room), basic_auth(teacher.uid, teacher.password))
    assert reply.status == 404
    assert "ist kein Raum" in reply.body
