"""The web layer's own promises: verify never answers what nginx cannot take,
cookies follow the public URL's scheme (the access log: tests/test_logs.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from demo.run import write_demo_config
from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import Settings, load_settings
from sidecar.guard import Allow, Guard, RoomAccessRequest, Verdict
from sidecar.people import Person
from sidecar.sessions import Session, SessionCookies
from sidecar.web.app import PAGE_HEADER, REDIRECT_HEADER, create_app
from sidecar.web.app_keys import GUARD, SESSIONS


@pytest.fixture
def https_settings(slapd: Slapd, tmp_path: Path) -> Settings:
    settings = load_settings(write_demo_config(tmp_path, port=8443, ldap_url=slapd.ldap_url))
    server = dataclasses.replace(settings.server, public_url="https://meet.school.example")
    return dataclasses.replace(settings, server=server)


async def test_a_crash_in_the_decision_is_a_403_page_not_a_500(
    https_settings: Settings, aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await aiohttp_client(create_app(https_settings))

    async def broken(self: Guard, request: RoomAccessRequest) -> Verdict:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Guard, "decide", broken)
    response = await client.get("/auth/verify", headers={"X-Original-URI": "/Mathe7b"})
    assert response.status == 403
    assert response.headers[PAGE_HEADER] == "error"
    assert isinstance(client.app[GUARD], Guard)


async def test_a_session_cookie_that_cannot_be_sealed_leaves_the_answer_standing(
    https_settings: Settings, aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await aiohttp_client(create_app(https_settings))
    renewed = Session("s", "anna", "Anna", "", "teacher", 1, 1, 1)

    async def lets_in_and_renews(
        self: Guard, request: RoomAccessRequest, decision: object = None
    ) -> Verdict:
        request.visit.send_cookie(renewed)
        return Allow("anna")

    def cannot_seal(self: SessionCookies, session: Session) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Guard, "decide", lets_in_and_renews)
    monkeypatch.setattr(SessionCookies, "set_cookie", cannot_seal)
    response = await client.get("/auth/verify", headers={"X-Original-URI": "/Mathe7b"})
    # Before, the middleware's error reached nginx, which answers 500.
    assert response.status == 200
    assert "Set-Cookie" not in response.headers


async def test_https_public_url_gives_host_prefixed_secure_cookies(
    https_settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(create_app(https_settings))
    form = await client.get("/auth/login?next=%2FMathe7b")
    csrf_cookie = form.headers["Set-Cookie"]
    assert csrf_cookie.startswith("__Host-jitsi_auth_csrf=")
    assert "Secure" in csrf_cookie
    assert "SameSite=Strict" in csrf_cookie
    token = _cookie_value(csrf_cookie)
    teacher = SCHOOL.teachers[0]
    response = await client.post(
        "/auth/login",
        data={
            "csrf_token": token,
            "next": "/Mathe7b",
            "username": teacher.uid,
            "password": teacher.password,
        },
        headers={"Cookie": f"__Host-jitsi_auth_csrf={token}"},
        allow_redirects=False,
    )
    assert response.status == 302
    session_cookie = response.headers["Set-Cookie"]
    assert session_cookie.startswith("__Host-jitsi_auth_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in session_cookie
    # The verify endpoint reads the prefixed name, and only that one.
    value = _cookie_value(session_cookie)
    verify = await client.get(
        "/auth/verify",
        headers={"X-Original-URI": "/Mathe7b", "Cookie": f"__Host-jitsi_auth_session={value}"},
    )
    assert verify.status == 401
    assert verify.headers[REDIRECT_HEADER].startswith("/Mathe7b?jwt=")
    unprefixed = await client.get(
        "/auth/verify",
        headers={"X-Original-URI": "/Mathe7b", "Cookie": f"jitsi_auth_session={value}"},
    )
    assert unprefixed.headers[REDIRECT_HEADER].startswith("/auth/login")


def _cookie_value(set_cookie: str) -> str:
    return set_cookie.split("=", 1)[1].split(";", 1)[0]


class CountedLoads:
    """Every time a request's session is loaded (with Redis: a GET each)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        load = SessionCookies.load

        async def counted(sessions: SessionCookies, cookies: Mapping[str, str]) -> Session | None:
            self.count += 1
            return await load(sessions, cookies)

        monkeypatch.setattr(SessionCookies, "load", counted)


@dataclass
class TeacherAsking:
    """An app, a teacher's session cookie for it, and its session loads counted from now."""

    client: TestClient[web.Request, web.Application]
    cookie: str
    loads: CountedLoads


@pytest.fixture
async def teacher_asking(
    https_settings: Settings, aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> TeacherAsking:
    client = await aiohttp_client(create_app(https_settings))
    sessions = client.app[SESSIONS]
    assert sessions is not None
    teacher = SCHOOL.teachers[0]
    person = Person(teacher.uid, teacher.display_name, email="", groups=frozenset())
    sealed = sessions.seal(sessions.new(person, "teacher"))
    return TeacherAsking(client, f"__Host-jitsi_auth_session={sealed}", CountedLoads(monkeypatch))


async def test_the_start_page_loads_the_session_once(teacher_asking: TeacherAsking) -> None:
    response = await teacher_asking.client.get(
        "/auth/?room=Mathe7b", headers={"Cookie": teacher_asking.cookie}
    )
    assert response.status == 200
    assert SCHOOL.teachers[0].display_name in await response.text()
    assert teacher_asking.loads.count == 1


async def test_verify_loads_the_session_once(teacher_asking: TeacherAsking) -> None:
    response = await teacher_asking.client.get(
        "/auth/verify", headers={"X-Original-URI": "/Mathe7b", "Cookie": teacher_asking.cookie}
    )
    assert response.status == 401
    assert response.headers[REDIRECT_HEADER].startswith("/Mathe7b?jwt=")
    assert teacher_asking.loads.count == 1


async def test_the_challenge_page_is_rendered_once_per_language_and_room(
    https_settings: Settings, aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every wrong Basic password is followed by the challenge page: the same page
    for the same room and language, rendered the first time only."""
    client = await aiohttp_client(create_app(https_settings))
    renders: list[str] = []
    get_template = jinja2.Environment.get_template

    def counted(environment: jinja2.Environment, name: str, *more: Any) -> jinja2.Template:
        if name == "message.html":  # not the templates it extends and includes
            renders.append(name)
        return get_template(environment, name, *more)

    monkeypatch.setattr(jinja2.Environment, "get_template", counted)

    async def challenge(room: str, language: str) -> tuple[str, str]:
        headers = {"X-Original-URI": f"/{room}", "Accept-Language": language}
        response = await client.get("/auth/page/challenge", headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
        return await response.text(), response.headers["Content-Type"]

    first = await challenge("Mathe7b", "de")
    for _ in range(3):
        assert await challenge("Mathe7b", "de") == first
    assert renders == ["message.html"]
    assert 'href="/Mathe7b"' in first[0]
    # Another language or another room is another page.
    english = await challenge("Mathe7b", "en")
    other_room = await challenge("Physik8a", "de")
    assert english != first
    assert 'href="/Physik8a"' in other_room[0]
    assert renders == ["message.html"] * 3
