"""Jitsi's multi-tenant sites: /<tenant>/<room> guarded like /<room>, sub = the tenant."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from demo.jitsi_http import JitsiHttp
from demo.school import SCHOOL
from demo.slapd import Slapd
from testbed.configs import LENIENT_REGULATION
from testbed.stack import Browser, Stack, basic_auth, token_in
from tests.jitsi_rules import JitsiSite, TokenRefused, admit

TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[0]
TENANTS = {
    'subject = "meet.school.example"\n': (
        'subject = "meet.school.example"\ntenants = true\ntenant_names = ["schule-a"]\n'
    )
}
# What the admin puts into the include: every tenant name, for the sidecar to judge.
ANY_TENANT = "[a-z0-9_-]+"


def site(stack: Stack, subject: str) -> JitsiSite:
    secret = (stack.sidecar.config.parent / "app_secret").read_bytes()
    return JitsiSite(app_id="school-meet", app_secret=secret, subject=subject)


@pytest.fixture
def tenant_stack(slapd: Slapd, make_stack: Callable[..., Stack], jitsi: JitsiHttp) -> Stack:
    classroom = f'\n[classroom]\nwait_for_teacher = true\nroom_size_url = "{jitsi.room_size_url}"\n'
    return make_stack(
        slapd, extra=LENIENT_REGULATION + classroom, replace=TENANTS, tenants=ANY_TENANT
    )


def test_a_tenant_room_gets_a_token_for_that_tenant(tenant_stack: Stack) -> None:
    credentials = basic_auth(TEACHER.uid, TEACHER.password)
    reply = tenant_stack.get("/Schule-A/Mathe%207b", credentials)
    assert reply.status == 302
    location = reply.header("Location") or ""
    assert location.startswith("/schule-a/Mathe%207b?jwt=")
    token = token_in(location)
    admission = admit(token, site(tenant_stack, "schule-a"), "Mathe%207b")
    assert admission.claims["sub"] == "schule-a"
    assert admission.claims["room"] == "mathe%207b"
    assert admission.moderator is True
    # Not valid for the site's plain rooms, nor another tenant's.
    with pytest.raises(TokenRefused):
        admit(token, site(tenant_stack, "meet.school.example"), "Mathe%207b")
    page = tenant_stack.get(location, credentials)
    assert page.status == 200
    assert "stands in for Jitsi Meet" in page.body


def test_plain_rooms_keep_the_site_subject(tenant_stack: Stack) -> None:
    credentials = basic_auth(TEACHER.uid, TEACHER.password)
    token = token_in(tenant_stack.get("/Mathe7b", credentials).header("Location") or "")
    assert admit(token, site(tenant_stack, "meet.school.example"), "Mathe7b")


def test_unknown_tenants_are_not_rooms(tenant_stack: Stack) -> None:
    credentials = basic_auth(TEACHER.uid, TEACHER.password)
    for path in ("/schule-b/Mathe7b", "/x_y/Mathe7b", "/schule-a/a*b"):
        reply = tenant_stack.get(path, credentials)
        assert reply.status == 404, path
        assert reply.header("Location") is None


def test_a_tenants_own_files_stay_jitsis(tenant_stack: Stack) -> None:
    assert "var config" in tenant_stack.get("/schule-a/config.js").body
    assert "var config" in tenant_stack.get("/SCHULE-A/config.js").body
    assert tenant_stack.get("/libs/app.bundle.min.js").status == 200
    # The tenant's XMPP connection (config.js: subdir + "http-bind") is Prosody's.
    for name in ("http-bind", "xmpp-websocket"):
        reply = tenant_stack.get(f"/schule-a/{name}")
        assert reply.status == 200, name
        assert f"prosody stand-in: {name}" in reply.body
    before = tenant_stack.sidecar.log().count("/auth/verify")
    tenant_stack.get("/libs/app.bundle.min.js")
    assert tenant_stack.sidecar.log().count("/auth/verify") == before


def test_a_token_on_a_tenant_room_reaches_the_sidecar(tenant_stack: Stack) -> None:
    credentials = basic_auth(TEACHER.uid, TEACHER.password)
    for path in ("/schule-a/Mathe7b", "/Schule-A/Mathe7b"):
        reply = tenant_stack.get(f"{path}?jwt=a.b.c", credentials)
        assert reply.status == 302, path
        assert (reply.header("Location") or "").startswith("/schule-a/Mathe7b?jwt=eyJ")


def test_a_hang_up_in_a_tenant_lands_on_the_start_page(tenant_stack: Stack) -> None:
    for path in ("/schule-a/?jwt=a.b.c", "/Schule-A/?lang=de&jwt=a.b.c", "/?jwt=a.b.c"):
        reply = tenant_stack.get(path)
        assert (reply.status, reply.header("Location")) == (302, "/auth/#"), path


def test_guests_stay_out_of_tenant_rooms(tenant_stack: Stack) -> None:
    from testbed.guests import create_link, enter_as_guest, teacher_browser

    path = create_link(teacher_browser(tenant_stack), "Mathe7b")
    guest, _ = enter_as_guest(tenant_stack, path, "Gast")
    assert guest.get("/schule-a/Mathe7b").status == 403
    assert guest.get("/Mathe7b").status in (200, 302)


def test_the_login_comes_back_to_the_tenant_room(tenant_stack: Stack) -> None:
    browser = Browser(tenant_stack)
    first = browser.get("/schule-a/Mathe7b")
    assert first.header("Location") == "/auth/login?next=%2Fschule-a%2FMathe7b"
    logged_in = browser.log_in(TEACHER.uid, TEACHER.password, next_path="/schule-a/Mathe7b")
    assert logged_in.header("Location") == "/schule-a/Mathe7b"


def test_pupils_wait_for_the_tenant_room(tenant_stack: Stack, jitsi: JitsiHttp) -> None:
    reply = tenant_stack.get("/schule-a/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password))
    assert reply.status == 200
    assert 'http-equiv="refresh"' in reply.body
    asked = jitsi.requests[-1]
    assert (asked.room, asked.subdomain) == ("mathe7b", "schule-a")


def test_without_tenants_a_tenant_path_is_no_room(stack: Stack) -> None:
    """Jitsi's own tenant location rewrites /<tenant>/<room> to /<room>, which the
    include guards: without tenants configured, the sidecar sees the tenant path
    and answers "not a room", never a token."""
    reply = stack.get("/schule-a/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password))
    assert reply.status == 404
    assert reply.header("Location") is None
