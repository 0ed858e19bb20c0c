"""/auth/room-state, which the waiting page and the start page ask instead of
reloading: the guard's own answer, through nginx, at the waiting page's pace."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from urllib.parse import quote

import pytest

from demo.jitsi_http import JitsiHttp
from demo.run import classroom_config
from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.jitsi.room_budget import PER_PERSON, PERSON_WINDOW
from sidecar.web.waiting import JITTER, OFTEN_SECONDS
from testbed.configs import LENIENT_REGULATION
from testbed.guests import create_link, enter_as_guest, teacher_browser
from testbed.poll import poll_until
from testbed.stack import Browser, Reply, Stack, basic_auth, token_in
from tests.jitsi_rules import JitsiSite, admit

TEACHER, PUPIL = SCHOOL.teachers[0], SCHOOL.pupils[0]
DOMAIN = "meet.school.example"


@pytest.fixture
def classroom_stack(slapd: Slapd, make_stack: Callable[..., Stack], jitsi: JitsiHttp) -> Stack:
    return make_stack(slapd, extra=LENIENT_REGULATION + classroom_config(jitsi))


def state_of(reply: Reply) -> dict[str, object]:
    assert (reply.header("Content-Type") or "").startswith("application/json"), reply
    answer = json.loads(reply.body)
    assert isinstance(answer, dict)
    return answer


def ask(client: Stack | Browser, room: str, headers: dict[str, str] | None = None) -> Reply:
    return client.get(f"/auth/room-state?room={quote(room, safe='')}", headers)


def once_open(client: Stack | Browser, room: str) -> dict[str, object]:
    """Asks until the answer is no longer "waiting" (answers are kept a few seconds)."""
    answer = poll_until(
        lambda: state_of(ask(client, room)), lambda answer: answer["state"] != "waiting"
    )
    assert answer["state"] != "waiting", "still waiting"
    return answer


def test_a_waiting_pupil_is_told_when_to_ask_again_and_then_where_to_go(
    classroom_stack: Stack, jitsi: JitsiHttp
) -> None:
    pupil = Browser(classroom_stack)
    assert pupil.log_in(PUPIL.uid, PUPIL.password, "/auth/").status == 302
    waiting = ask(pupil, "/Mathe%207b?lang=de")
    assert waiting.status == 200
    answer = state_of(waiting)
    assert answer["state"] == "waiting"
    low, high = OFTEN_SECONDS * (1 - JITTER), OFTEN_SECONDS * (1 + JITTER)
    assert isinstance(answer["next"], int)
    assert round(low) <= answer["next"] <= round(high)
    # The waiting page's own cookie: the pace is the same whichever page asks.
    assert "jitsi_auth_waiting" in pupil.cookies
    assert waiting.header("Cache-Control") == "no-store"

    jitsi.open("mathe%207b")
    opened = once_open(pupil, "/Mathe%207b?lang=de")
    assert opened["state"] == "open"
    go = str(opened["go"])
    # The room with its other parameters and a token of her own, as a reload's redirect.
    assert go.startswith("/Mathe%207b?lang=de&jwt=")
    secret = (classroom_stack.sidecar.config.parent / "app_secret").read_bytes()
    site = JitsiSite(app_id="school-meet", app_secret=secret, subject=DOMAIN)
    admission = admit(token_in(go), site, "Mathe%207b")
    assert admission.moderator is False
    assert admission.claims["context"]["user"]["id"] == PUPIL.uid


def test_nobody_learns_anything_about_a_room_they_may_not_enter(
    classroom_stack: Stack, jitsi: JitsiHttp
) -> None:
    jitsi.open("mathe7b")
    nobody = ask(classroom_stack, "/Mathe7b")
    assert nobody.status == 403
    assert state_of(nobody) == {"state": "ask-the-page", "go": "/Mathe7b"}
    wrong = ask(classroom_stack, "/Mathe7b", basic_auth(PUPIL.uid, "not-her-password"))
    assert state_of(wrong) == {"state": "ask-the-page", "go": "/Mathe7b"}
    refused = ask(
        classroom_stack, "/Mathe7b", basic_auth(SCHOOL.nobody.uid, SCHOOL.nobody.password)
    )
    assert state_of(refused) == {"state": "ask-the-page", "go": "/Mathe7b"}
    # A token in the address asked about is never handed back.
    teacher = classroom_stack.get("/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password))
    foreign = token_in(teacher.header("Location") or "")
    borrowed = state_of(ask(classroom_stack, f"/Mathe7b?jwt={foreign}"))
    assert foreign not in json.dumps(borrowed)


def test_a_guest_is_told_about_her_own_room_only(classroom_stack: Stack, jitsi: JitsiHttp) -> None:
    path = create_link(teacher_browser(classroom_stack), "Mathe7b")
    guest, entered = enter_as_guest(classroom_stack, path, "Oma Erna")
    assert entered.status == 302
    assert state_of(ask(guest, "/Mathe7b"))["state"] == "waiting"
    jitsi.open("physik")
    assert state_of(ask(guest, "/Physik")) == {"state": "ask-the-page", "go": "/Physik"}
    jitsi.open("mathe7b")
    assert once_open(guest, "/Mathe7b")["state"] == "open"


@pytest.mark.parametrize("room", ["", "/", "/auth/login", "/a/b/c", "/" + "x" * 3000, "%ff"])
def test_an_address_that_is_no_room_is_a_clear_400(classroom_stack: Stack, room: str) -> None:
    reply = ask(classroom_stack, room, basic_auth(PUPIL.uid, PUPIL.password))
    assert reply.status == 400


def test_asking_here_spends_the_askers_own_room_size_budget(
    classroom_stack: Stack, jitsi: JitsiHttp
) -> None:
    """A pupil asking about ever new rooms, as fast as nginx answers her, costs
    Prosody her own budget, not one request per room: as reloads of waiting pages did."""
    sprayer = basic_auth(SCHOOL.pupils[1].uid, SCHOOL.pupils[1].password)
    started = time.monotonic()
    replies = [ask(classroom_stack, f"/spray{number}", sprayer) for number in range(60)]
    elapsed = time.monotonic() - started
    assert all(state_of(reply)["state"] == "waiting" for reply in replies)
    asked_for_her = sum(1 for asked in jitsi.requests if asked.room.startswith("spray"))
    assert asked_for_her <= PER_PERSON * (2 + int(elapsed // PERSON_WINDOW)) < len(replies)
