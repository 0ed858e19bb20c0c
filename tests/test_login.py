"""The login page, cookie sessions and logout, through nginx as a browser would go."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.people import Person
from sidecar.sessions import COOKIE_NAME as SESSION
from testbed.stack import (
    Browser,
    Stack,
    basic_auth,
    binds_of,
    set_cookies,
    stack_sessions,
    token_in,
)
from tests.jitsi_rules import JitsiSite, admit

TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[1]


def test_anonymous_room_request_goes_to_the_login_page(stack: Stack) -> None:
    browser = Browser(stack)
    reply = browser.get("/Mathe7b")
    assert reply.status == 302
    assert reply.header("Location") == "/auth/login?next=%2FMathe7b"


@pytest.mark.parametrize(
    ("accept_language", "lang", "words"),
    [
        ("de-DE,de;q=0.9,en;q=0.5", "de", ["Benutzername", "Passwort", "Anmelden"]),
        ("en-GB,en;q=0.9,de;q=0.5", "en", ["User name", "Password", "Log in"]),
        ("fr-FR,fr;q=0.9", "de", ["Benutzername"]),  # the configured default
    ],
)
def test_login_page_language(
    stack: Stack, accept_language: str, lang: str, words: list[str]
) -> None:
    reply = Browser(stack, accept_language).get("/auth/login?next=%2FMathe%25207b")
    assert reply.status == 200
    assert f'<html lang="{lang}">' in reply.body
    for word in words:
        assert word in reply.body
    assert "Mathe 7b" in reply.body


def test_login_page_is_self_contained_and_accessible(stack: Stack) -> None:
    reply = Browser(stack).get("/auth/login?next=%2FMathe7b")
    body = reply.body
    assert '<label for="username">' in body
    assert '<label for="password">' in body
    assert 'id="username"' in body
    assert 'autocomplete="current-password"' in body
    assert "Demo-Schule am See" in body
    assert 'src="/auth/logo"' in body
    assert "<script" not in body
    # Every asset comes from the sidecar itself.
    for url in re.findall(r'(?:src|href|action)="([^"]*)"', body):
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
    policy = reply.header("Content-Security-Policy") or ""
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert reply.header("Referrer-Policy") == "no-referrer"
    assert reply.header("Cache-Control") == "no-store"
    assert reply.header("X-Frame-Options") == "DENY"
    css = Browser(stack).get("/auth/static/style.css")
    assert css.status == 200
    assert "@media" in css.body
    logo = Browser(stack).get("/auth/logo")
    assert logo.status == 200
    assert logo.header("Content-Type") == "image/svg+xml"


def test_teacher_logs_in_and_gets_a_moderator_token(stack: Stack, jitsi_site: JitsiSite) -> None:
    browser = Browser(stack)
    login = browser.log_in(TEACHER.uid, TEACHER.password, "/Mathe%207b?lang=de")
    assert login.status == 302
    assert login.header("Location") == "/Mathe%207b?lang=de"
    cookie = set_cookies(login)[SESSION]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # the demo's public URL is http
    assert TEACHER.password not in cookie
    room = browser.get("/Mathe%207b?lang=de")
    assert room.status == 302
    location = room.header("Location") or ""
    token = token_in(location)
    assert admit(token, jitsi_site, "Mathe%207b").moderator is True
    page = browser.get(location)
    assert page.status == 200
    assert "stands in for Jitsi Meet" in page.body


def test_pupil_logs_in_and_is_no_moderator(stack: Stack, jitsi_site: JitsiSite) -> None:
    browser = Browser(stack)
    assert browser.log_in(PUPIL.uid, PUPIL.password).status == 302
    location = browser.get("/Mathe7b").header("Location") or ""
    token = token_in(location)
    assert admit(token, jitsi_site, "Mathe7b").moderator is False


def test_a_new_session_at_every_login(stack: Stack) -> None:
    browser = Browser(stack)
    browser.log_in(PUPIL.uid, PUPIL.password)
    first = browser.cookies[SESSION]
    browser.cookies.pop(SESSION)
    browser.log_in(PUPIL.uid, PUPIL.password)
    second = browser.cookies[SESSION]
    sessions = stack_sessions(stack)
    one, two = sessions.open(first), sessions.open(second)
    assert one is not None
    assert two is not None
    assert one.session_id != two.session_id


def test_wrong_password_and_unknown_user_look_the_same(stack: Stack) -> None:
    wrong = Browser(stack).log_in(TEACHER.uid, "not-the-password")
    unknown = Browser(stack).log_in("nobody.at.all", "not-the-password")
    for reply in (wrong, unknown):
        assert reply.status == 401
        assert "The user name or the password is wrong." in reply.body
        assert 'aria-invalid="true"' in reply.body
        assert 'aria-describedby="login-error"' in reply.body
        assert SESSION not in set_cookies(reply)
        assert reply.header("Location") is None

    def normalised(body: str, uid: str) -> str:
        return re.sub(r'name="csrf_token" value="[^"]+"', "", body).replace(uid, "X")

    assert normalised(wrong.body, TEACHER.uid) == normalised(unknown.body, "nobody.at.all")


def test_empty_password_is_refused_before_any_bind(stack: Stack, slapd: Slapd) -> None:
    browser = Browser(stack)
    before = binds_of(slapd, TEACHER.uid)
    for password in ("", "   "):
        form_page = browser.get("/auth/login")
        reply = browser.post(
            "/auth/login",
            {
                "csrf_token": browser.csrf_token(form_page),
                "next": "/x",
                "username": TEACHER.uid,
                "password": password,
            },
        )
        assert reply.status == 401
        assert "Please enter your user name and your password." in reply.body
    assert binds_of(slapd, TEACHER.uid) == before


@pytest.mark.parametrize("csrf", [None, "", "A" * 43, "short"])
def test_login_without_the_csrf_token_is_refused(
    stack: Stack, slapd: Slapd, csrf: str | None
) -> None:
    browser = Browser(stack)
    browser.get("/auth/login")  # the CSRF cookie
    form = {"next": "/Mathe7b", "username": TEACHER.uid, "password": TEACHER.password}
    if csrf is not None:
        form["csrf_token"] = csrf
    before = binds_of(slapd, TEACHER.uid)
    reply = browser.post("/auth/login", form)
    assert reply.status == 403
    assert SESSION not in set_cookies(reply)
    assert "expired" in reply.body
    assert binds_of(slapd, TEACHER.uid) == before


def test_login_without_the_csrf_cookie_is_refused(stack: Stack) -> None:
    token_page = Browser(stack).get("/auth/login")
    browser = Browser(stack)  # never saw the form: no cookie
    reply = browser.post(
        "/auth/login",
        {
            "csrf_token": browser.csrf_token(token_page),
            "next": "/Mathe7b",
            "username": TEACHER.uid,
            "password": TEACHER.password,
        },
    )
    assert reply.status == 403
    assert SESSION not in set_cookies(reply)


def test_person_without_role_gets_no_session(stack: Stack) -> None:
    reply = Browser(stack).log_in(SCHOOL.nobody.uid, SCHOOL.nobody.password)
    assert reply.status == 403
    assert SESSION not in set_cookies(reply)


@pytest.mark.parametrize(
    "evil",
    [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/%2F%2Fevil.example",
        "/%09/evil.example",
        "/@evil.example",
        "javascript:alert(1)",
        "/" + "a" * 10_000,
        "/%0d%0aSet-Cookie:%20x=y",
        "http:/evil.example",
        "\\\\evil.example",
        " /Mathe7b",
    ],
)
def test_next_never_leaves_the_origin(stack: Stack, evil: str) -> None:
    browser = Browser(stack)
    form_page = browser.get("/auth/login?next=" + quote(evil, safe="")[:6000])
    assert form_page.status == 200
    assert 'name="next" value="/"' in form_page.body
    reply = browser.post(
        "/auth/login",
        {
            "csrf_token": browser.csrf_token(form_page),
            "next": evil,
            "username": PUPIL.uid,
            "password": PUPIL.password,
        },
    )
    assert reply.status == 302
    assert reply.header("Location") == "/"


def test_logged_in_person_skips_the_form(stack: Stack) -> None:
    browser = Browser(stack)
    browser.log_in(PUPIL.uid, PUPIL.password)
    reply = browser.get("/auth/login?next=%2FPhysik")
    assert reply.status == 302
    assert reply.header("Location") == "/Physik"


def test_tampered_cookie_is_no_session(stack: Stack) -> None:
    browser = Browser(stack)
    browser.log_in(TEACHER.uid, TEACHER.password)
    value = browser.cookies[SESSION]
    for position in (10, len(value) // 2, len(value) - 5):
        flipped = "A" if value[position] != "A" else "B"
        browser.cookies[SESSION] = value[:position] + flipped + value[position + 1 :]
        reply = browser.get("/Mathe7b")
        assert reply.status == 302
        assert (reply.header("Location") or "").startswith("/auth/login")
    browser.cookies[SESSION] = "garbage"
    assert (browser.get("/Mathe7b").header("Location") or "").startswith("/auth/login")


def test_expired_sessions_are_refused_by_the_server(stack: Stack) -> None:
    sessions = stack_sessions(stack)
    person = Person(TEACHER.uid, TEACHER.display_name, TEACHER.mail, frozenset())
    fresh = sessions.new(person, "teacher")
    now = int(time.time())
    too_old = dataclasses.replace(fresh, issued_at=now - 13 * 3600, last_seen=now)
    idle = dataclasses.replace(fresh, issued_at=now - 3600, last_seen=now - 5 * 3600)
    browser = Browser(stack)
    browser.cookies[SESSION] = sessions.seal(fresh)
    assert (browser.get("/Mathe7b").header("Location") or "").startswith("/Mathe7b?jwt=")
    for session in (too_old, idle):
        browser.cookies[SESSION] = sessions.seal(session)
        assert (browser.get("/Mathe7b").header("Location") or "").startswith("/auth/login")


def test_cookie_sealed_with_a_retired_key_is_refused(stack: Stack) -> None:
    retired = stack_sessions(stack, keys=(b"r" * 48,))
    person = Person(TEACHER.uid, TEACHER.display_name, TEACHER.mail, frozenset())
    browser = Browser(stack)
    browser.cookies[SESSION] = retired.seal(retired.new(person, "teacher"))
    assert (browser.get("/Mathe7b").header("Location") or "").startswith("/auth/login")


def test_logout_needs_a_post_with_csrf_and_ends_the_session(stack: Stack) -> None:
    browser = Browser(stack)
    browser.log_in(PUPIL.uid, PUPIL.password)
    cookie = browser.cookies[SESSION]
    page = browser.get("/auth/logout")
    assert page.status == 200
    assert '<form method="post" action="/auth/logout">' in page.body
    assert PUPIL.display_name in page.body
    # Looking at the page logs nobody out.
    assert (browser.get("/Mathe7b").header("Location") or "").startswith("/Mathe7b?jwt=")
    refused = browser.post("/auth/logout", {})
    assert refused.status == 403
    assert (browser.get("/Mathe7b").header("Location") or "").startswith("/Mathe7b?jwt=")
    done = browser.post("/auth/logout", {"csrf_token": browser.csrf_token(page)})
    assert done.status == 200
    assert "You are logged out" in done.body
    assert "Max-Age=0" in set_cookies(done)[SESSION]
    # The same cookie, kept by someone, no longer passes verify.
    browser.cookies[SESSION] = cookie
    reply = browser.get("/Mathe7b")
    assert reply.status == 302
    assert (reply.header("Location") or "").startswith("/auth/login")


def test_session_or_basic_either_passes(stack: Stack) -> None:
    browser = Browser(stack)
    basic = basic_auth(PUPIL.uid, PUPIL.password)
    assert (browser.get("/Mathe7b", basic).header("Location") or "").startswith("/Mathe7b?jwt=")
    browser.log_in(PUPIL.uid, PUPIL.password)
    assert (browser.get("/Mathe7b").header("Location") or "").startswith("/Mathe7b?jwt=")


def test_revocations_survive_a_restart(stack: Stack, tmp_path: Path) -> None:
    revocation_file = stack.sidecar.config.parent / "revoked_sessions.json"
    browser = Browser(stack)
    browser.log_in(PUPIL.uid, PUPIL.password)
    cookie = browser.cookies[SESSION]
    page = browser.get("/auth/logout")
    browser.post("/auth/logout", {"csrf_token": browser.csrf_token(page)})
    session = stack_sessions(stack).open(cookie)
    assert session is not None  # still opens; only the server's list refuses it
    assert session.session_id in revocation_file.read_text()


def test_last_seen_is_renewed_through_nginx(stack: Stack) -> None:
    browser = Browser(stack)
    browser.log_in(PUPIL.uid, PUPIL.password)
    sessions = stack_sessions(stack)
    session = sessions.open(browser.cookies[SESSION])
    assert session is not None
    a_while_ago = int(time.time()) - 3 * 3600
    browser.cookies[SESSION] = sessions.seal(dataclasses.replace(session, last_seen=a_while_ago))
    old_cookie = browser.cookies[SESSION]
    redirect = browser.get("/Mathe7b")
    location = redirect.header("Location") or ""
    assert location.startswith("/Mathe7b?jwt=")
    assert SESSION in set_cookies(redirect)  # the 302 renews it ...
    browser.cookies[SESSION] = old_cookie
    page = browser.get(location)
    assert page.status == 200
    assert SESSION in set_cookies(page)  # ... and so does the room page itself
    renewed = sessions.open(browser.cookies[SESSION])
    assert renewed is not None
    assert renewed.session_id == session.session_id
    assert renewed.last_seen > a_while_ago + 3600


def test_no_login_form_when_form_is_not_a_method(basic_stack: Stack) -> None:
    browser = Browser(basic_stack)
    assert browser.get("/auth/login?next=%2FMathe7b").status == 404
    reply = browser.post(
        "/auth/login",
        {"csrf_token": "x" * 43, "next": "/", "username": PUPIL.uid, "password": PUPIL.password},
    )
    assert reply.status == 404
    assert SESSION not in set_cookies(reply)


def test_what_the_pages_echo_is_escaped(stack: Stack) -> None:
    reply = Browser(stack).log_in('<b id="x">"mallory', "wrong-password")
    assert reply.status == 401
    assert '<b id="x">' not in reply.body
    assert "&lt;b id=&#34;x&#34;&gt;&#34;mallory" in reply.body


def test_a_role_the_configuration_no_longer_has_ends_the_session(stack: Stack) -> None:
    sessions = stack_sessions(stack)
    person = Person(TEACHER.uid, TEACHER.display_name, TEACHER.mail, frozenset())
    session = sessions.new(person, "headmaster")  # no such [[roles]] entry
    browser = Browser(stack)
    browser.cookies[SESSION] = sessions.seal(session)
    assert browser.get("/Mathe7b").status == 403
    revoked = (stack.sidecar.config.parent / "revoked_sessions.json").read_text()
    assert session.session_id in revoked
