"""A teacher makes a guest link through the start page; a guest follows it."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from demo.school import SCHOOL, Person
from sidecar.rooms import room_named
from testbed.stack import Browser, Reply, Stack

TEACHER = SCHOOL.teachers[0]


def teacher_browser(stack: Stack, teacher: Person = TEACHER) -> Browser:
    browser = Browser(stack)
    assert browser.log_in(teacher.uid, teacher.password).status == 302
    return browser


def create_link(browser: Browser, room: str, days: int = 7) -> str:
    """The path of the newest guest link for ``room``, created through the start page."""
    page = browser.get(f"/auth/?room={room_named(room).path[1:]}")
    assert page.status == 200, page
    before = set(guest_urls(page))
    created = browser.post(
        "/auth/guest-links",
        {"csrf_token": browser.csrf_token(page), "room": room, "days": str(days)},
    )
    assert created.status == 302
    after = guest_urls(browser.get(created.header("Location") or "/auth/"))
    (new,) = set(after) - before
    return urlsplit(new).path


def withdraw_question_of(start_page: Reply) -> str:
    """The address the first "Withdraw" on a start page leads to."""
    found = re.search(r'href="(/auth/guest-links/withdraw\?[^"]+)"', start_page.body)
    assert found is not None, start_page.body
    return html.unescape(found.group(1))


def guest_urls(page: Reply) -> list[str]:
    return [
        html.unescape(url) for url in re.findall(r'value="(http[^"]+/auth/guest/[^"]+)"', page.body)
    ]


def enter_as_guest(
    stack: Stack, path: str, name: str, language: str = "en"
) -> tuple[Browser, Reply]:
    guest = Browser(stack, language)
    page = guest.get(path)
    assert page.status == 200, page
    return guest, guest.post(path, {"csrf_token": guest.csrf_token(page), "name": name})
