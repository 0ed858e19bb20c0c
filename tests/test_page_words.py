"""Every page leads somewhere and says whom to ask; the words fit who reads them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from demo.school import SCHOOL
from demo.slapd import Slapd
from testbed.configs import LENIENT_REGULATION
from testbed.guests import create_link, enter_as_guest, teacher_browser
from testbed.stack import Browser, Stack

HELP_DE = "Passwort vergessen? Bitte im Sekretariat fragen."
HELP_EN = "Forgot your password? Please ask the school office."
SITE = f'\n[site]\naddress = "du"\nhelp_text = {{ de = "{HELP_DE}", en = "{HELP_EN}" }}\n'
# The pages that refuse something (sidecar.web.pages.HELP_PAGES less "challenge",
# which a browser only sees behind its password prompt).
REFUSALS = ("forbidden", "banned", "not-a-room", "unavailable", "error", "guest-invalid")


@pytest.fixture
def school(slapd: Slapd, make_stack: Callable[..., Stack]) -> Stack:
    return make_stack(slapd, extra=LENIENT_REGULATION + SITE)


@pytest.mark.parametrize("name", REFUSALS)
def test_a_refusal_leads_to_the_start_page_and_says_whom_to_ask(school: Stack, name: str) -> None:
    for language, help_text in (("de", HELP_DE), ("en", HELP_EN)):
        page = school.get(f"/auth/page/{name}", {"Accept-Language": language})
        assert 'href="/auth/"' in page.body, (name, language)
        assert help_text in page.body, (name, language)


def test_the_login_page_says_whom_to_ask_and_speaks_as_the_school_chose(school: Stack) -> None:
    page = Browser(school, "de").get("/auth/login?next=%2FMathe7b")
    assert HELP_DE in page.body
    assert "Bitte mit deinem Konto der Schule anmelden." in page.body  # address = "du"
    assert HELP_EN in Browser(school, "en").get("/auth/login?next=%2FMathe7b").body


def test_other_pages_keep_the_help_text_to_themselves(school: Stack) -> None:
    teacher = teacher_browser(school)
    assert HELP_EN not in teacher.get("/auth/").body
    assert HELP_EN not in teacher.get("/auth/logout").body


def test_logging_out_has_a_way_back_and_nobody_is_asked_for_nothing(school: Stack) -> None:
    nobody = Browser(school)
    page = nobody.get("/auth/logout")
    assert page.status == 200
    assert "You are logged out: nobody is logged in in this browser." in page.body
    assert 'action="/auth/logout"' not in page.body
    assert 'href="/auth/"' in page.body
    pupil = Browser(school)
    assert pupil.log_in(SCHOOL.pupils[0].uid, SCHOOL.pupils[0].password).status == 302
    form = pupil.get("/auth/logout")
    assert 'action="/auth/logout"' in form.body
    assert 'href="/auth/">Back to the start page</a>' in form.body
    done = pupil.post("/auth/logout", {"csrf_token": pupil.csrf_token(form)})
    assert 'href="/auth/"' in done.body


def test_a_teacher_on_a_guest_link_is_told_she_is_logged_in_not_that_she_is_a_guest(
    school: Stack,
) -> None:
    teacher = teacher_browser(school)
    path = create_link(teacher, "Mathe7b")
    form = teacher.get(path)
    told = teacher.post(path, {"csrf_token": teacher.csrf_token(form), "name": "Anna"})
    assert "<h1>Logged in already</h1>" in told.body
    assert "guest" not in told.body.split("<h1>", 1)[1].split("</h1>", 1)[0].lower()
    assert 'href="/auth/logout"' in told.body


def test_a_guest_can_log_out_from_every_page_she_sees(school: Stack) -> None:
    path = create_link(teacher_browser(school), "Mathe7b")
    guest, entered = enter_as_guest(school, path, "Oma Erna", "de")
    assert entered.status == 302
    for address in ("/auth/", "/Physik"):
        page = guest.get(address)
        assert 'href="/auth/logout"' in page.body, address
        assert "Als Gast eingeladen" in page.body or "anderen Raum" in page.body
