"""The web layer's own promises: verify never answers what nginx cannot take,
cookies follow the public URL's scheme (the access log: tests/test_logs.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from demo.run import write_demo_config
from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import Settings, load_settings
from sidecar.guard import Guard, RoomAccessRequest, Verdict
from sidecar.web.app import PAGE_HEADER, REDIRECT_HEADER, create_app
from sidecar.web.app_keys import GUARD


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


async def test_https_public_url_gives_host_prefixed_secure_cookies(
    https_settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(create_app(https_settings))
    form = await client.get("/auth/login?next=%2FMathe7b")
    csrf_cookie = form.headers["Set-Cookie"]
    assert csrf_cookie.startswith("__Host-jitsi_auth_csrf=")
    assert "Secure" in csrf_cookie
    assert "SameSite=Strict" in csrf_cookie
    token = csrf_cookie.split("=", 1)[1].split(";", 1)[0]
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
    value = session_cookie.split("=", 1)[1].split(";", 1)[0]
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
