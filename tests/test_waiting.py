"""Pupils wait for the teacher: the room-size API decides, through nginx.

The room-size API is ``demo.jitsi_http``, a stand-in that follows Prosody's
``mod_muc_size``; with a token required it checks tokens with the project's
Jitsi-rules checker.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest

from demo.jitsi_http import JitsiHttp
from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import ClassroomSettings
from sidecar.cookies import CookiePolicy
from sidecar.jitsi.room_budget import PER_PERSON, PERSON_WINDOW
from sidecar.jitsi.room_size import ANSWER_SECONDS, SPELLING_SECONDS, RoomSize
from sidecar.metrics import Metrics
from sidecar.web.waiting import JITTER, LATER_SECONDS, OFTEN_FOR_SECONDS, OFTEN_SECONDS, WaitingPace
from testbed.configs import LENIENT_REGULATION
from testbed.poll import poll_until
from testbed.stack import Browser, Reply, Stack, basic_auth, token_in
from tests.jitsi_rules import JitsiSite, TokenRefused, admit

TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[0]
DOMAIN = "meet.school.example"


def classroom(fake: JitsiHttp, *, on_error: str = "wait", token: bool = False) -> str:
    return LENIENT_REGULATION + (
        "\n[classroom]\nwait_for_teacher = true\n"
        f'room_size_url = "{fake.room_size_url}"\n'
        f'on_room_size_error = "{on_error}"\n'
        f"room_size_token = {'true' if token else 'false'}\n"
    )


@pytest.fixture
def fake() -> Iterator[JitsiHttp]:
    running = JitsiHttp(domain=DOMAIN).start()
    yield running
    running.stop()


def waits(reply: Reply) -> bool:
    """The waiting page, at the room's own address: no token, no redirect."""
    return (
        reply.status == 200
        and reply.header("Location") is None
        and 'http-equiv="refresh"' in reply.body
    )


def until_let_in(get: Callable[[], Reply], seconds: float = 10.0) -> Reply:
    """The pupil's page checking again, as the refresh does, until it leads in."""
    return poll_until(get, lambda reply: reply.status == 302, seconds=seconds, interval=0.2)


@pytest.mark.parametrize("decodes_query", [False, True], ids=["mod_muc_size 2026", "older"])
@pytest.mark.parametrize(
    ("segment", "backend"),
    [
        ("Mathe7b", "mathe7b"),
        ("Mathe%207b", "mathe%207b"),
        ("%C3%9Cbung", "%c3%bcbung"),
        ("Bio%2B", "bio%2b"),
        ("100%25", "100%25"),
    ],
)
def test_pupils_wait_teachers_pass_and_pupils_follow_once_open(
    slapd: Slapd,
    make_stack: Callable[..., Stack],
    fake: JitsiHttp,
    segment: str,
    backend: str,
    decodes_query: bool,
) -> None:
    """Every spelling of a room opens, with today's mod_muc_size (which reads
    ``room=`` as it stands) and with the older one (which decoded it once)."""
    fake.decodes_query = decodes_query
    stack = make_stack(slapd, extra=classroom(fake))
    pupil = basic_auth(PUPIL.uid, PUPIL.password)
    waiting = stack.get(f"/{segment}", pupil)
    assert waits(waiting), waiting
    assert "jwt" not in waiting.body
    # Asked on the meet domain, by Host too (Prosody routes HTTP by it), and
    # today's module was asked for the room's node exactly, first.
    assert {(asked.domain, asked.host, asked.path) for asked in fake.requests} == {
        (DOMAIN, DOMAIN, "/room")
    }
    if not decodes_query:
        assert fake.requests[0].room == backend
    teacher = stack.get(f"/{segment}", basic_auth(TEACHER.uid, TEACHER.password))
    assert teacher.status == 302
    assert (teacher.header("Location") or "").startswith(f"/{segment}?jwt=")
    fake.open(backend)
    let_in = until_let_in(lambda: stack.get(f"/{segment}", pupil))
    assert let_in.status == 302
    assert (let_in.header("Location") or "").startswith(f"/{segment}?jwt=")
    assert fake.requests[-1].room == backend


@pytest.mark.parametrize("lists_focus", [False, True], ids=["focus not listed", "listed"])
def test_a_room_with_only_the_focus_in_it_is_not_open(
    slapd: Slapd, make_stack: Callable[..., Stack], fake: JitsiHttp, lists_focus: bool
) -> None:
    """The teacher left and jicofo's focus stayed: /room-size says one participant,
    but nobody is there to teach."""
    fake.lists_focus = lists_focus
    fake.focus_only("mathe7b")
    stack = make_stack(slapd, extra=classroom(fake))
    pupil = basic_auth(PUPIL.uid, PUPIL.password)
    assert waits(stack.get("/Mathe7b", pupil))
    fake.open("mathe7b", participants=1)
    assert until_let_in(lambda: stack.get("/Mathe7b", pupil)).status == 302


