"""The request flows a browser sees, driven through a real nginx in front of the sidecar."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from demo.school import SCHOOL
from testbed.stack import Reply, Stack, basic_auth, token_in
from tests.jitsi_rules import Admission, JitsiSite, admit

TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[0]
UMLAUT_PUPIL = next(p for p in SCHOOL.pupils if not p.password.isascii())


def token_of(reply: Reply) -> str:
    location = reply.header("Location")
    assert location is not None
    return token_in(location)


def admitted(reply: Reply, site: JitsiSite, segment: str) -> Admission:
    assert reply.status == 302, reply
    return admit(token_of(reply), site, segment)


def test_teacher_gets_a_moderator_token(stack: Stack, jitsi_site: JitsiSite) -> None:
    reply = stack.get("/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password))
    assert reply.status == 302
    location = reply.header("Location")
    assert location is not None
    assert location.startswith("/Mathe7b?jwt=")
    admission = admitted(reply, jitsi_site, "Mathe7b")
    assert admission.moderator is True
    assert admission.claims["context"]["user"]["affiliation"] == "owner"
    assert admission.claims["moderator"] is True
    assert admission.user_id == TEACHER.uid
    assert admission.user_name == TEACHER.display_name


def test_pupil_gets_a_member_token(stack: Stack, jitsi_site: JitsiSite) -> None:
    admission = admitted(
        stack.get("/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password)), jitsi_site, "Mathe7b"
    )
    assert admission.moderator is False
    assert admission.claims["context"]["user"]["affiliation"] == "member"
    assert admission.claims["context"]["user"]["moderator"] == "false"


def test_utf8_password(stack: Stack, jitsi_site: JitsiSite) -> None:
    reply = stack.get("/Mathe7b", basic_auth(UMLAUT_PUPIL.uid, UMLAUT_PUPIL.password))
    assert admitted(reply, jitsi_site, "Mathe7b").user_id == UMLAUT_PUPIL.uid


def test_valid_token_and_credentials_get_the_meeting_page(stack: Stack) -> None:
    credentials = basic_auth(TEACHER.uid, TEACHER.password)
    first = stack.get("/Mathe7b", credentials)
    location = first.header("Location")
    assert location is not None
    page = stack.get(location, credentials)
    assert page.status == 200
    assert "stands in for Jitsi Meet" in page.body
    # A page served to one person is never kept by a cache for another.
    assert page.header("Cache-Control") == "no-store"
    # Nor does the page's address (with its token) travel on as a Referer.
    assert page.header("Referrer-Policy") == "strict-origin"


def test_token_without_credentials_is_a_login_prompt(stack: Stack) -> None:
    location = stack.get("/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password)).header("Location")
    assert location is not None
    reply = stack.get(location)
    assert reply.status == 302
    assert reply.header("Location") == "/auth/login?next=%2FMathe7b"
    assert "stands in for Jitsi" not in reply.body


def test_someone_elses_token_is_replaced(stack: Stack, jitsi_site: JitsiSite) -> None:
    teacher_location = stack.get("/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password)).header(
        "Location"
    )
    assert teacher_location is not None
    # The pupil opens the teacher's link: no page, but the pupil's own token.
    reply = stack.get(teacher_location, basic_auth(PUPIL.uid, PUPIL.password))
    admission = admitted(reply, jitsi_site, "Mathe7b")
    assert admission.user_id == PUPIL.uid
    assert admission.moderator is False


def test_token_for_another_room_is_replaced(stack: Stack, jitsi_site: JitsiSite) -> None:
    credentials = basic_auth(PUPIL.uid, PUPIL.password)
    location = stack.get("/Mathe7b", credentials).header("Location")
    assert location is not None
    other = location.replace("/Mathe7b", "/Physik9a")
    reply = stack.get(other, credentials)
    assert admitted(reply, jitsi_site, "Physik9a").claims["room"] == "physik9a"


def test_other_parameters_kept_stale_token_replaced(stack: Stack, jitsi_site: JitsiSite) -> None:
    reply = stack.get(
        "/Mathe7b?lang=de&jwt=stale.token.value&config.prejoinConfig.enabled=false&jwt=x",
        basic_auth(TEACHER.uid, TEACHER.password),
    )
    location = reply.header("Location")
    assert location is not None
    parts = urlsplit(location)
    assert parts.path == "/Mathe7b"
    query = parse_qs(parts.query)
    assert query["lang"] == ["de"]
    assert query["config.prejoinConfig.enabled"] == ["false"]
    assert len(query["jwt"]) == 1
    assert query["jwt"][0] != "stale.token.value"
    admitted(reply, jitsi_site, "Mathe7b")


@pytest.mark.parametrize(
    ("segment", "room_claim"),
    [
        ("Mathe%207b", "mathe%207b"),
        ("%C3%9Cbung", "%c3%bcbung"),
        ("100%25", "100%25"),
        ("Deutsch%2BKunst", "deutsch%2bkunst"),
        ("%EF%BC%AD%EF%BD%81%EF%BD%94%EF%BD%88%EF%BD%85", "mathe"),
    ],
)
def test_room_names_jitsi_accepts(
    stack: Stack, jitsi_site: JitsiSite, segment: str, room_claim: str
) -> None:
    reply = stack.get(f"/{segment}", basic_auth(PUPIL.uid, PUPIL.password))
    admission = admitted(reply, jitsi_site, segment)
    assert admission.claims["room"] == room_claim
    # The redirect itself leads back to the same room, and then to the page.
    location = reply.header("Location")
    assert location is not None
    assert stack.get(location, basic_auth(PUPIL.uid, PUPIL.password)).status == 200


def test_person_without_role_gets_403_page(stack: Stack) -> None:
    credentials = basic_auth(SCHOOL.nobody.uid, SCHOOL.nobody.password)
    reply = stack.get("/Mathe7b", {**credentials, "Accept-Language": "en-GB,en;q=0.9"})
    assert reply.status == 403
    assert "No access to lessons" in reply.body
    assert reply.header("Location") is None


def test_posix_group_member_is_a_pupil(stack: Stack, jitsi_site: JitsiSite) -> None:
    # The demo maps the class's posixGroup (memberUid) to pupils too.
    posix_only = SCHOOL.posix_only
    reply = stack.get("/Mathe7b", basic_auth(posix_only.uid, posix_only.password))
    assert admitted(reply, jitsi_site, "Mathe7b").moderator is False


def test_wrong_password_gets_a_new_challenge(stack: Stack) -> None:
    reply = stack.get("/Mathe7b", basic_auth(TEACHER.uid, "wrong-password"))
    assert reply.status == 401
    challenge = reply.header("WWW-Authenticate")
    assert challenge is not None
    assert challenge.startswith('Basic realm="')
    unknown = stack.get("/Mathe7b", basic_auth("nobody.here", "wrong-password"))
    assert unknown.status == 401
    assert unknown.body == reply.body


def test_no_credentials_gets_the_login_form(stack: Stack) -> None:
    reply = stack.get("/Mathe%207b?lang=de&jwt=stale")
    assert reply.status == 302
    assert reply.header("Location") == "/auth/login?next=%2FMathe%25207b%3Flang%3Dde"


def test_no_credentials_gets_a_challenge_when_basic_comes_first(basic_stack: Stack) -> None:
    reply = basic_stack.get("/Mathe7b")
    assert reply.status == 401
    assert (reply.header("WWW-Authenticate") or "").startswith("Basic ")
    assert reply.header("Location") is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/config.js", "var config"),
        ("/libs/app.bundle.min.js", "stand-in bundle"),
        ("/external_api.js", "stand-in api"),
        ("/favicon.ico", ""),
        ("/http-bind", "prosody stand-in: http-bind"),
        ("/xmpp-websocket", "prosody stand-in: xmpp-websocket"),
    ],
)
def test_files_and_xmpp_are_served_without_the_sidecar(
    stack: Stack, path: str, expected: str
) -> None:
    before = stack.sidecar.log().count("/auth/verify")
    reply = stack.get(path)
    assert reply.status == 200
    assert expected in reply.body
    assert stack.sidecar.log().count("/auth/verify") == before


def test_nginx_config_test_passes(stack: Stack) -> None:
    result = stack.nginx.check()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_tokens_never_reach_the_logs(stack: Stack) -> None:
    credentials = basic_auth(TEACHER.uid, TEACHER.password)
    location = stack.get("/Mathe7b?lang=de", credentials).header("Location")
    assert location is not None
    assert stack.get(location, credentials).status == 200
    token = token_in(location)
    # Someone without a role opens a link with a token: the 403 page is an
    # internal redirect to /auth/, whose request line still holds the token.
    nobody = basic_auth(SCHOOL.nobody.uid, SCHOOL.nobody.password)
    assert stack.get(location, nobody).status == 403
    for text in (stack.sidecar.log(), stack.nginx.access_log.read_text()):
        assert "jwt=" not in text
        assert token[:40] not in text
        assert TEACHER.password not in text
