"""Guest links through nginx: created by a teacher, used by a guest, tampered, expired,
withdrawn, on the wrong room; guests never touch LDAP."""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from demo.jitsi_http import JitsiHttp
from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import GuestSettings, Secret
from sidecar.guest_links import GuestLink, GuestLinks, InvalidLink, NotSaved, StateFileError
from sidecar.rooms import room_named
from testbed.configs import LENIENT_REGULATION
from testbed.guests import (
    create_link,
    enter_as_guest,
    guest_urls,
    teacher_browser,
    withdraw_question_of,
)
from testbed.poll import poll_until
from testbed.stack import Browser, Stack, token_in
from tests.jitsi_rules import JitsiSite, admit
from tests.small_disk import small_disk

TEACHER = SCHOOL.teachers[0]
OTHER_TEACHER = SCHOOL.teachers[1]
PUPIL = SCHOOL.pupils[0]
DOMAIN = "meet.school.example"


def site_of(stack: Stack) -> JitsiSite:
    secret = (stack.sidecar.config.parent / "app_secret").read_bytes()
    return JitsiSite(app_id="school-meet", app_secret=secret, subject=DOMAIN)


def ldap_operations(slapd: Slapd) -> int:
    return len(re.findall(r" (?:BIND|SRCH) ", slapd.log()))


def test_a_guest_link_from_creation_to_the_room(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd)
    path = create_link(teacher_browser(stack), "Mathe 7b")
    operations = ldap_operations(slapd)
    guest = Browser(stack, "de")
    invitation = guest.get(path)
    assert invitation.status == 200
    assert "Raum: Mathe 7b" in invitation.body
    assert f"Eingeladen von {TEACHER.display_name}" in invitation.body
    assert "gültig bis" in invitation.body
    entered = guest.post(path, {"csrf_token": guest.csrf_token(invitation), "name": "  Oma Erna "})
    assert entered.status == 302
    assert entered.header("Location") == "/Mathe%207b"
    redirect = guest.get("/Mathe%207b")
    assert redirect.status == 302
    token = token_in(redirect.header("Location") or "")
    admission = admit(token, site_of(stack), "Mathe%207b")
    user = admission.claims["context"]["user"]
    assert user["name"] == "Oma Erna (Gast)"
    assert user["email"] == ""
    assert user["affiliation"] == "member"
    assert admission.moderator is False
    assert guest.get(redirect.header("Location") or "").status == 200
    # Guests never see the login form and never cause an LDAP request.
    assert guest.get("/auth/login?next=%2FMathe%25207b").status == 302
    assert "Mathe 7b" in guest.get("/auth/").body
    assert ldap_operations(slapd) == operations


