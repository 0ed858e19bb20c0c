"""The Jitsi-rules checker itself: tokens built by hand, one broken rule each."""

from __future__ import annotations

import copy
import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.jitsi_rules import JitsiSite, TokenRefused, admit, prosody_room_name

SECRET = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
OTHER_SECRET = b"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
NOW = 1_700_000_000
LESSON = 3 * 3600

SITE = JitsiSite(
    app_id="school-meet",
    app_secret=SECRET,
    subject="meet.school.example",
    accepted_audiences=("school-meet",),
)
ROOM_SEGMENT = "Mathe%207b"

Claims = dict[str, Any]


def teacher_claims() -> Claims:
    return {
        "iss": "school-meet",
        "aud": "school-meet",
        "sub": "meet.school.example",
        "room": "mathe%207b",
        "iat": NOW - 30,
        "nbf": NOW - 30,
        "exp": NOW + LESSON,
        "moderator": True,
        "context": {
            "user": {
                "id": "t.lehrer",
                "name": "Tina Lehrer",
                "email": "t.lehrer@school.example",
                "affiliation": "owner",
                "moderator": "true",
            },
            "features": {"recording": "false"},
        },
    }


def sign(
    claims: Claims,
    *,
    key: bytes | str = SECRET,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
) -> str:
    # raw JWS: jwt.encode would refuse some of the broken claims built here
    return sign_payload(json.dumps(claims).encode(), key=key, algorithm=algorithm, headers=headers)


def sign_payload(
    payload: bytes,
    *,
    key: bytes | str = SECRET,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
) -> str:
    return jwt.PyJWS().encode(payload, key, algorithm=algorithm, headers=headers)


def refused_rule(token: str, site: JitsiSite = SITE, segment: str = ROOM_SEGMENT) -> str:
    with pytest.raises(TokenRefused) as refusal:
        admit(token, site, segment, now=NOW)
    assert refusal.value.reason in str(refusal.value)
    return refusal.value.rule


# --- room names ------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("Mathe%207b", "mathe%207b"),
        ("Mathe 7b", "mathe%207b"),
        ("mathe%207b", "mathe%207b"),
        ("%C3%9Cbung", "%c3%bcbung"),
        ("%c3%9cbung", "%c3%bcbung"),
        ("Übung", "%c3%bcbung"),
        ("100%25", "100%25"),
        ("\uff2d\uff41\uff54\uff48\uff45\uff17\uff42", "mathe7b"),  # fullwidth "Mathe7b"
        ("ﬁzik", "fizik"),  # ligature
        ("Kurs①", "kurs1"),
        ("Ⅻ", "xii"),
        ("it's(1)!", "it's(1)!"),
        ("a-b_c.d~e*f", "a-b_c.d~e*f"),
        ("a+b", "a%2bb"),
        ("a%2Fb", "a%2fb"),
        ("Fragen?&Antworten=#1", "fragen%3f%26antworten%3d%231"),
        ("😀", "%f0%9f%98%80"),
        ("ΟΔΟΣ", "%ce%bf%ce%b4%ce%bf%cf%82"),  # final sigma, as JS toLowerCase
        ("İ", "i%cc%87"),
        ("", ""),
    ],
)
def test_prosody_room_name(segment: str, expected: str) -> None:
    assert prosody_room_name(segment) == expected


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("100%", "100%25"),
        ("%zz", "%25zz"),
        ("%C3", "%25c3"),  # UTF-8 cut short
        ("%C3%28", "%25c3%2528"),  # not a continuation byte
        ("%C0%AF", "%25c0%25af"),  # overlong form
        ("%ED%A0%80", "%25ed%25a0%2580"),  # encoded surrogate
        ("a%20b%", "a%2520b%25"),  # one bad escape: nothing is decoded
    ],
)
def test_segment_that_does_not_decode_is_encoded_as_it_is(segment: str, expected: str) -> None:
    assert prosody_room_name(segment) == expected


@pytest.mark.parametrize("character", [chr(code) for code in range(128)])
def test_ascii_encoding_agrees_with_urllib(character: str) -> None:
    # urllib's quote keeps letters, digits and "_.-~"; encodeURIComponent
    # also keeps "!*'()".
    assert (
        prosody_room_name(character) == urllib.parse.quote(character.lower(), safe="!*'()").lower()
    )


@pytest.mark.parametrize("segment", ["Mathe 7b", "Übung (Gruppe 1)", "100%", "ﬁ%2Fx"])
def test_room_name_is_stable(segment: str) -> None:
    once = prosody_room_name(segment)
    assert prosody_room_name(once) == once


def test_lone_surrogate_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        prosody_room_name("\ud800")


