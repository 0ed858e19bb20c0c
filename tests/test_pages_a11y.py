"""Every page as a pupil, a parent and a screen reader meet it, in Debian's Chromium.

axe-core (from npm, installed by ``make test``) is injected into each page,
in German and English, light and dark: no violation rated serious or
critical. A phone 360 px wide keeps a 40-character room name on the page.
The waiting page and the start page let a pupil in once a teacher opens the
room, without reloading themselves, and say so once in their status line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from demo.jitsi_http import JitsiHttp
from demo.nginx import make_webroot
from demo.run import classroom_config
from demo.school import SCHOOL
from demo.slapd import Slapd
from testbed.configs import LENIENT_REGULATION
from testbed.stack import Stack

REPOSITORY = Path(__file__).resolve().parents[1]
AXE = REPOSITORY / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPOSITORY / "artifacts"
REPORTED = ("serious", "critical")
# One word, as Jitsi room names often are: 40 characters.
LONG_ROOM = "Mathematikleistungskursoberstufe2026GrpB"
PHONE = {"width": 360, "height": 640}
HELP = (
    "\n[site]\n"
    'help_text = { de = "Passwort vergessen? Bitte im Sekretariat fragen.", '
    'en = "Forgot your password? Please ask the school office." }\n'
)
TEACHER, PUPIL = SCHOOL.teachers[0], SCHOOL.pupils[1]
# The pages nginx shows instead of a room (sidecar.web.pages.PAGE_STATUS); "challenge"
# comes with a Basic prompt, which headless Chromium answers with an error instead.
REFUSALS = (
    "forbidden",
    "not-a-room",
    "banned",
    "unavailable",
    "error",
    "wrong-room",
    "guest-invalid",
)
WORDS = {
    "de": {
        "user": "Benutzername",
        "password": "Passwort",
        "log_in": "Anmelden",
        "create": "Gästelink erstellen",
        "withdraw": "Zurückziehen",
        "withdraw_yes": "Ja, zurückziehen",
        "guest_name": "Name",
        "enter": "Als Gast teilnehmen",
        "log_out": "Abmelden",
        "waiting": "Der Unterricht hat noch nicht begonnen",
        "start_open": "Der Unterricht hat begonnen: Die Links für die App sind jetzt da.",
    },
    "en": {
        "user": "User name",
        "password": "Password",
        "log_in": "Log in",
        "create": "Create a guest link",
        "withdraw": "Withdraw",
        "withdraw_yes": "Yes, withdraw",
        "guest_name": "Your name",
        "enter": "Join as a guest",
        "log_out": "Log out",
        "waiting": "The lesson has not started yet",
        "start_open": "The lesson has begun: the links for the app are here now.",
    },
}


@pytest.fixture
def school(slapd: Slapd, make_stack: Callable[..., Stack], jitsi: JitsiHttp) -> Stack:
    """Pupils wait for the teacher; the stand-in meet page opens its room for a teacher
    who has it loaded, as joining the conference does on a real site."""
    stack = make_stack(slapd, extra=LENIENT_REGULATION + classroom_config(jitsi) + HELP)
    make_webroot(stack.nginx.webroot, demo_rooms_url=jitsi.demo_rooms_url)
    return stack


@pytest.fixture
def contexts(chromium: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Fresh browser contexts (no cookies), closed after the test."""
    made: list[BrowserContext] = []

    def new(**options: Any) -> BrowserContext:
        context = chromium.new_context(**options)
        made.append(context)
        return context

    yield new
    for context in made:
        context.close()


def log_in(page: Page, language: str, person: Any) -> None:
    words = WORDS[language]
    page.get_by_label(words["user"]).fill(person.uid)
    page.get_by_label(words["password"], exact=True).fill(person.password)
    page.get_by_role("button", name=words["log_in"]).click()


def serious_violations(page: Page) -> list[str]:
    """axe-core's violations rated serious or critical, one line each."""
    assert AXE.exists(), f"{AXE} is missing: make test installs it (npm ci)"
    page.wait_for_load_state("load")  # the style sheet applied: contrast is judged on it
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
            .map(v => ({ id: v.id, impact: v.impact,
                         where: v.nodes.slice(0, 3).map(n => n.target.join(" ")) }))"""
    )
    return [
        f"{item['id']} ({item['impact']}) at {item['where']}"
        for item in found
        if item["impact"] in REPORTED
    ]


def create_guest_link(page: Page, language: str, room: str) -> str:
    """A guest link for ``room`` from the teacher's start page; the page then shows it first."""
    page.goto(f"{page.url.split('/auth/')[0]}/auth/?room={room}")
    page.get_by_role("button", name=WORDS[language]["create"]).click()
    expect(page).to_have_url(re.compile(r"&created=[^#]+#guest-created$"))
    return page.locator("#created-link").input_value()


