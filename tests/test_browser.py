"""The login flow as a person uses it: Debian's Chromium, headless, driven by Playwright.

Screenshots go to ``artifacts/`` (login page in German and English, the landing,
the waiting page, the start page with a guest link, the guest page); the German
phone ones in ``docs/`` and the README come from ``tests/test_pages_a11y.py``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from demo.jitsi_http import JitsiHttp
from demo.ports import free_port
from demo.run import classroom_config
from demo.school import SCHOOL
from demo.slapd import Slapd
from testbed.configs import LENIENT_REGULATION
from testbed.demo_process import REPOSITORY, wait_for_banner
from testbed.stack import Stack, basic_auth

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PageIn = Callable[[str], Page]


@pytest.fixture
def page_in(chromium: Browser) -> Iterator[PageIn]:
    """Pages in fresh browser contexts (no cookies) with a given locale."""
    contexts = []

    def open_page(locale: str) -> Page:
        context = chromium.new_context(locale=locale, viewport={"width": 420, "height": 760})
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def log_in(
    page: Page, username_label: str, password_label: str, submit: str, uid: str, password: str
) -> None:
    page.get_by_label(username_label).fill(uid)
    page.get_by_label(password_label).fill(password)
    page.get_by_role("button", name=submit).click()


def test_teacher_logs_in_is_moderator_logs_out(stack: Stack, page_in: PageIn) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = page_in("de-DE")
    teacher = SCHOOL.teachers[0]
    page.goto(f"{stack.nginx.url}/Mathe7b")
    expect(page).to_have_url(re.compile(r"/auth/login\?next=%2FMathe7b$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Anmelden, um am Unterricht teilzunehmen"
    )
    expect(page.get_by_label("Benutzername")).to_be_focused()
    page.screenshot(path=str(ARTIFACTS / "login-de.png"))
    log_in(page, "Benutzername", "Passwort", "Anmelden", teacher.uid, teacher.password)
    expect(page).to_have_url(re.compile(r"/Mathe7b\?jwt="))
    expect(page.locator("#moderator")).to_have_text("yes")
    expect(page.locator("#name")).to_have_text(teacher.display_name)
    page.screenshot(path=str(ARTIFACTS / "landing-teacher.png"))

    page.get_by_role("link", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/auth/logout$"))
    page.get_by_role("button", name="Abmelden").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Abgemeldet")
    page.goto(f"{stack.nginx.url}/Mathe7b")
    expect(page).to_have_url(re.compile(r"/auth/login\?next=%2FMathe7b$"))
    # A real browser also sent Referer headers for everything the page loaded.
    assert "jwt=" not in stack.nginx.access_log.read_text()


def test_pupil_is_no_moderator(stack: Stack, page_in: PageIn) -> None:
    page = page_in("en-GB")
    pupil = SCHOOL.pupils[1]
    page.goto(f"{stack.nginx.url}/Mathe%207b")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to join the lesson")
    expect(page.get_by_text("Room: Mathe 7b")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "login-en.png"))
    log_in(page, "User name", "Password", "Log in", pupil.uid, pupil.password)
    expect(page).to_have_url(re.compile(r"/Mathe%207b\?jwt="))
    expect(page.locator("#moderator")).to_have_text("no")
    expect(page.locator("#room")).to_have_text("Mathe 7b")


def test_wrong_password_shows_an_error_and_stays(stack: Stack, page_in: PageIn) -> None:
    page = page_in("en-GB")
    page.goto(f"{stack.nginx.url}/Mathe7b")
    log_in(page, "User name", "Password", "Log in", SCHOOL.pupils[0].uid, "not-my-password")
    expect(page.get_by_role("alert")).to_have_text("The user name or the password is wrong.")
    expect(page).to_have_url(re.compile(r"/auth/login$"))
    expect(page.get_by_label("User name")).to_have_value(SCHOOL.pupils[0].uid)
    expect(page.get_by_label("Password")).to_have_attribute("aria-describedby", "login-error")
    # The name is there already: the focus is where the mistake is, on the password.
    expect(page.get_by_label("Password")).to_be_focused()


def test_keyboard_only_login(stack: Stack, page_in: PageIn) -> None:
    page = page_in("en-GB")
    pupil = SCHOOL.pupils[0]
    page.goto(f"{stack.nginx.url}/Mathe7b")
    expect(page.get_by_label("User name")).to_be_focused()
    page.keyboard.type(pupil.uid)
    page.keyboard.press("Tab")
    page.keyboard.type(pupil.password)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Log in")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/Mathe7b\?jwt="))


def test_a_foreign_fragment_token_never_survives_into_the_room(
    stack: Stack, page_in: PageIn
) -> None:
    """A crafted link carries a teacher's token in the fragment, which the
    server never sees and Jitsi's web app reads first: the pupil who follows
    it must end in the room as herself."""
    teacher = SCHOOL.teachers[0]
    pupil = SCHOOL.pupils[1]
    redirect = stack.get("/Mathe7b", basic_auth(teacher.uid, teacher.password))
    foreign = parse_qs(urlsplit(redirect.header("Location") or "").query)["jwt"][0]
    for fragment in (f"jwt=%22{foreign}%22", f"jwt={foreign}", f"config.x=1&jwt=%22{foreign}%22"):
        # Through the login page ...
        page = page_in("en-GB")
        page.goto(f"{stack.nginx.url}/Mathe7b#{fragment}")
        expect(page).to_have_url(re.compile(r"/auth/login\?next=%2FMathe7b#"))
        log_in(page, "User name", "Password", "Log in", pupil.uid, pupil.password)
        expect(page.locator("#moderator")).to_have_text("no")
        expect(page.locator("#user")).to_have_text(pupil.uid)
        expect(page.locator("#source")).to_have_text("fragment")
        assert foreign not in page.url
        # ... and with a session already there.
        page.goto(f"{stack.nginx.url}/Mathe7b?lang=de#{fragment}")
        expect(page.locator("#user")).to_have_text(pupil.uid)
        expect(page.locator("#moderator")).to_have_text("no")
        assert foreign not in page.url
        own = parse_qs(urlsplit(page.url).query)["jwt"][0]
        assert urlsplit(page.url).fragment == f"jwt=%22{own}%22"


@pytest.fixture
def classroom_stack(slapd: Slapd, make_stack: Callable[..., Stack], jitsi: JitsiHttp) -> Stack:
    return make_stack(slapd, extra=LENIENT_REGULATION + classroom_config(jitsi))


def test_a_pupil_waits_and_is_let_in_when_the_room_opens(
    classroom_stack: Stack, jitsi: JitsiHttp, page_in: PageIn
) -> None:
    pupil = SCHOOL.pupils[1]
    page = page_in("de-DE")
    page.goto(f"{classroom_stack.nginx.url}/Mathe%207b")
    log_in(page, "Benutzername", "Passwort", "Anmelden", pupil.uid, pupil.password)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Der Unterricht hat noch nicht begonnen"
    )
    expect(page).to_have_url(re.compile(r"/Mathe%207b$"))
    expect(page.get_by_text("Raum: Mathe 7b")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "waiting-page.png"))
    jitsi.open("mathe%207b")
    # Nobody touches the page: it checks again by itself and leads in.
    expect(page.locator("#user")).to_have_text(pupil.uid, timeout=20_000)
    expect(page.locator("#moderator")).to_have_text("no")


def test_a_guest_link_from_creation_to_the_room_on_a_phone(
    classroom_stack: Stack, jitsi: JitsiHttp, chromium: Browser
) -> None:
    teacher = SCHOOL.teachers[0]
    desk = chromium.new_context(locale="de-DE", viewport={"width": 1000, "height": 1100})
    phone = chromium.new_context(locale="de-DE", viewport={"width": 390, "height": 844})
    try:
        page = desk.new_page()
        page.goto(f"{classroom_stack.nginx.url}/auth/?room=Mathe%207b")
        log_in(page, "Benutzername", "Passwort", "Anmelden", teacher.uid, teacher.password)
        expect(page.get_by_role("heading", level=1)).to_have_text("Unterricht")
        page.get_by_role("button", name="Gästelink erstellen").click()
        link = page.get_by_label("Gästelink für Mathe 7b")
        expect(link).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "start-page.png"), full_page=True)
        url = link.input_value()
        assert "/auth/guest/" in url

        guest = phone.new_page()
        guest.goto(url)
        expect(guest.get_by_text(f"Eingeladen von {teacher.display_name}")).to_be_visible()
        guest.get_by_label("Name", exact=True).fill("Oma Erna")
        guest.screenshot(path=str(ARTIFACTS / "guest-page.png"))
        guest.get_by_role("button", name="Als Gast teilnehmen").click()
        expect(guest.get_by_role("heading", level=1)).to_have_text(
            "Der Unterricht hat noch nicht begonnen"
        )
        jitsi.open("mathe%207b")
        expect(guest.locator("#name")).to_have_text("Oma Erna (Gast)", timeout=20_000)
        expect(guest.locator("#moderator")).to_have_text("no")
    finally:
        desk.close()
        phone.close()


def test_a_hang_up_lands_on_the_start_page_without_the_token(stack: Stack, page_in: PageIn) -> None:
    """Jitsi's hang-up (and cancelling the lobby or a room password) calls
    redirectWithStoredParams('/'): the root with the room's token in query and
    fragment. It lands on the start page, and the token leaves the address bar."""
    teacher = SCHOOL.teachers[0]
    page = page_in("de-DE")
    page.goto(f"{stack.nginx.url}/Mathe7b")
    log_in(page, "Benutzername", "Passwort", "Anmelden", teacher.uid, teacher.password)
    expect(page.locator("#moderator")).to_have_text("yes")
    token = parse_qs(urlsplit(page.url).query)["jwt"][0]
    for hung_up in (f"/?jwt={token}#jwt=%22{token}%22", f"/?jwt={token}"):
        page.goto(f"{stack.nginx.url}{hung_up}")
        expect(page).to_have_url(re.compile(r"/auth/#?$"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Unterricht")
        assert token not in page.url
        assert "jwt" not in page.url


def test_a_waiting_page_with_a_fragment_still_checks_again(
    classroom_stack: Stack, jitsi: JitsiHttp, page_in: PageIn
) -> None:
    """Jitsi's "Rejoin" and its automatic reload add a fragment
    (#jwt=...&config.startWithAudioMuted=...): a refresh without an address would
    be a jump within the page there, and the pupil would never be let in."""
    pupil = SCHOOL.pupils[1]
    page = page_in("de-DE")
    page.goto(f"{classroom_stack.nginx.url}/Mathe%207b")
    log_in(page, "Benutzername", "Passwort", "Anmelden", pupil.uid, pupil.password)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Der Unterricht hat noch nicht begonnen"
    )
    rejoin = "/Mathe%207b?lang=de#jwt=%22a.b.c%22&config.startWithAudioMuted=true"
    page.goto(f"{classroom_stack.nginx.url}{rejoin}")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Der Unterricht hat noch nicht begonnen"
    )
    assert urlsplit(page.url).fragment
    jitsi.open("mathe%207b")
    expect(page.locator("#user")).to_have_text(pupil.uid, timeout=20_000)
    expect(page.locator("#moderator")).to_have_text("no")
    assert "lang=de" in page.url
    assert "a.b.c" not in page.url


@pytest.fixture
def demo_url() -> Iterator[str]:
    """``python -m demo`` as ``make demo`` runs it: its own slapd, nginx, stand-ins."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "demo", "--port", str(port)],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    # Its log keeps coming after the banner: read it, or the demo blocks on a full pipe.
    drain = threading.Thread(target=process.stdout.read, daemon=True)
    try:
        wait_for_banner(process, time.monotonic() + 60)
        drain.start()
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
        if drain.ident is not None:  # started
            drain.join(timeout=30)
        process.stdout.close()


def test_in_the_demo_a_teacher_opens_mathe_7b_and_a_pupil_gets_in(
    demo_url: str, chromium: Browser
) -> None:
    """The demo's meet page opens its room while the teacher has it loaded; a room whose
    name needs percent-encoding must open for the pupils too."""
    teacher, pupil = SCHOOL.teachers[0], SCHOOL.pupils[0]
    desk = chromium.new_context(locale="de-DE")
    bench = chromium.new_context(locale="de-DE")
    try:
        teaching = desk.new_page()
        teaching.goto(f"{demo_url}/Mathe%207b")
        log_in(teaching, "Benutzername", "Passwort", "Anmelden", teacher.uid, teacher.password)
        expect(teaching.locator("#moderator")).to_have_text("yes")
        expect(teaching.locator("#lesson-state")).to_have_text(
            "The room is open: pupils and guests get in."
        )
        learning = bench.new_page()
        learning.goto(f"{demo_url}/Mathe%207b")
        log_in(learning, "Benutzername", "Passwort", "Anmelden", pupil.uid, pupil.password)
        expect(learning.locator("#user")).to_have_text(pupil.uid, timeout=20_000)
        expect(learning.locator("#room")).to_have_text("Mathe 7b")
    finally:
        desk.close()
        bench.close()
