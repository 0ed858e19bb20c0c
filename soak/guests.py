"""A teacher's guest links and a guest's way in, as the soak's full-disk phase
plays them through nginx (the start page's forms, the guest's name form)."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from soak.browser import Browser, Page

# Each listed link, then its "withdraw" link to the question page, which names its id.
LINK = re.compile(
    r'readonly value="(http[^"]+/auth/guest/[^"]+)".*?/auth/guest-links/withdraw\?link_id=([^&"]+)',
    re.S,
)


def listed(teacher: Browser, room: str) -> dict[str, str]:
    """The teacher's guest links on the start page: path -> link id."""
    page = teacher.get(f"/auth/?room={room}")
    return {urlsplit(html.unescape(url)).path: link_id for url, link_id in LINK.findall(page.body)}


def create(teacher: Browser, room: str) -> tuple[Page, str | None]:
    """Create a link for ``room``: the answer, and the new link's path if one is listed."""
    start = teacher.get(f"/auth/?room={room}")
    before = {urlsplit(html.unescape(url)).path for url, _ in LINK.findall(start.body)}
    form = {"csrf_token": teacher.csrf_token(start), "room": room, "days": "1"}
    answer = teacher.post("/auth/guest-links", form)
    new = set(listed(teacher, room)) - before
    return answer, (new.pop() if len(new) == 1 else None)


def withdraw(teacher: Browser, room: str, path: str) -> Page | None:
    start = teacher.get(f"/auth/?room={room}")
    links = {urlsplit(html.unescape(url)).path: i for url, i in LINK.findall(start.body)}
    if path not in links:
        return None
    # As a teacher does it: "withdraw" asks first, and the question's button withdraws.
    question = teacher.get(f"/auth/guest-links/withdraw?link_id={links[path]}&room={room}")
    form = {"csrf_token": teacher.csrf_token(question), "link_id": links[path], "room": room}
    return teacher.post("/auth/guest-links/withdraw", form)


def guest_gets_in(port: int, path: str, room: str) -> bool:
    """A new guest enters a name on the link's page and asks for the room: a token?"""
    guest = Browser(port)
    invitation = guest.get(path)
    if invitation.status != 200 or not guest.csrf_token(invitation):
        return False
    guest.post(path, {"csrf_token": guest.csrf_token(invitation), "name": "Gast"})
    return guest.get(f"/{room}").admits