def visit_every_page(
    url: str, language: str, new_page: Callable[[], Page], check: Callable[[Page, str], None]
) -> None:
    """Every page a visitor, a pupil, a teacher and a guest see, each ``check``ed once."""
    words = WORDS[language]
    visitor = new_page()
    for name in REFUSALS:
        visitor.goto(f"{url}/auth/page/{name}")
        check(visitor, name)
    visitor.goto(f"{url}/auth/logout")
    check(visitor, "logout, nobody logged in")
    visitor.goto(f"{url}/Mathe%207b")
    check(visitor, "login")
    visitor.get_by_label(words["user"]).fill(PUPIL.uid)
    visitor.get_by_label(words["password"], exact=True).fill("wrong")
    visitor.get_by_role("button", name=words["log_in"]).click()
    expect(visitor.get_by_role("alert")).to_be_visible()
    check(visitor, "login after a wrong password")

    pupil = new_page()
    pupil.goto(f"{url}/Mathe%207b")
    log_in(pupil, language, PUPIL)
    expect(pupil.get_by_role("heading", level=1)).to_have_text(words["waiting"])
    check(pupil, "waiting")
    pupil.goto(f"{url}/auth/?room=Mathe%207b")
    check(pupil, "start page, waiting")
    pupil.goto(f"{url}/auth/statistics")
    check(pupil, "statistics, not a teacher")
    pupil.goto(f"{url}/auth/logout")
    check(pupil, "logout")

    teacher = new_page()
    teacher.goto(f"{url}/auth/?room=Physik")
    log_in(teacher, language, TEACHER)
    check(teacher, "start page, open")
    guest_url = create_guest_link(teacher, language, "Mathe%207b")
    check(teacher, "start page, guest link created")
    teacher.goto(f"{url}/auth/statistics")
    check(teacher, "statistics")

    guest = new_page()
    guest.goto(guest_url)
    check(guest, "guest page")
    guest.get_by_label(words["guest_name"], exact=True).fill("Oma Erna")
    guest.get_by_role("button", name=words["enter"]).click()
    expect(guest.get_by_role("heading", level=1)).to_have_text(words["waiting"])
    check(guest, "waiting, guest")
    expect(guest.get_by_role("link", name=words["log_out"])).to_be_visible()
    guest.goto(f"{url}/auth/")
    check(guest, "start page, guest")

    teacher.goto(f"{url}/auth/?room=Mathe%207b")
    teacher.get_by_role("link", name=words["withdraw"]).first.click()
    check(teacher, "withdraw question")
    teacher.get_by_role("button", name=words["withdraw_yes"]).click()
    check(teacher, "withdrawn")
    guest.goto(f"{url}/Mathe%207b")
    check(guest, "guest, link withdrawn")
    teacher.goto(f"{url}/auth/logout")
    teacher.get_by_role("button", name=words["log_out"]).click()
    check(teacher, "logged out")


class Audit:
    """axe's findings per page, for one language and colour scheme at a time."""

    def __init__(self, contexts: Callable[..., BrowserContext]) -> None:
        self.contexts = contexts
        self.found: dict[str, list[str]] = {}
        self.options: dict[str, Any] = {}

    def new_page(self) -> Page:
        return self.contexts(**self.options).new_page()

    def check(self, page: Page, what: str) -> None:
        seen = f"{self.options['locale']} {self.options['color_scheme']} {what}"
        self.found[seen] = serious_violations(page)


def test_every_page_has_no_serious_or_critical_violation(
    school: Stack, contexts: Callable[..., BrowserContext]
) -> None:
    """Injecting axe needs the page's CSP bypassed: in these contexts only."""
    audit = Audit(contexts)
    for locale, language in (("de-DE", "de"), ("en-GB", "en")):
        for scheme in ("light", "dark"):
            audit.options = {
                "locale": locale,
                "color_scheme": scheme,
                "bypass_csp": True,
                "viewport": {"width": 390, "height": 844},
            }
            visit_every_page(school.nginx.url, language, audit.new_page, audit.check)
    assert {what: lines for what, lines in audit.found.items() if lines} == {}
    assert len(audit.found) == 4 * 24


