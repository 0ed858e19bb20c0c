"""Links that open a room in a Jitsi Meet app on a phone, token included.

A phone app cannot show the sidecar's login page, so the start page hands it
the room with a token: ``org.jitsi.meet://<host>/<room>?jwt=<token>`` (what
the iOS app registers) and an Android intent
``intent://<host>/<room>?jwt=<token>#Intent;scheme=...;package=...;end``,
for Jitsi's own app and for rebranded ones from ``[[apps]]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from sidecar.config.settings import AppLink
from sidecar.rooms import TOKEN_PARAMETER, RoomRequest


@dataclass(frozen=True)
class AppRoomLinks:
    app: str
    ios: str
    android: str


def _room_with_token(host: str, room: RoomRequest, token: str) -> str:
    # room.path is percent-encoded by rooms.py: a single path segment, nothing to escape.
    return f"{host}{room.path}?{TOKEN_PARAMETER}={quote(token, safe='')}"


def app_links(
    public_url: str, room: RoomRequest, token: str, apps: tuple[AppLink, ...]
) -> list[AppRoomLinks]:
    host = urlsplit(public_url).netloc
    target = _room_with_token(host, room, token)
    return [
        AppRoomLinks(
            app=app.name,
            ios=f"{app.scheme}://{target}",
            android=f"intent://{target}#Intent;scheme={app.scheme};package={app.android_package};end",
        )
        for app in apps
    ]


def web_link_with_token(public_url: str, room: RoomRequest, token: str) -> str:
    """The room's https address with the token: what an app's "join by link" takes."""
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{_room_with_token(parts.netloc, room, token)}"
