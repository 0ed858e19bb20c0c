"""Sessions re-read the role from LDAP; keys rotate without logging anybody out."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Callable

from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.sessions import COOKIE_NAME as SESSION
from sidecar.sessions import Session
from testbed.stack import Browser, Stack, stack_sessions, token_in
from tests.jitsi_rules import JitsiSite, admit

TEACHER = SCHOOL.teachers[0]


def site_of(stack: Stack) -> JitsiSite:
    secret = (stack.sidecar.config.parent / "app_secret").read_bytes()
    return JitsiSite(app_id="school-meet", app_secret=secret, subject="meet.school.example")


def moderator_in_room(browser: Browser, site: JitsiSite) -> bool:
    reply = browser.get("/Mathe7b")
    location = reply.header("Location") or ""
    assert location.startswith("/Mathe7b?jwt="), (reply.status, location)
    return admit(token_in(location), site, "Mathe7b").moderator


def change_membership(slapd: Slapd, group_dn: str, change: str, member_dn: str) -> None:
    """``change`` ("add" or "delete") ``member_dn`` in ``group_dn``, as the directory's admin."""
    ldif = f"dn: {group_dn}\nchangetype: modify\n{change}: member\nmember: {member_dn}\n"
    password_file = slapd.workdir / "admin.password"
    subprocess.run(
        ["ldapmodify", "-x", "-H", slapd.ldap_url, "-D", slapd.admin_dn, "-y", str(password_file)],
        input=ldif,
        text=True,
        check=True,
        capture_output=True,
        env={"LDAPNOINIT": "1"},
    )


def backdate_role_check(browser: Browser, stack: Stack, seconds: int) -> Session:
    """What the cookie would look like ``seconds`` later: the role check is due."""
    sessions = stack_sessions(stack)
    session = sessions.open(browser.cookies[SESSION])
    assert session is not None
    old = dataclasses.replace(session, role_checked=int(time.time()) - seconds)
    browser.cookies[SESSION] = sessions.seal(old)
    return old


def test_teacher_removed_from_the_group_loses_moderator_rights(
    own_slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(own_slapd)
    site = site_of(stack)
    browser = Browser(stack)
    assert browser.log_in(TEACHER.uid, TEACHER.password).status == 302
    assert moderator_in_room(browser, site) is True
    change_membership(own_slapd, SCHOOL.teachers_group_dn, "delete", TEACHER.dn)
    # Within the refresh interval the session keeps what it had ...
    assert moderator_in_room(browser, site) is True
    # ... once the interval has passed, the next request re-reads the role:
    # Anna is in no group now, so she is out, and her session with her.
    backdate_role_check(browser, stack, 601)
    assert browser.get("/Mathe7b").status == 403
    assert (browser.get("/Mathe7b").header("Location") or "").startswith("/auth/login")


def test_role_change_gives_the_new_role(own_slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(own_slapd)
    site = site_of(stack)
    browser = Browser(stack)
    browser.log_in(TEACHER.uid, TEACHER.password)
    # Anna becomes a pupil as well, then stops being a teacher.
    change_membership(own_slapd, SCHOOL.pupils_group_dn, "add", TEACHER.dn)
    change_membership(own_slapd, SCHOOL.teachers_group_dn, "delete", TEACHER.dn)
    backdate_role_check(browser, stack, 601)
    assert moderator_in_room(browser, site) is False
    sessions = stack_sessions(stack)
    refreshed = sessions.open(browser.cookies[SESSION])
    assert refreshed is not None
    assert refreshed.role == "pupil"


def test_outage_during_the_role_check_keeps_the_role(
    own_slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(own_slapd)
    site = site_of(stack)
    browser = Browser(stack)
    browser.log_in(TEACHER.uid, TEACHER.password)
    own_slapd.stop()
    backdate_role_check(browser, stack, 601)
    assert moderator_in_room(browser, site) is True


def test_keys_rotate_without_logging_anybody_out(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd)
    browser = Browser(stack)
    browser.log_in(TEACHER.uid, TEACHER.password)
    keys_file = stack.sidecar.config.parent / "session_keys"
    old_key = keys_file.read_text().strip()
    new_key = "N" * 48
    # A new key in front: old cookies still open, new ones are sealed with it.
    keys_file.write_text(f"{new_key}\n{old_key}\n")
    stack.sidecar.stop()
    stack.sidecar.start()
    assert (browser.get("/Mathe7b").header("Location") or "").startswith("/Mathe7b?jwt=")
    fresh = Browser(stack)
    fresh.log_in(TEACHER.uid, TEACHER.password)
    assert stack_sessions(stack, keys=(new_key.encode(),)).open(fresh.cookies[SESSION])
    # The old key retired: its cookies are no session any more.
    keys_file.write_text(f"{new_key}\n")
    stack.sidecar.stop()
    stack.sidecar.start()
    assert (browser.get("/Mathe7b").header("Location") or "").startswith("/auth/login")
    assert (fresh.get("/Mathe7b").header("Location") or "").startswith("/Mathe7b?jwt=")


def test_the_start_page_follows_the_directory_too(
    own_slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    """App links on the start page carry tokens: a teacher taken out of the group
    gets none there either, once her role check is due."""
    stack = make_stack(own_slapd)
    browser = Browser(stack)
    assert browser.log_in(TEACHER.uid, TEACHER.password).status == 302
    assert "org.jitsi.meet://" in browser.get("/auth/?room=Mathe7b").body
    change_membership(own_slapd, SCHOOL.teachers_group_dn, "delete", TEACHER.dn)
    backdate_role_check(browser, stack, 3600)
    page = browser.get("/auth/?room=Mathe7b")
    assert page.status == 302
    assert (page.header("Location") or "").startswith("/auth/login")