def test_a_guest_waits_like_a_pupil(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    fake = JitsiHttp(domain=DOMAIN).start()
    try:
        extra = LENIENT_REGULATION + (
            f'\n[classroom]\nwait_for_teacher = true\nroom_size_url = "{fake.room_size_url}"\n'
        )
        stack = make_stack(slapd, extra=extra)
        path = create_link(teacher_browser(stack), "Mathe7b")
        guest, _ = enter_as_guest(stack, path, "Gast")
        waiting = guest.get("/Mathe7b")
        assert waiting.status == 200
        assert 'http-equiv="refresh"' in waiting.body
        fake.open("mathe7b")
        # The closed answer is believed for two seconds.
        reply = poll_until(
            lambda: guest.get("/Mathe7b"), lambda r: r.status == 302, seconds=10, interval=0.1
        )
        assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")
    finally:
        fake.stop()


def test_a_guest_on_another_room_is_told_their_room(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd)
    path = create_link(teacher_browser(stack), "Mathe 7b")
    guest, _ = enter_as_guest(stack, path, "Gast")
    elsewhere = guest.get("/Physik9a")
    assert elsewhere.status == 403
    assert "Your invitation is for the room Mathe 7b" in elsewhere.body
    assert 'href="/Mathe%207b"' in elsewhere.body
    assert "jwt" not in (elsewhere.header("Location") or "")


def forged(path: str, **changes: object) -> str:
    payload, signature = path.removeprefix("/auth/guest/").split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"/auth/guest/{encoded}.{signature}"


def test_altered_expired_and_moved_links_get_no_token(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd)
    path = create_link(teacher_browser(stack), "Mathe7b")
    payload, signature = path.removeprefix("/auth/guest/").split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    keys = (stack.sidecar.config.parent / "guest_keys").read_bytes().split()
    expired = GuestLinks(GuestSettings(keys=(Secret(keys[0]),)), clock=lambda: 1_000_000.0)
    cases = {
        "moved to another room": forged(path, room="Physik9a"),
        "longer": forged(path, expires_at=4_000_000_000),
        "signature": f"/auth/guest/{payload}.{flipped}",
        "no signature": f"/auth/guest/{payload}",
        "expired": asyncio.run(expired.create(room_named("Mathe7b"), 1, "t", "T")),
    }
    for case, bad in cases.items():
        guest = Browser(stack)
        page = guest.get(bad)
        assert page.status == 403, case
        assert ("expired" if case == "expired" else "not valid") in page.body, case
        posted = guest.post(bad, {"csrf_token": "x" * 43, "name": "Eve"})
        assert posted.status == 403, case
        assert not any("jitsi_auth_session" in name for name in guest.cookies), case


def test_a_withdrawn_link_ends_its_guests(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(slapd)
    teacher = teacher_browser(stack)
    path = create_link(teacher, "Mathe7b")
    guest, _ = enter_as_guest(stack, path, "Gast")
    assert guest.get("/Mathe7b").status == 302
    # "Withdraw" is a link to a question, not a button that acts.
    question_path = withdraw_question_of(teacher.get("/auth/?room=Mathe7b"))
    question = teacher.get(question_path)
    assert question.status == 200
    assert "Withdraw the guest link for Mathe7b?" in question.body
    link_id = re.search(r'name="link_id" value="([^"]+)"', question.body).group(1)  # type: ignore[union-attr]
    assert guest.get("/Mathe7b").status == 302  # asking withdrew nothing
    # Another teacher cannot withdraw it, nor see it.
    other = teacher_browser(stack, OTHER_TEACHER)
    assert "gone already" in other.get(question_path).body
    other_page = other.get("/auth/")
    told = other.post(
        "/auth/guest-links/withdraw",
        {"csrf_token": other.csrf_token(other_page), "link_id": link_id},
    )
    assert "gone already" in told.body
    assert guest.get("/Mathe7b").status == 302
    withdrawn = teacher.post(
        "/auth/guest-links/withdraw",
        {"csrf_token": teacher.csrf_token(question), "link_id": link_id, "room": "Mathe7b"},
    )
    # Said afterwards, with the way back.
    assert withdrawn.status == 200
    assert "The guest link for Mathe7b is withdrawn." in withdrawn.body
    assert 'href="/auth/?room=Mathe7b"' in withdrawn.body
    assert guest_urls(teacher.get("/auth/?room=Mathe7b")) == []
    ended = guest.get("/Mathe7b")
    assert ended.status == 403
    assert "no longer valid" in ended.body
    assert "withdrawn" in Browser(stack).get(path).body
    # Remembered across a restart (state_file), like logouts.
    stack.sidecar.stop()
    stack.sidecar.start()
    assert "withdrawn" in Browser(stack).get(path).body


def test_links_survive_a_restart(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(slapd)
    teacher = teacher_browser(stack)
    path = create_link(teacher, "Mathe7b")
    stack.sidecar.stop()
    stack.sidecar.start()
    assert [urlsplit(url).path for url in guest_urls(teacher.get("/auth/"))] == [path]
    assert Browser(stack).get(path).status == 200


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "Eve\x00", "Eve\u202e", "Eve\nX"])
def test_guest_names_are_checked(slapd: Slapd, make_stack: Callable[..., Stack], name: str) -> None:
    stack = make_stack(slapd)
    path = create_link(teacher_browser(stack), "Mathe7b")
    guest, reply = enter_as_guest(stack, path, name)
    assert reply.status == 400
    assert "Please enter your name" in reply.body
    assert not any("jitsi_auth_session" in cookie for cookie in guest.cookies)


# Names that show nothing, hide the "(Gast)" after them, or pile up over the
# names around them in Jitsi's participant list.
INVISIBLE_OR_HIDING_NAMES = {
    "Hangul filler": "\u3164",
    "halfwidth Hangul filler": "\uffa0\uffa0",
    "Hangul choseong and jungseong fillers": "\u115f\u1160",
    "Braille blank": "\u2800\u2800\u2800",
    "variation selectors": "\ufe0f\ufe0e",
    "zero-width space": "\u200b",
    "zero-width joiner in a name": "Eve\u200dX",
    "soft hyphen": "\u00ad",
    "lone combining marks": "\u0301\u0302",
    "a combining mark after a space": "Eve \u0301",
    "Zalgo": "Z\u0351\u0352\u0353\u0354\u0355\u0356\u0357\u0358algo",
    "no-break spaces then a letter": "Anna M\u00fcller" + "\u00a0" * 52 + "x",
    "Hangul fillers then a letter": "Anna M\u00fcller " + "\u3164" * 40 + "x",
    "ideographic spaces": "Anna\u3000\u3000\u3000Eve",
    "punctuation only": "...",
    "a blank between fillers": "\u3164 \u3164",
}
ACCEPTED_NAMES = [
    "Nguy\u1ec5n V\u0103n Anh",  # Vietnamese
    "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd",  # Hebrew with its points
    "\u0905\u0928\u0941\u0937\u094d\u0915\u093e",  # Devanagari
    "\u674e\u5c0f\u9f99",  # Chinese
    "Zoe\u0308 O'Brien-M\u00fcller",  # a decomposed umlaut: composed, kept
    "Anna  M\u00fcller",  # two spaces: a typo, allowed
    "Oma\u00a0Erna",  # a no-break space becomes a plain one
]


def test_guest_names_must_show_a_letter_and_keep_their_suffix(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd, replace={"[guests]\n": "[guests]\nmax_per_address = 1000\n"})
    path = create_link(teacher_browser(stack), "Mathe7b")
    for case, name in INVISIBLE_OR_HIDING_NAMES.items():
        guest, reply = enter_as_guest(stack, path, name)
        assert reply.status == 400, case
        assert "Please enter your name" in reply.body, case
        assert not any("jitsi_auth_session" in cookie for cookie in guest.cookies), case
    for name in ACCEPTED_NAMES:
        guest, reply = enter_as_guest(stack, path, name, "de")
        assert reply.status == 302, name
        token = token_in(guest.get("/Mathe7b").header("Location") or "")
        shown = admit(token, site_of(stack), "Mathe7b").claims["context"]["user"]["name"]
        expected = unicodedata.normalize("NFC", name).replace("\u00a0", " ")
        assert shown == f"{expected} (Gast)", name


def test_guest_forms_need_csrf_and_teachers(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(slapd)
    path = create_link(teacher_browser(stack), "Mathe7b")
    guest = Browser(stack)
    guest.get(path)
    assert guest.post(path, {"csrf_token": "x" * 43, "name": "Eve"}).status == 403
    pupil = Browser(stack)
    pupil.log_in(PUPIL.uid, PUPIL.password)
    page = pupil.get("/auth/?room=Mathe7b")
    assert "Guest links" not in page.body
    csrf = pupil.csrf_token(pupil.get("/auth/logout"))  # a valid token: the refusal is the role
    created = pupil.post("/auth/guest-links", {"csrf_token": csrf, "room": "Mathe7b", "days": "7"})
    assert created.status == 403
    anonymous = stack.get("/auth/guest-links")
    assert anonymous.status in (403, 405)


def test_entering_names_is_rate_limited_per_address(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd, replace={"[guests]\n": "[guests]\nmax_per_address = 3\n"})
    path = create_link(teacher_browser(stack), "Mathe7b")
    statuses = [enter_as_guest(stack, path, f"Gast {n}")[1].status for n in range(4)]
    assert statuses[:2] == [302, 302]
    assert statuses[-1] == 429


async def test_the_longest_validity_is_max_days(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    settings = GuestSettings(keys=(Secret(b"k" * 40),), max_days=3)
    links = GuestLinks(settings, clock=lambda: now[0])
    path = await links.create(room_named("Mathe7b"), 30, "t", "T")
    link = await links.open(path.removeprefix("/auth/guest/"))
    assert link.expires_at == int(now[0]) + 3 * 86400


async def test_link_keys_rotate_like_session_keys() -> None:
    old = GuestLinks(GuestSettings(keys=(Secret(b"a" * 40),)))
    path = (await old.create(room_named("Mathe7b"), 1, "t", "T")).removeprefix("/auth/guest/")
    rotated = GuestLinks(GuestSettings(keys=(Secret(b"b" * 40), Secret(b"a" * 40))))
    assert (await rotated.open(path)).room == "Mathe7b"
    newest = (await rotated.create(room_named("Mathe7b"), 1, "t", "T")).removeprefix("/auth/guest/")
    only_b = GuestLinks(GuestSettings(keys=(Secret(b"b" * 40),)))
    assert (await only_b.open(newest)).room == "Mathe7b"
    with pytest.raises(InvalidLink):
        await GuestLinks(GuestSettings(keys=(Secret(b"b" * 40),))).open(path)


def test_guest_links_never_reach_the_sidecars_log(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd)
    path = create_link(teacher_browser(stack), "Mathe7b")
    enter_as_guest(stack, path, "Gast")
    signed = path.removeprefix("/auth/guest/")
    assert signed.split(".")[0][:20] not in stack.sidecar.log()
    assert "/auth/guest/..." in stack.sidecar.log()


def test_somebody_logged_in_is_not_turned_into_a_guest(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd)
    teacher = teacher_browser(stack)
    path = create_link(teacher, "Mathe7b")
    page = teacher.get(path)
    refused = teacher.post(path, {"csrf_token": teacher.csrf_token(page), "name": "Me"})
    assert "log out first" in refused.body
    assert "org.jitsi.meet://" in teacher.get("/auth/?room=Mathe7b").body


def test_link_creation_is_limited_per_teacher_and_names_per_address(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd, replace={"[guests]\n": "[guests]\nmax_per_address = 2\n"})
    teacher = teacher_browser(stack)
    path = create_link(teacher, "Mathe7b")
    create_link(teacher, "Physik9a")
    page = teacher.get("/auth/")
    third = teacher.post(
        "/auth/guest-links", {"csrf_token": teacher.csrf_token(page), "room": "Bio", "days": "1"}
    )
    assert third.status == 429
    # Another teacher behind the same address is not held back by her links ...
    create_link(teacher_browser(stack, OTHER_TEACHER), "Chemie")
    # ... and guests entering names have their own count.
    assert enter_as_guest(stack, path, "Gast 1")[1].status == 302


@pytest.mark.parametrize(
    "state",
    [
        "not json",
        '{"created": [], "withdrawn": {"abc": "soon"}}',
        '{"created": [{"link_id": "a", "room": "x", "expires_at": "9999999999",'
        ' "inviter_name": "T", "inviter_id": "t"}], "withdrawn": {}}',
        '{"created": []}',
    ],
)
def test_an_unreadable_state_file_stops_the_start(tmp_path: Path, state: str) -> None:
    """Starting without it would forget withdrawals: one line names the file instead."""
    state_file = tmp_path / "guest_links.json"
    state_file.write_text(state)
    settings = GuestSettings(keys=(Secret(b"k" * 40),), state_file=state_file)
    with pytest.raises(StateFileError, match=r"^guests\.state_file: cannot read ") as refused:
        GuestLinks(settings)
    # One line, with the way out (the same policy as sessions.revocation_file).
    assert "\n" not in str(refused.value)
    assert "move it away" in str(refused.value)


async def test_long_non_ascii_rooms_and_names_make_links_that_open() -> None:
    links = GuestLinks(GuestSettings(keys=(Secret(b"k" * 40),)))
    # The longest such rooms Prosody holds: a node of 900 bytes (under 1024).
    room = room_named("Ü" * 50 + "😀" * 50)
    path = await links.create(room, 1, "t", "Ö" * 200)
    assert (await links.open(path.removeprefix("/auth/guest/"))).room == room.room


async def test_a_link_is_read_in_one_spelling_only_and_without_the_teachers_login() -> None:
    links = GuestLinks(GuestSettings(keys=(Secret(b"k" * 40),)))
    path = await links.create(room_named("Mathe7b"), 1, "anna.mueller", "Anna")
    value = path.removeprefix("/auth/guest/")
    payload = value.split(".")[0]
    assert "anna.mueller" not in base64.urlsafe_b64decode(payload + "==").decode()
    for odd in (value + "!!!!", value + "A", value.replace(".", ".A", 1)):
        with pytest.raises(InvalidLink):
            await links.open(odd)


async def test_a_signed_payload_of_the_wrong_shape_is_altered_not_a_500() -> None:
    key = Secret(b"k" * 40)
    links = GuestLinks(GuestSettings(keys=(key,)))
    signer = GuestLinks(GuestSettings(keys=(key,)))
    odd = GuestLink(link_id=["x"], room="Mathe7b", expires_at=4_000_000_000, inviter_name="T")  # type: ignore[arg-type]
    with pytest.raises(InvalidLink):
        await links.open(signer.path_of(odd).removeprefix("/auth/guest/"))


# -- a full, read-only or failing state disk ----------------------------------------


def _links_on(path: Path) -> GuestLinks:
    return GuestLinks(GuestSettings(keys=(Secret(b"k" * 40),), state_file=path))


async def test_a_link_made_on_a_full_disk_is_not_made(tmp_path: Path) -> None:
    """Not handed out, not listed, not there after a restart: never works-but-unlisted."""
    with small_disk(tmp_path / "disk") as disk:
        path = disk.path / "guests.json"
        links = _links_on(path)
        kept = await links.create(room_named("Mathe7b"), 7, "t", "T")
        disk.fill()
        with pytest.raises(NotSaved):
            await links.create(room_named("Physik"), 7, "t", "T")
        assert [link.room for link in await links.created_by("t")] == ["Mathe7b"]
        assert disk.files() == {"guests.json"}  # no temporary file left
        disk.free()
        after = _links_on(path)
        assert [links.path_of(link) for link in await after.created_by("t")] == [kept]


@pytest.mark.parametrize("disk_fault", ["full", "read-only"])
async def test_a_withdrawal_that_cannot_be_written_is_not_made(
    tmp_path: Path, disk_fault: str
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        path = disk.path / "guests.json"
        links = _links_on(path)
        link_path = await links.create(room_named("Mathe7b"), 7, "t", "T")
        (link,) = await links.created_by("t")
        disk.fill() if disk_fault == "full" else disk.read_only()
        with pytest.raises(NotSaved):
            await links.withdraw(link.link_id, "t")
        # As the teacher is told: still listed, still valid, here and after a restart.
        assert await links.created_by("t") == [link]
        # The link itself carries neither who made it nor when.
        assert await links.open(link_path.removeprefix("/auth/guest/")) == replace(
            link, inviter_id="", created_at=0
        )
        assert await _links_on(path).created_by("t") == [link]
        disk.free() if disk_fault == "full" else disk.writable()
        assert await links.withdraw(link.link_id, "t")
        with pytest.raises(InvalidLink, match="withdrawn"):
            await _links_on(path).open(link_path.removeprefix("/auth/guest/"))
        assert disk.files() == {"guests.json"}


async def test_a_failed_fsync_is_a_withdrawal_not_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that reports an I/O error at fsync: injected at the helper."""
    path = tmp_path / "guests.json"
    links = _links_on(path)
    await links.create(room_named("Mathe7b"), 7, "t", "T")
    (link,) = await links.created_by("t")
    before = path.read_bytes()

    def failing_fsync(descriptor: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(NotSaved):
        await links.withdraw(link.link_id, "t")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["guests.json"]


def test_leftover_temporary_files_are_removed_at_the_start(tmp_path: Path) -> None:
    """What a crash between writing and renaming leaves: never read, removed."""
    (tmp_path / ".guests.json.a1b2c3.tmp").write_text("{")
    (tmp_path / "other.tmp").write_text("not ours")
    _links_on(tmp_path / "guests.json")
    assert sorted(os.listdir(tmp_path)) == ["other.tmp"]


def test_a_full_state_disk_is_said_on_the_pages_and_no_restart_undoes_anything(
    slapd: Slapd, make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        workdir = tmp_path / "stack0"
        stack = make_stack(
            slapd,
            replace={
                f'revocation_file = "{workdir}/revoked_sessions.json"': (
                    f'revocation_file = "{disk.path}/revoked"'
                ),
                f'state_file = "{workdir}/guest_links.json"': (
                    f'state_file = "{disk.path}/guests.json"'
                ),
            },
        )
        teacher = teacher_browser(stack)
        path = create_link(teacher, "Mathe7b")
        pupil = Browser(stack)
        assert pupil.log_in(PUPIL.uid, PUPIL.password).status == 302
        copied = dict(pupil.cookies)
        disk.fill()

        question = teacher.get(withdraw_question_of(teacher.get("/auth/?room=Mathe7b")))
        link_id = re.search(r'name="link_id" value="([^"]+)"', question.body).group(1)  # type: ignore[union-attr]
        refused = teacher.post(
            "/auth/guest-links/withdraw",
            {"csrf_token": teacher.csrf_token(question), "link_id": link_id, "room": "Mathe7b"},
        )
        assert refused.status == 503
        assert "The guest link was not withdrawn" in refused.body
        assert 'href="/auth/?room=Mathe7b"' in refused.body
        assert [urlsplit(url).path for url in guest_urls(teacher.get("/auth/"))] == [path]
        assert Browser(stack).get(path).status == 200  # still works, as the page said

        start = teacher.get("/auth/?room=Physik")
        not_made = teacher.post(
            "/auth/guest-links",
            {"csrf_token": teacher.csrf_token(start), "room": "Physik", "days": "7"},
        )
        assert not_made.status == 503
        assert "The guest link was not created" in not_made.body
        assert "/auth/guest/" not in not_made.body
        assert [urlsplit(url).path for url in guest_urls(teacher.get("/auth/"))] == [path]

        german = Browser(stack, "de")
        german.cookies = dict(pupil.cookies)
        form = german.get("/auth/logout")
        out = german.post("/auth/logout", {"csrf_token": german.csrf_token(form)})
        assert out.status == 503
        assert "Nur in diesem Browser abgemeldet" in out.body
        assert not any("jitsi_auth_session" in name for name in german.cookies)
        # In this process the logout holds at once: a copy of the cookie is refused.
        copy = Browser(stack)
        copy.cookies = dict(copied)
        assert (copy.get("/Mathe7b").header("Location") or "").startswith("/auth/login")
        assert disk.files() == {"guests.json"}  # nothing half-written, no temporary file

        disk.free()
        # The next logout writes the one that failed as well.
        other = Browser(stack)
        other.log_in(PUPIL.uid, PUPIL.password)
        form = other.get("/auth/logout")
        assert other.post("/auth/logout", {"csrf_token": other.csrf_token(form)}).status == 200
        stack.sidecar.stop()
        stack.sidecar.start()
        assert (copy.get("/Mathe7b").header("Location") or "").startswith("/auth/login")
        # The link was not withdrawn, as she was told: still listed, still valid.
        assert [urlsplit(url).path for url in guest_urls(teacher.get("/auth/"))] == [path]
        assert Browser(stack).get(path).status == 200
        stack.stop()


def test_an_unreadable_revocation_file_stops_the_daemon_with_one_line(
    tmp_path: Path, slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd)
    stack.sidecar.stop()
    revocation_file = stack.sidecar.config.parent / "revoked_sessions.json"
    revocation_file.write_text("jitsi-auth-sidecar revoked sessions v1\n1700000000 ab")
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar.cli",
            "serve",
            "--config",
            str(stack.sidecar.config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    (line,) = [line for line in finished.stderr.splitlines() if "revocation_file" in line]
    expected = f"jitsi-auth-sidecar: sessions.revocation_file: cannot read {revocation_file}"
    assert line.startswith(expected)
    assert "move it away" in line