# --- the site --------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "none", "hs256", "rs256"])
def test_site_takes_hmac_and_rsa_algorithms_only(algorithm: str) -> None:
    with pytest.raises(ValueError, match="algorithm"):
        JitsiSite(app_id="a", app_secret=SECRET, subject="s", algorithm=algorithm)


def test_an_rsa_site_needs_a_key_server() -> None:
    with pytest.raises(ValueError, match="asap_key_server"):
        JitsiSite(app_id="a", app_secret=b"", subject="s", algorithm="RS256")


def test_site_audiences_must_be_a_tuple() -> None:
    with pytest.raises(TypeError):
        JitsiSite(
            app_id="a",
            app_secret=SECRET,
            subject="s",
            accepted_audiences="school-meet",  # type: ignore[arg-type]
        )


# --- admitted tokens -------------------------------------------------------


def test_teacher_is_admitted_as_moderator() -> None:
    claims = teacher_claims()
    admission = admit(sign(claims), SITE, ROOM_SEGMENT, now=NOW)
    assert admission.moderator is True
    assert admission.user_id == "t.lehrer"
    assert admission.user_name == "Tina Lehrer"
    assert admission.claims == claims


@pytest.mark.parametrize(
    ("user_role", "moderator"),
    [
        ({"affiliation": "owner"}, True),
        ({"affiliation": "member"}, False),
        ({"affiliation": "member", "moderator": "false"}, False),
        ({"moderator": "true"}, True),
        ({"affiliation": "member", "moderator": "true"}, True),
        ({"moderator": "True"}, False),  # Lua compares exactly
        ({"affiliation": "Owner"}, False),
        ({"affiliation": "teacher"}, True),  # token_affiliation's other owner words
        ({"affiliation": "moderator"}, True),
        ({}, False),
    ],
)
def test_role_as_token_affiliation_decides(user_role: dict[str, str], moderator: bool) -> None:
    claims = teacher_claims()
    user = claims["context"]["user"]
    del user["affiliation"], user["moderator"]
    user.update(user_role)
    assert admit(sign(claims), SITE, ROOM_SEGMENT, now=NOW).moderator is moderator


def test_top_level_moderator_does_not_make_an_owner() -> None:
    claims = teacher_claims()
    claims["context"]["user"].update(affiliation="member", moderator="false")
    assert claims["moderator"] is True
    assert admit(sign(claims), SITE, ROOM_SEGMENT, now=NOW).moderator is False


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_each_hmac_algorithm_the_site_pins(algorithm: str) -> None:
    site = JitsiSite(
        app_id="school-meet", app_secret=SECRET, subject="meet.school.example", algorithm=algorithm
    )
    assert admit(sign(teacher_claims(), algorithm=algorithm), site, ROOM_SEGMENT, now=NOW)


@pytest.mark.parametrize(
    ("segment", "room"),
    [
        ("%C3%9Cbung", "%c3%bcbung"),
        ("Übung", "%c3%bcbung"),
        ("Mathe 7b", "mathe%207b"),
        ("Mathe7b", "*"),
        ("anything%20else", "*"),
    ],
)
def test_room_claim_accepted(segment: str, room: str) -> None:
    claims = teacher_claims()
    claims["room"] = room
    assert admit(sign(claims), SITE, segment, now=NOW)


@pytest.mark.parametrize("sub", ["*", "MEET.school.example", "meet.school.example"])
def test_subject_accepted(sub: str) -> None:
    claims = teacher_claims()
    claims["sub"] = sub
    assert admit(sign(claims), SITE, ROOM_SEGMENT, now=NOW)


@pytest.mark.parametrize("aud", ["school-meet", "anything"])
def test_any_audience_when_the_site_configures_none(aud: str) -> None:
    site = JitsiSite(app_id="school-meet", app_secret=SECRET, subject="meet.school.example")
    claims = teacher_claims()
    claims["aud"] = aud
    assert admit(sign(claims), site, ROOM_SEGMENT, now=NOW)


@pytest.mark.parametrize("aud", [["school-meet"], 1, None])
def test_audience_is_a_single_string_even_when_any_is_accepted(aud: object) -> None:
    site = JitsiSite(app_id="school-meet", app_secret=SECRET, subject="meet.school.example")
    claims = teacher_claims()
    claims["aud"] = aud
    assert refused_rule(sign(claims), site=site) == "aud"


def test_audience_among_several_configured() -> None:
    site = JitsiSite(
        app_id="school-meet",
        app_secret=SECRET,
        subject="meet.school.example",
        accepted_audiences=("jitsi", "school-meet"),
    )
    assert admit(sign(teacher_claims()), site, ROOM_SEGMENT, now=NOW)


