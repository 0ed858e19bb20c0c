"""A teacher's guest links as the start page lists them: the one she just
created first (with its copy and share buttons), then the others, newest
first, each with its room, how long it is valid, when it was made, and the
address of its withdraw question."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from sidecar.guest_links import GuestLink
from sidecar.web.app_keys import GUEST_LINKS, SETTINGS
from sidecar.web.i18n import Translator
from sidecar.web.pages import translator
from sidecar.web.visitors import Visitor

DEFAULT_DAYS = 7
WITHDRAW_PATH = "/auth/guest-links/withdraw"
# Where the start page shows the link just created (its address ends in this).
CREATED_ANCHOR = "guest-created"


def _moment(t: Translator, when: int) -> str:
    moment = time.localtime(when)
    return time.strftime("%d.%m.%Y %H:%M" if t.language == "de" else "%Y-%m-%d %H:%M", moment)


def until_text(t: Translator, expires_at: int) -> str:
    return t("guest.until", until=_moment(t, expires_at))


def created_text(t: Translator, created_at: int) -> str:
    """ "created 03.12.2026 08:15", or nothing for a link from before creation times were kept."""
    return t("guest.created_at", when=_moment(t, created_at)) if created_at else ""


def withdraw_question(link: GuestLink, back_room: str) -> str:
    """The address of the page that asks before a link is withdrawn."""
    return f"{WITHDRAW_PATH}?{urlencode({'link_id': link.link_id, 'room': back_room})}"


async def guest_links_context(
    request: web.Request, who: Visitor, back_room: str
) -> dict[str, Any] | None:
    """What the start page's guest-link section shows; None when it has none."""
    links = request.app[GUEST_LINKS]
    if links is None or not who.is_teacher:
        return None
    settings = request.app[SETTINGS]
    t = translator(request)
    created_id = request.query.get("created", "")
    shown = [
        {
            "link_id": link.link_id,
            "room": link.room,
            "until": until_text(t, link.expires_at),
            "created": created_text(t, link.created_at),
            "url": settings.server.public_url + links.path_of(link),
            "withdraw": withdraw_question(link, back_room),
        }
        for link in sorted(
            await links.created_by(who.person.user_id),
            key=lambda link: (link.created_at, link.expires_at),
            reverse=True,
        )
    ]
    # Only one of her own links can be "just created": a crafted ?created= shows nothing.
    created = next((link for link in shown if link["link_id"] == created_id), None)
    return {
        "max_days": settings.guests.max_days,
        "default_days": min(DEFAULT_DAYS, settings.guests.max_days),
        "created": created,
        "links": [link for link in shown if link is not created],
    }