def test_a_session_pupil_waits_and_is_let_in(
    slapd: Slapd, make_stack: Callable[..., Stack], fake: JitsiHttp
) -> None:
    stack = make_stack(slapd, extra=classroom(fake))
    browser = Browser(stack, "de")
    assert browser.log_in(PUPIL.uid, PUPIL.password).status == 302
    waiting = browser.get("/Mathe7b")
    assert waits(waiting)
    assert "Der Unterricht hat noch nicht begonnen" in waiting.body
    assert "Raum: Mathe7b" in waiting.body
    fake.open("mathe7b")
    assert until_let_in(lambda: browser.get("/Mathe7b")).status == 302


def test_a_token_from_earlier_does_not_open_a_closed_room(
    slapd: Slapd, make_stack: Callable[..., Stack], fake: JitsiHttp
) -> None:
    stack = make_stack(slapd, extra=classroom(fake))
    pupil = basic_auth(PUPIL.uid, PUPIL.password)
    fake.open("mathe7b")
    location = stack.get("/Mathe7b", pupil).header("Location") or ""
    assert stack.get(location, pupil).status == 200
    fake.close("mathe7b")
    reply = poll_until(lambda: stack.get(location, pupil), waits, seconds=10, interval=0.2)
    assert waits(reply)


@pytest.mark.parametrize("decodes_query", [False, True], ids=["mod_muc_size 2026", "older"])
def test_the_room_size_request_carries_a_token_prosody_accepts(
    slapd: Slapd, make_stack: Callable[..., Stack], fake: JitsiHttp, decodes_query: bool
) -> None:
    """With enable_roomsize_token_verification, a spelling the module reads as another
    room gets a 403: not an error while the other spelling answers."""
    fake.decodes_query = decodes_query
    stack = make_stack(slapd, extra=classroom(fake, token=True))
    site = JitsiSite(
        app_id="school-meet",
        app_secret=(stack.sidecar.config.parent / "app_secret").read_bytes(),
        subject=DOMAIN,
    )

    def valid_for_room(token: str, room: str) -> bool:
        try:
            admit(token, site, room)
        except TokenRefused:
            return False
        return True

    fake.token_check = valid_for_room
    pupil = basic_auth(PUPIL.uid, PUPIL.password)
    assert waits(stack.get("/Mathe%207b", pupil))
    assert "room-size API" not in stack.sidecar.log()
    asked = fake.requests[-1]
    assert asked.token is not None
    claims = admit(asked.token, site, "mathe%207b").claims
    assert claims["moderator"] is False
    assert claims["room"] == "mathe%207b"
    # Accepted by the API: once the room opens, the pupil gets in.
    fake.open("mathe%207b")
    assert until_let_in(lambda: stack.get("/Mathe%207b", pupil)).status == 302