def test_validity_edges_without_skew() -> None:
    claims = teacher_claims()
    token = sign(claims)
    assert admit(token, SITE, ROOM_SEGMENT, now=claims["nbf"])
    assert admit(token, SITE, ROOM_SEGMENT, now=claims["exp"] - 1)
    with pytest.raises(TokenRefused, match="nbf"):
        admit(token, SITE, ROOM_SEGMENT, now=claims["nbf"] - 1)
    with pytest.raises(TokenRefused, match="exp"):
        admit(token, SITE, ROOM_SEGMENT, now=claims["exp"])


def test_minimal_token_is_admitted() -> None:
    claims = teacher_claims()
    del claims["iat"], claims["nbf"], claims["moderator"], claims["context"]["features"]
    claims["context"]["user"] = {"id": "p", "name": "Pupil", "email": "p@school.example"}
    assert admit(sign(claims), SITE, ROOM_SEGMENT, now=NOW).moderator is False


def test_the_lobby_bypass_is_read_from_context_user() -> None:
    claims = teacher_claims()
    assert not admit(sign(claims), SITE, ROOM_SEGMENT, now=NOW).passes_the_lobby
    claims["context"]["user"]["lobby_bypass"] = True
    assert admit(sign(claims), SITE, ROOM_SEGMENT, now=NOW).passes_the_lobby
    claims["context"]["user"]["lobby_bypass"] = False
    assert not admit(sign(claims), SITE, ROOM_SEGMENT, now=NOW).passes_the_lobby


def test_avatar_is_allowed() -> None:
    claims = teacher_claims()
    claims["context"]["user"]["avatar"] = "https://meet.school.example/a.png"
    assert admit(sign(claims), SITE, ROOM_SEGMENT, now=NOW)


def test_now_defaults_to_the_clock() -> None:
    claims = teacher_claims()
    claims["nbf"] = int(time.time()) - 30
    claims["exp"] = int(time.time()) + LESSON
    assert admit(sign(claims), SITE, ROOM_SEGMENT).moderator is True
    claims["exp"] = int(time.time()) - 1
    with pytest.raises(TokenRefused, match="expired"):
        admit(sign(claims), SITE, ROOM_SEGMENT)


# --- refused tokens: exactly one rule broken each ---------------------------


def header_case(headers: dict[str, Any]) -> Callable[[], str]:
    return lambda: sign(teacher_claims(), headers=headers)


def swapped_payload() -> str:
    header, _, signature = sign(teacher_claims()).split(".")
    other = teacher_claims()
    other["room"] = "*"
    payload = sign(other).split(".")[1]
    return f"{header}.{payload}.{signature}"


def not_a_token(text: str) -> Callable[[], str]:
    return lambda: text


@pytest.mark.parametrize(
    ("make_token", "rule"),
    [
        pytest.param(not_a_token("not a token"), "format", id="garbage"),
        pytest.param(not_a_token("a.b"), "format", id="two-segments"),
        pytest.param(header_case({"typ": None}), "typ", id="typ-missing"),
        pytest.param(header_case({"typ": "jwt"}), "typ", id="typ-lowercase"),
        pytest.param(header_case({"typ": "at+jwt"}), "typ", id="typ-other"),
        pytest.param(lambda: sign(teacher_claims(), algorithm="HS512"), "alg", id="alg-other-hmac"),
        pytest.param(
            lambda: sign(teacher_claims(), key="", algorithm="none"), "alg", id="alg-none"
        ),
        pytest.param(
            lambda: sign(teacher_claims(), key=OTHER_SECRET), "signature", id="other-secret"
        ),
        pytest.param(swapped_payload, "signature", id="payload-swapped"),
        pytest.param(lambda: sign_payload(b"[1, 2]"), "payload", id="payload-list"),
        pytest.param(lambda: sign_payload(b"{nope"), "payload", id="payload-not-json"),
    ],
)
def test_refused_token(make_token: Callable[[], str], rule: str) -> None:
    assert refused_rule(make_token()) == rule


def drop(*path: str) -> Callable[[Claims], None]:
    def change(claims: Claims) -> None:
        *parents, last = path
        target = claims
        for key in parents:
            target = target[key]
        del target[last]

    return change


def put(value: Any, *path: str) -> Callable[[Claims], None]:
    def change(claims: Claims) -> None:
        *parents, last = path
        target = claims
        for key in parents:
            target = target[key]
        target[last] = copy.deepcopy(value)

    return change