def assert_fits(page: Page, what: str) -> None:
    # Measured with the style sheet applied: after the page's load event.
    page.wait_for_load_state("load")
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        """() => [...document.body.querySelectorAll("*")]
            .filter(e => e.getBoundingClientRect().right > innerWidth)
            .map(e => `${e.tagName}#${e.id}.${e.className}`)"""
    )
    assert width <= PHONE["width"], f"{what}: {width} px wide on a phone, through {wide}"


def test_a_long_room_name_keeps_a_phone_page_unscrolled(
    school: Stack, contexts: Callable[..., BrowserContext]
) -> None:
    url = school.nginx.url
    assert len(LONG_ROOM) == 40
    teacher = contexts(locale="de-DE", viewport=PHONE).new_page()
    teacher.goto(f"{url}/auth/?room={LONG_ROOM}")
    log_in(teacher, "de", TEACHER)
    assert_fits(teacher, "start page, open")
    guest_url = create_guest_link(teacher, "de", LONG_ROOM)
    assert_fits(teacher, "start page, guest link created")
    teacher.get_by_role("link", name="Zurückziehen").first.click()
    assert_fits(teacher, "withdraw question")

    pupil = contexts(locale="de-DE", viewport=PHONE).new_page()
    pupil.goto(f"{url}/{LONG_ROOM}")
    assert_fits(pupil, "login")
    log_in(pupil, "de", PUPIL)
    expect(pupil.get_by_role("heading", level=1)).to_have_text(WORDS["de"]["waiting"])
    assert_fits(pupil, "waiting")
    pupil.goto(f"{url}/auth/?room={LONG_ROOM}")
    assert_fits(pupil, "start page, waiting")

    guest = contexts(locale="de-DE", viewport=PHONE).new_page()
    guest.goto(guest_url)
    assert_fits(guest, "guest page")
    guest.get_by_label("Name", exact=True).fill("Oma Erna")
    guest.get_by_role("button", name="Als Gast teilnehmen").click()
    assert_fits(guest, "waiting, guest")
    guest.goto(f"{url}/Physik")
    assert_fits(guest, "wrong room")
    guest.goto(f"{url}/auth/")
    assert_fits(guest, "start page, guest")


WATCH = """() => {
    window.stillThisPage = true;
    window.statusTexts = [];
    const status = document.getElementById("room-state");
    new MutationObserver(() => window.statusTexts.push(status.textContent))
        .observe(status, { childList: true, characterData: true, subtree: true });
}"""


def screenshot(page: Page, name: str) -> None:
    """Into artifacts/: docs/ holds copies of the German phone ones."""
    page.wait_for_load_state("load")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def open_the_room_as_a_teacher(contexts: Callable[..., BrowserContext], url: str) -> None:
    teaching = contexts(locale="de-DE").new_page()
    teaching.goto(f"{url}/Mathe%207b")
    log_in(teaching, "de", TEACHER)
    expect(teaching.locator("#lesson-state")).to_have_text(
        "The room is open: pupils and guests get in."
    )


def asks_twice_without_a_reload(page: Page) -> list[str]:
    """Waits for two questions to /auth/room-state; the addresses the page went to meanwhile."""
    navigated: list[str] = []
    page.on("framenavigated", lambda frame: navigated.append(frame.url))
    for _ in range(2):
        with page.expect_response(re.compile(r"/auth/room-state\?"), timeout=20_000) as asked:
            pass
        assert asked.value.json()["state"] == "waiting"
    return navigated


def test_the_start_page_shows_a_waiting_pupil_the_app_links_without_a_reload(
    school: Stack, contexts: Callable[..., BrowserContext]
) -> None:
    url = school.nginx.url
    pupil = contexts(locale="de-DE", viewport={"width": 390, "height": 844}).new_page()
    pupil.goto(f"{url}/auth/?room=Mathe%207b")
    log_in(pupil, "de", PUPIL)
    status = pupil.get_by_role("status")
    expect(status).to_contain_text("Der Unterricht hat noch nicht begonnen.")
    expect(pupil.locator("#app-link")).to_have_count(0)
    pupil.evaluate(WATCH)
    navigated = asks_twice_without_a_reload(pupil)
    open_the_room_as_a_teacher(contexts, url)
    expect(pupil.locator("#app-link")).to_be_visible(timeout=20_000)
    expect(status).to_have_text(WORDS["de"]["start_open"])
    assert "jwt=" in pupil.locator("#app-link").input_value()
    assert pupil.evaluate("window.stillThisPage") is True
    assert navigated == []
    # Said once, for a screen reader to read once.
    assert pupil.evaluate("window.statusTexts") == [WORDS["de"]["start_open"]]
    screenshot(pupil, "start-page-pupil-phone.png")


