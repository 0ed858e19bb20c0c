"""The start page (/auth/) and the statistics (/auth/statistics), through nginx."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from demo.jitsi_http import JitsiHttp
from demo.run import classroom_config
from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import JITSI_MEET_APP, AppLink
from sidecar.jitsi.app_links import app_links, web_link_with_token
from sidecar.rooms import backend_safe_room_name, room_named, safe_next
from testbed.configs import LENIENT_REGULATION
from testbed.poll import poll_until
from testbed.stack import Browser, Reply, Stack, basic_auth
from tests.jitsi_rules import JitsiSite, admit

TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[0]
DOMAIN = "meet.school.example"
SCHOOL_APP = 'name = "Schul-Meet"\nscheme = "de.schule.meet"\nandroid_package = "de.schule.meet"'


@pytest.fixture
def classroom_stack(slapd: Slapd, make_stack: Callable[..., Stack], jitsi: JitsiHttp) -> Stack:
    extra = LENIENT_REGULATION + classroom_config(jitsi) + f"\n[[apps]]\n{SCHOOL_APP}\n"
    return make_stack(slapd, extra=extra)


def site_of(stack: Stack) -> JitsiSite:
    secret = (stack.sidecar.config.parent / "app_secret").read_bytes()
    return JitsiSite(app_id="school-meet", app_secret=secret, subject=DOMAIN)


def links(page: Reply) -> list[str]:
    return [html.unescape(link) for link in re.findall(r'href="([^"]+)"', page.body)]


def test_the_start_page_asks_for_a_login_and_comes_back(classroom_stack: Stack) -> None:
    browser = Browser(classroom_stack)
    reply = browser.get("/auth/?room=Mathe%207b")
    assert reply.status == 302
    assert reply.header("Location") == "/auth/login?next=%2Fauth%2F%3Froom%3DMathe%25207b"
    logged_in = browser.log_in(TEACHER.uid, TEACHER.password, next_path="/auth/?room=Mathe%207b")
    assert logged_in.header("Location") == "/auth/?room=Mathe%207b"


@pytest.mark.parametrize("room", ["Mathe 7b", "Übung (Gruppe 1)", "100%", "a+b"])
def test_a_teacher_gets_app_links_with_a_token_for_the_room(
    classroom_stack: Stack, room: str
) -> None:
    browser = Browser(classroom_stack)
    assert browser.log_in(TEACHER.uid, TEACHER.password).status == 302
    page = browser.get(f"/auth/?room={room_named(room).path[1:]}")
    assert page.status == 200
    assert TEACHER.display_name in page.body
    found = links(page)
    ios = next(link for link in found if link.startswith("org.jitsi.meet://"))
    android = next(link for link in found if link.startswith("intent://"))
    school_app = next(link for link in found if link.startswith("de.schule.meet://"))
    for link in (ios, android, school_app):
        parts = urlsplit(link)
        assert parts.netloc == "127.0.0.1:" + str(classroom_stack.nginx.port)
        assert unquote(parts.path) == "/" + room
        token = parse_qs(parts.query)["jwt"][0]
        admission = admit(token, site_of(classroom_stack), parts.path[1:])
        assert admission.moderator is True
        assert admission.claims["room"] == backend_safe_room_name(room)
    assert android.endswith("#Intent;scheme=org.jitsi.meet;package=org.jitsi.meet;end")
    assert "do not pass it on" in page.body
    assert page.header("Cache-Control") == "no-store"
    assert page.header("Referrer-Policy") == "no-referrer"


def test_pupils_get_app_links_only_once_the_room_is_open(
    classroom_stack: Stack, jitsi: JitsiHttp
) -> None:
    browser = Browser(classroom_stack)
    assert browser.log_in(PUPIL.uid, PUPIL.password).status == 302
    closed = browser.get("/auth/?room=Mathe7b")
    assert "has not started yet" in closed.body
    assert not any(link.startswith(("org.jitsi.meet:", "intent:")) for link in links(closed))
    assert "/Mathe7b" in links(closed)  # waiting in the browser is still offered
    assert "Right now" not in closed.body  # figures are for teachers
    jitsi.open("mathe7b")
    # The closed answer is believed for two seconds.
    open_page = poll_until(
        lambda: browser.get("/auth/?room=Mathe7b"),
        lambda page: "has not started yet" not in page.body,
        seconds=10,
        interval=0.2,
    )
    token = parse_qs(
        urlsplit(
            next(link for link in links(open_page) if link.startswith("org.jitsi.meet://"))
        ).query
    )["jwt"][0]
    assert admit(token, site_of(classroom_stack), "Mathe7b").moderator is False


def test_basic_users_see_the_start_page_too(classroom_stack: Stack) -> None:
    page = classroom_stack.get(
        "/auth/?room=Mathe7b",
        {**basic_auth(TEACHER.uid, TEACHER.password), "Accept-Language": "en"},
    )
    assert page.status == 200
    assert any(link.startswith("org.jitsi.meet://") for link in links(page))


def test_a_name_that_is_no_room_is_said_so(classroom_stack: Stack) -> None:
    browser = Browser(classroom_stack)
    browser.log_in(TEACHER.uid, TEACHER.password)
    page = browser.get("/auth/?room=a%2Fb")
    assert page.status == 200
    assert "That is not a room name" in page.body
    assert not any(link.startswith("org.jitsi.meet:") for link in links(page))


def test_statistics_for_teachers(classroom_stack: Stack, jitsi: JitsiHttp) -> None:
    jitsi.open("mathe7b", participants=3)
    jitsi.open("physik9a", participants=2)
    teacher = basic_auth(TEACHER.uid, TEACHER.password)
    reply = classroom_stack.get("/auth/statistics", teacher)
    assert reply.status == 200
    assert reply.header(
        "Content-Type",
    ).startswith("application/json")  # type: ignore[union-attr]
    assert reply.body.replace(" ", "") == '{"conferences":2,"participants":5}'
    page = classroom_stack.get("/auth/", {**teacher, "Accept-Language": "en"})
    assert "2 lessons with 5 participants" in page.body
    assert (
        classroom_stack.get("/auth/statistics", basic_auth(PUPIL.uid, PUPIL.password)).status == 403
    )
    assert classroom_stack.get("/auth/statistics").status == 403


def test_statistics_while_the_bridge_is_down(classroom_stack: Stack, jitsi: JitsiHttp) -> None:
    jitsi.fault = "server-error"
    teacher = basic_auth(TEACHER.uid, TEACHER.password)
    reply = classroom_stack.get("/auth/statistics", teacher)
    assert reply.status == 503
    assert reply.body.replace(" ", "") == '{"conferences":null,"participants":null}'
    page = classroom_stack.get("/auth/", {**teacher, "Accept-Language": "en"})
    assert page.status == 200
    assert "unknown" in page.body


def test_statistics_need_a_bridge(stack: Stack) -> None:
    assert stack.get("/auth/statistics", basic_auth(TEACHER.uid, TEACHER.password)).status == 404


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ("/auth/", "/auth/"),
        ("/auth/?room=Mathe%207b", "/auth/?room=Mathe%207b"),
        ("/auth/?room=%C3%9Cbung", "/auth/?room=%C3%9Cbung"),
        ("/auth/?room=%2F%2Fevil.example", "/auth/"),
        ("/auth/?room=a&room=b", "/auth/"),
        ("/auth/?room=%ff", "/auth/"),
        ("/auth/?next=//evil.example", "/auth/"),
        ("/auth/statistics", "/"),
        ("/auth//evil.example", "/"),
    ],
)
def test_the_start_page_as_a_place_to_come_back_to(asked: str, expected: str) -> None:
    assert safe_next(asked) == expected


@pytest.mark.parametrize("room", ["Mathe 7b", "Übung (Gruppe 1)", "100%", "a+b", "x~y.z!"])
def test_app_links_for_odd_room_names(room: str) -> None:
    request = room_named(room)
    extra = AppLink(name="Schul-Meet", scheme="de.schule.meet", android_package="de.schule.meet")
    built = app_links("https://meet.school.example", request, "h.p.s", (JITSI_MEET_APP, extra))
    assert [links.app for links in built] == ["Jitsi Meet", "Schul-Meet"]
    for links_of_app, scheme in zip(built, ("org.jitsi.meet", "de.schule.meet"), strict=True):
        ios = urlsplit(links_of_app.ios)
        assert (ios.scheme, ios.netloc) == (scheme, "meet.school.example")
        assert unquote(ios.path) == "/" + room
        assert parse_qs(ios.query) == {"jwt": ["h.p.s"]}
        target, _, intent = links_of_app.android.partition("#")
        assert target == "intent://meet.school.example" + ios.path + "?jwt=h.p.s"
        assert intent == f"Intent;scheme={scheme};package={scheme};end"
    web = urlsplit(web_link_with_token("https://meet.school.example", request, "h.p.s"))
    assert (web.scheme, unquote(web.path), web.query) == ("https", "/" + room, "jwt=h.p.s")


def test_statistics_are_a_page_for_a_browser(classroom_stack: Stack, jitsi: JitsiHttp) -> None:
    jitsi.open("mathe7b", participants=1)
    teacher = Browser(classroom_stack, "de")
    assert teacher.log_in(TEACHER.uid, TEACHER.password, "/auth/").status == 302
    browser_accept = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = teacher.get("/auth/statistics", browser_accept)
    assert page.status == 200
    assert (page.header("Content-Type") or "").startswith("text/html")
    assert re.search(r"<dt>Räume</dt><dd>1</dd>\s*<dt>Personen</dt><dd>1</dd>", page.body)
    assert 'href="/auth/"' in page.body
    # One of each: the plural forms on the start page.
    assert "Gerade: 1 Raum mit 1 Person." in teacher.get("/auth/").body
    jitsi.open("physik9a", participants=2)
    assert "Gerade: 2 Räume mit 3 Personen." in wait_for_figures(teacher, "2 Räume")
    # A script still gets JSON, whatever else it accepts.
    data = teacher.get("/auth/statistics", {"Accept": "application/json, text/html"})
    assert data.body.replace(" ", "") == '{"conferences":2,"participants":3}'
    pupil = Browser(classroom_stack, "de")
    assert pupil.log_in(PUPIL.uid, PUPIL.password, "/auth/").status == 302
    refused = pupil.get("/auth/statistics", browser_accept)
    assert refused.status == 403
    assert "Die Zahlen sind für Lehrkräfte." in refused.body
    nobody = classroom_stack.get("/auth/statistics", browser_accept)
    assert nobody.status == 302
    assert (nobody.header("Location") or "").startswith("/auth/login?next=")


def wait_for_figures(browser: Browser, expected: str) -> str:
    """The start page once its figures show ``expected`` (the bridge's are kept a while)."""
    body = poll_until(lambda: browser.get("/auth/").body, lambda body: expected in body)
    assert expected in body, body
    return body


def test_the_start_page_names_the_role_in_the_pages_language(classroom_stack: Stack) -> None:
    for language, teacher_role, pupil_role in (
        ("de", "Lehrkraft", "Schülerin oder Schüler"),
        ("en", "teacher", "pupil"),
    ):
        for person, role in ((TEACHER, teacher_role), (PUPIL, pupil_role)):
            credentials = {**basic_auth(person.uid, person.password), "Accept-Language": language}
            page = classroom_stack.get("/auth/", credentials)
            assert f"({role})." in page.body, (language, person.uid)