USER = ("context", "user")


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        pytest.param(drop("exp"), "exp", id="exp-missing"),
        pytest.param(put(str(NOW + LESSON), "exp"), "exp", id="exp-string"),
        pytest.param(put(NOW + LESSON + 0.5, "exp"), "exp", id="exp-float"),
        pytest.param(put(True, "exp"), "exp", id="exp-boolean"),
        pytest.param(put(NOW, "exp"), "exp", id="exp-now"),
        pytest.param(put(NOW - 1, "exp"), "exp", id="exp-past"),
        pytest.param(put(str(NOW - 30), "nbf"), "nbf", id="nbf-string"),
        pytest.param(put(NOW - 29.5, "nbf"), "nbf", id="nbf-float"),
        pytest.param(put(NOW + 1, "nbf"), "nbf", id="nbf-future-no-skew"),
        pytest.param(drop("iss"), "iss", id="iss-missing"),
        pytest.param(put("School-Meet", "iss"), "iss", id="iss-case"),
        pytest.param(put("other-app", "iss"), "iss", id="iss-other"),
        pytest.param(put(["school-meet"], "iss"), "iss", id="iss-list"),
        pytest.param(drop("aud"), "aud", id="aud-missing"),
        pytest.param(put("jitsi", "aud"), "aud", id="aud-not-accepted"),
        pytest.param(put(["school-meet"], "aud"), "aud", id="aud-list"),
        pytest.param(drop("sub"), "sub", id="sub-missing"),
        pytest.param(put("other.school.example", "sub"), "sub", id="sub-other"),
        pytest.param(put("meet.school.example.", "sub"), "sub", id="sub-trailing-dot"),
        pytest.param(put(["meet.school.example"], "sub"), "sub", id="sub-list"),
        pytest.param(drop("room"), "room", id="room-missing"),
        pytest.param(put("physik", "room"), "room", id="room-other"),
        pytest.param(put("Mathe 7b", "room"), "room", id="room-raw"),
        pytest.param(put("Mathe%207b", "room"), "room", id="room-path-segment"),
        pytest.param(put("MATHE%207B", "room"), "room", id="room-not-lowercase"),
        pytest.param(put(["mathe%207b"], "room"), "room", id="room-list"),
        pytest.param(put("**", "room"), "room", id="room-not-wildcard"),
        pytest.param(drop("context"), "context", id="context-missing"),
        pytest.param(put("teacher", "context"), "context", id="context-string"),
        pytest.param(put(["a"], "context", "features"), "context.features", id="features-list"),
        pytest.param(drop(*USER), "context.user", id="user-missing"),
        pytest.param(put("t.lehrer", *USER), "context.user", id="user-string"),
        pytest.param(drop(*USER, "id"), "context.user.id", id="user-id-missing"),
        pytest.param(put(42, *USER, "id"), "context.user.id", id="user-id-number"),
        pytest.param(drop(*USER, "name"), "context.user.name", id="user-name-missing"),
        pytest.param(put(None, *USER, "name"), "context.user.name", id="user-name-null"),
        pytest.param(drop(*USER, "email"), "context.user.email", id="user-email-missing"),
        pytest.param(put(["a@b"], *USER, "email"), "context.user.email", id="user-email-list"),
        pytest.param(put(1, *USER, "avatar"), "context.user.avatar", id="user-avatar-number"),
        pytest.param(
            put(True, *USER, "affiliation"), "context.user.affiliation", id="affiliation-bool"
        ),
        pytest.param(put(True, *USER, "moderator"), "context.user.moderator", id="user-mod-bool"),
        # token_lobby_bypass compares with the boolean true: "true" would do nothing.
        pytest.param(
            put("true", *USER, "lobby_bypass"), "context.user.lobby_bypass", id="bypass-string"
        ),
        # Nothing reads it there since 2022: a bypass that never bypasses.
        pytest.param(
            put(True, "context", "features", "lobby_bypass"),
            "context.features.lobby_bypass",
            id="bypass-in-features",
        ),
        pytest.param(put("true", "moderator"), "moderator", id="moderator-string"),
        pytest.param(put(1, "moderator"), "moderator", id="moderator-number"),
    ],
)
def test_refused_claims(change: Callable[[Claims], None], rule: str) -> None:
    claims = teacher_claims()
    change(claims)
    assert refused_rule(sign(claims)) == rule


@pytest.mark.parametrize(
    ("segment", "room"),
    [
        ("Übung", "Übung"),  # Lua lowercases ASCII only, and nothing encodes the claim
        ("Übung", "übung"),
        ("%C3%9Cbung", "%C3%9Cbung"),
        ("100%25", "100%"),
        ("\uff2d\uff41\uff54\uff48\uff45", "\uff4d\uff41\uff54\uff48\uff45"),  # fullwidth
    ],
)
def test_room_claim_must_be_the_backend_safe_name(segment: str, room: str) -> None:
    claims = teacher_claims()
    claims["room"] = room
    assert refused_rule(sign(claims), segment=segment) == "room"


def test_refusal_is_an_assertion_with_a_reason() -> None:
    claims = teacher_claims()
    del claims["sub"]
    with pytest.raises(AssertionError, match="sub is missing"):
        admit(sign(claims), SITE, ROOM_SEGMENT, now=NOW)