def test_the_waiting_page_lets_a_pupil_in_without_a_reload(
    school: Stack, contexts: Callable[..., BrowserContext]
) -> None:
    url = school.nginx.url
    pupil = contexts(locale="de-DE", viewport={"width": 390, "height": 844}).new_page()
    pupil.goto(f"{url}/Mathe%207b")
    screenshot(pupil, "login-page-phone.png")
    log_in(pupil, "de", PUPIL)
    expect(pupil.get_by_role("heading", level=1)).to_have_text(WORDS["de"]["waiting"])
    screenshot(pupil, "waiting-page-phone.png")
    pupil.evaluate(WATCH)
    navigated = asks_twice_without_a_reload(pupil)
    assert navigated == []
    assert pupil.evaluate("window.stillThisPage") is True
    open_the_room_as_a_teacher(contexts, url)
    expect(pupil.locator("#user")).to_have_text(PUPIL.uid, timeout=20_000)
    expect(pupil.locator("#moderator")).to_have_text("no")
    # One address after the waiting page: the room with the token the answer carried.
    assert len(navigated) == 1
    assert re.search(r"/Mathe%207b\?jwt=[^#]+#jwt=", navigated[0]), navigated


def test_without_javascript_the_waiting_page_refreshes_itself(
    school: Stack, jitsi: JitsiHttp, contexts: Callable[..., BrowserContext]
) -> None:
    pupil = contexts(locale="de-DE", java_script_enabled=False).new_page()
    pupil.goto(f"{school.nginx.url}/Mathe%207b")
    log_in(pupil, "de", PUPIL)
    expect(pupil.get_by_role("heading", level=1)).to_have_text(WORDS["de"]["waiting"])
    jitsi.open("mathe%207b")
    # The stand-in page needs JavaScript to show who is in: its address says it.
    expect(pupil).to_have_url(re.compile(r"/Mathe%207b\?jwt="), timeout=20_000)


def test_a_new_guest_link_is_shown_first_with_a_copy_button(
    school: Stack, contexts: Callable[..., BrowserContext]
) -> None:
    desk = contexts(locale="de-DE", viewport={"width": 390, "height": 844})
    desk.grant_permissions(["clipboard-read", "clipboard-write"])
    teacher = desk.new_page()
    teacher.goto(f"{school.nginx.url}/auth/?room=Physik")
    log_in(teacher, "de", TEACHER)
    create_guest_link(teacher, "de", "Physik")
    first = create_guest_link(teacher, "de", "Mathe%207b")
    # The new one first, said so, with the room and when it was made.
    created = teacher.locator("#guest-created")
    expect(created).to_contain_text("Der Gästelink ist fertig.")
    expect(created).to_contain_text("Mathe 7b")
    expect(created).to_contain_text("Erstellt am")
    assert teacher.locator(".guest-link").first.get_attribute("id") == "guest-created"
    expect(teacher.locator(".guest-link")).to_have_count(2)
    teacher.get_by_role("button", name="Link kopieren").click()
    expect(teacher.locator("#copy-state")).to_have_text("Der Link ist kopiert.")
    assert teacher.evaluate("navigator.clipboard.readText()") == first
    # What acts is big enough for a finger: 44 px high at least.
    for control in (
        teacher.get_by_role("button", name="Link kopieren"),
        teacher.get_by_role("link", name="Zurückziehen").first,
        teacher.get_by_role("link", name="Abmelden"),
    ):
        box = control.bounding_box()
        assert box is not None
        assert box["height"] >= 44, control
    screenshot(teacher, "start-page-phone.png")
    guest = contexts(locale="de-DE", viewport={"width": 390, "height": 844}).new_page()
    guest.goto(first)
    guest.get_by_label("Name", exact=True).fill("Oma Erna")
    screenshot(guest, "guest-page-phone.png")