def test_a_403_without_a_token_is_an_error_not_an_open_room(
    slapd: Slapd, make_stack: Callable[..., Stack], fake: JitsiHttp
) -> None:
    fake.token_check = lambda token, room: False
    fake.open("mathe7b")
    stack = make_stack(slapd, extra=classroom(fake))
    assert waits(stack.get("/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password)))


@pytest.mark.parametrize("fault", ["garbage", "server-error", "no-count", "down"])
@pytest.mark.parametrize("on_error", ["wait", "admit"])
def test_an_api_that_fails_follows_the_configured_policy(
    slapd: Slapd, make_stack: Callable[..., Stack], fake: JitsiHttp, fault: str, on_error: str
) -> None:
    stack = make_stack(slapd, extra=classroom(fake, on_error=on_error))
    fake.open("mathe7b")  # open, but the answer cannot be read
    if fault == "down":
        fake.stop()
    else:
        fake.fault = fault  # type: ignore[assignment]
    reply = stack.get("/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password))
    assert reply.status != 500
    if on_error == "wait":
        assert waits(reply)
    else:
        assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")
    # Teachers never wait, whatever the API does.
    teacher = stack.get("/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password))
    assert (teacher.header("Location") or "").startswith("/Mathe7b?jwt=")
    token_in(teacher.header("Location") or "")


def test_a_waiting_class_costs_one_request(
    slapd: Slapd, make_stack: Callable[..., Stack], fake: JitsiHttp
) -> None:
    stack = make_stack(slapd, extra=classroom(fake))
    pupils = [basic_auth(pupil.uid, pupil.password) for pupil in SCHOOL.pupils]
    for credentials in pupils:  # each pupil's password checked once (then cached)
        stack.get("/Mathe7b", credentials)
    before = len(fake.requests)
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(
            pool.map(lambda n: stack.get("/Mathe7b", pupils[n % len(pupils)]), range(30))
        )
    assert all(waits(reply) for reply in replies)
    # Answers are kept two seconds per room: thirty checks cost one or two requests.
    assert len(fake.requests) - before <= 2


def refresh_of(reply: Reply) -> int:
    match = re.search(r'http-equiv="refresh" content="(\d+); url=/Mathe7b"', reply.body)
    assert match is not None, reply.body
    return int(match.group(1))


def test_the_waiting_page_checks_often_at_first_with_jitter(
    slapd: Slapd, make_stack: Callable[..., Stack], fake: JitsiHttp
) -> None:
    stack = make_stack(slapd, extra=classroom(fake))
    browser = Browser(stack)
    pupil = basic_auth(PUPIL.uid, PUPIL.password)
    first = browser.get("/Mathe7b", pupil)
    assert "jitsi_auth_waiting" in browser.cookies
    delays = [refresh_of(browser.get("/Mathe7b", pupil)) for _ in range(20)]
    low, high = OFTEN_SECONDS * (1 - JITTER), OFTEN_SECONDS * (1 + JITTER)
    assert all(round(low) <= delay <= round(high) for delay in [refresh_of(first), *delays])
    assert "The lesson has not started yet" in first.body


def test_the_refresh_names_the_room_with_its_parameters_but_no_token(
    slapd: Slapd, make_stack: Callable[..., Stack], fake: JitsiHttp
) -> None:
    """A refresh with its own address asks the server again even where the page's
    address has a fragment (Chromium drives that case in test_browser)."""
    stack = make_stack(slapd, extra=classroom(fake))
    reply = stack.get("/Mathe%207b?lang=de&jwt=a.b.c", basic_auth(PUPIL.uid, PUPIL.password))
    assert waits(reply)
    assert re.search(r'content="\d+; url=/Mathe%207b\?lang=de"', reply.body), reply.body
    assert "a.b.c" not in reply.body


def test_the_pace_slows_after_the_first_minutes() -> None:
    now = [1_000_000.0]
    pace = WaitingPace(CookiePolicy(secure=True), clock=lambda: now[0])
    delay, cookie = pace.next_check({}, "/Mathe7b")
    assert cookie is not None
    name, value = cookie.split(";")[0].split("=", 1)
    assert round(OFTEN_SECONDS * (1 - JITTER)) <= delay <= round(OFTEN_SECONDS * (1 + JITTER))
    now[0] += OFTEN_FOR_SECONDS + 1
    delays = [pace.next_check({name: value}, "/Mathe7b") for _ in range(20)]
    assert all(cookie is None for _, cookie in delays)
    low, high = round(LATER_SECONDS * (1 - JITTER)), round(LATER_SECONDS * (1 + JITTER))
    assert all(low <= delay <= high for delay, _ in delays)
    assert len({delay for delay, _ in delays}) > 1
    # Another room, or a cookie from the future, starts afresh.
    assert pace.next_check({name: value}, "/Physik")[1] is not None
    assert pace.next_check({name: "99999999999." + value.split(".")[1]}, "/Mathe7b")[1]


def test_the_room_check_token_lives_only_minutes(
    slapd: Slapd, make_stack: Callable[..., Stack], fake: JitsiHttp
) -> None:
    """Prosody may log a refused token: the sidecar's own lives just long enough."""
    stack = make_stack(slapd, extra=classroom(fake, token=True))
    stack.get("/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password))
    token = fake.requests[-1].token
    assert token is not None
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["exp"] - claims["iat"] <= 120


def test_a_pupil_spraying_room_names_keeps_nobody_else_out(
    slapd: Slapd, make_stack: Callable[..., Stack], fake: JitsiHttp
) -> None:
    """One pupil asks for ever new room names, as fast as nginx answers her, while
    another enters an open room again and again (its answer expiring in between): the
    second gets in every time, and the first is held to her own budget."""
    stack = make_stack(slapd, extra=classroom(fake))
    fake.open("mathe7b")
    sprayer = basic_auth(SCHOOL.pupils[1].uid, SCHOOL.pupils[1].password)
    pupil = basic_auth(PUPIL.uid, PUPIL.password)
    names = iter(range(10**6))
    started = time.monotonic()
    entered: list[Reply] = []
    sprayed: list[Reply] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        # Bounded: 40 rounds, and at least three answer lifetimes so that the open
        # room's answer has expired (and been asked again) several times.
        for round_number in range(200):
            if round_number >= 40 and time.monotonic() - started > 3 * ANSWER_SECONDS:
                break
            sprayed += pool.map(lambda _: stack.get(f"/spray{next(names)}", sprayer), range(16))
            entered.append(stack.get("/Mathe7b", pupil))
    elapsed = time.monotonic() - started
    assert all(reply.status != 500 for reply in sprayed)
    assert all(waits(reply) for reply in sprayed)
    assert [reply.status for reply in entered] == [302] * len(entered)
    assert all((reply.header("Location") or "").startswith("/Mathe7b?jwt=") for reply in entered)
    # The sprayer's names cost Prosody her own budget, not one request per name.
    asked_for_her = sum(1 for asked in fake.requests if asked.room.startswith("spray"))
    windows = 2 + int(elapsed // PERSON_WINDOW)
    assert asked_for_her <= PER_PERSON * windows < len(sprayed)


def classroom_settings(url: str, *, on_error: str = "wait") -> ClassroomSettings:
    return ClassroomSettings(
        wait_for_teacher=True,
        room_size_url=url,
        on_room_size_error=on_error,  # type: ignore[arg-type]
    )


async def test_the_spelling_a_site_answers_to_is_remembered(fake: JitsiHttp) -> None:
    fake.decodes_query = True  # the older module
    fake.open("mathe%207b")
    now = [1000.0]
    async with aiohttp.ClientSession() as client:
        room_size = RoomSize(
            classroom_settings(fake.room_size_url),
            domain=DOMAIN,
            client=client,
            token_for=None,
            clock=lambda: now[0],
        )
        assert await room_size.is_open("mathe%207b")
        # Today's spelling first (which this module decodes into another name), then the older.
        assert [asked.room for asked in fake.requests] == ["mathe 7b", "mathe%207b"]
        assert room_size.spelling == "encoded"
        fake.close("mathe%207b")
        now[0] += 3
        asked_before = len(fake.requests)
        assert not await room_size.is_open("mathe%207b")
        assert not await room_size.is_open("physik%209a")
        # One request per room now: the spelling that answered.
        assert [asked.room for asked in fake.requests[asked_before:]] == [
            "mathe%207b",
            "physik%209a",
        ]
        # Learnt again after a while (Prosody may have been upgraded).
        now[0] += SPELLING_SECONDS
        assert room_size.spelling is None


@pytest.mark.parametrize(
    ("path", "domain", "reason", "logged"),
    [
        ("/room-size", "meet.other.example", "unknown-host", "Unknown host"),
        ("/elsewhere/room-size", DOMAIN, "other-404", "not mod_muc_size"),
    ],
    ids=["Prosody serves no such host", "no mod_muc_size there"],
)
@pytest.mark.parametrize("on_error", ["wait", "admit"])
async def test_a_404_page_is_an_error_not_a_closed_room(
    fake: JitsiHttp,
    caplog: pytest.LogCaptureFixture,
    path: str,
    domain: str,
    reason: str,
    logged: str,
    on_error: str,
) -> None:
    """Prosody's own HTML 404 ("Unknown host", or no such path) is no answer about the
    room: logged, counted, and the error policy decides (never a silent "closed")."""
    fake.domain = domain  # the stand-in serves this host only; the sidecar asks for DOMAIN
    fake.open("mathe7b")
    metrics = Metrics()
    async with aiohttp.ClientSession() as client:
        room_size = RoomSize(
            classroom_settings(f"http://127.0.0.1:{fake.port}{path}", on_error=on_error),
            domain=DOMAIN,
            client=client,
            token_for=None,
            metrics=metrics,
        )
        assert await room_size.is_open("mathe7b") is (on_error == "admit")
    assert logged in caplog.text
    errors = metrics.registry.get_sample_value(
        "jitsi_auth_room_size_errors_total", {"reason": reason}
    )
    assert errors == 1
    checks = metrics.registry.get_sample_value(
        "jitsi_auth_room_size_checks_total", {"result": "error"}
    )
    assert checks == 1


def test_prosodys_unknown_host_page_never_keeps_a_class_waiting_silently(
    slapd: Slapd, make_stack: Callable[..., Stack], fake: JitsiHttp
) -> None:
    """A room_size_url whose Prosody serves no such host (Host: 127.0.0.1 once was):
    with "admit", pupils get in rather than waiting for ever on a 404 page."""
    fake.domain = "meet.other.example"
    stack = make_stack(slapd, extra=classroom(fake, on_error="admit"))
    reply = stack.get("/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password))
    assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")
    assert "Unknown host" in stack.sidecar.log()
