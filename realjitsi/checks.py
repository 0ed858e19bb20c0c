"""The checks: tokens the sidecar hands out through nginx, used the way the web app uses them.

Each check adds a row (what was expected, what happened); a check that breaks
half-way adds a row saying how, and the run goes on.
"""

from __future__ import annotations

import asyncio
import re
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import aiohttp

from demo.school import SCHOOL, Person
from realjitsi.client import XmppClient, XmppError
from realjitsi.prosody import FOCUS_USER, JitsiHost
from realjitsi.site import TENANT, SchoolSite, guest_link_path, token_of, user_claim
from realjitsi.stanzas import ForgedIdentity, Presence
from realjitsi.table import Row
from testbed.stack import basic_auth

TEACHER, SECOND_TEACHER = SCHOOL.teachers[0], SCHOOL.teachers[1]
PUPIL = SCHOOL.pupils[0]

# Room names as people type them: ASCII, space, umlaut, accent, +, %, and more.
ROOM_SPELLINGS = (
    "Mathe7b",
    "Mathe 7b",
    "Übung",
    "Café",
    "C++",
    "100%",
    "a%20b",
    "Bio-Kurs_2.0",
    "Straße",
    "Ärger Öl",
    "Ελληνικά",
    "日本語",
    "\uff2d\uff41\uff54\uff48\uff45 8",  # fullwidth letters: NFKC makes them "Mathe 8"
    "(Physik)!~",
    "Deutsch+Kunst 5",
    "ǅ lowercase",
)
WAITING_ROOMS = ("Physik9a", "Physik 9a", "Übung 3", "C++ 10%")
EMPTY_ROOM = "Chemie 8c"
# How long a pupil's page keeps checking once the teacher is in (the sidecar
# keeps a room-size answer for seconds).
LET_IN_WITHIN = 15.0
POLL_INTERVAL = 0.5


def decode_uri_component(text: str) -> str:
    """JavaScript's ``decodeURIComponent``, which the web app tries: on a malformed
    escape or bytes that are not UTF-8 it throws, and the app keeps the text as it was."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        return text
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        return text


def backend_safe(segment: str) -> str:
    """The room's node from its address segment, as the web app computes it
    (``getBackendSafeRoomName``): decoded, NFKC, lower case, ``encodeURIComponent``,
    lower case again."""
    name = unicodedata.normalize("NFKC", decode_uri_component(segment)).lower()
    return quote(name, safe="-_.!~*'()").lower()


def room_segment(room: str) -> str:
    """The room's name as one percent-encoded path segment."""
    return quote(room, safe="")


class NoToken(Exception):
    """The sidecar answered a room page without a token (a waiting page, a refusal)."""


def shown(presence: Presence) -> str:
    """A join's outcome as the table shows it: the affiliation, or why it was refused."""
    if presence.error:
        return f"refused ({presence.error})"
    return presence.affiliation


def waits(status: int, body: str) -> bool:
    return status == 200 and 'http-equiv="refresh"' in body


@dataclass
class Run:
    """What the checks share: the site, Prosody's host, the focus, the rows so far."""

    site: SchoolSite
    host: JitsiHost
    focus_password: str
    rows: list[Row] = field(default_factory=list)
    _focus: XmppClient | None = None
    _created: set[str] = field(default_factory=set)

    def add(self, check: str, expected: str, got: str) -> None:
        self.rows.append(Row(check, expected, got))

    async def guarded(self, check: str, expected: str, step: Callable[[], Awaitable[str]]) -> None:
        """One row from ``step``'s answer; an exception is that row's answer."""
        try:
            got = await step()
        except (
            NoToken,
            XmppError,
            TimeoutError,
            OSError,
            aiohttp.ClientError,
            ET.ParseError,
            AssertionError,
            KeyError,
            ValueError,
        ) as error:
            got = f"error: {type(error).__name__} {error}".strip()
        self.add(check, expected, got)

    def client(self, tenant: str = "") -> XmppClient:
        url = self.site.websocket_url
        if tenant:
            url = url.replace("/xmpp-websocket", f"/{tenant}/xmpp-websocket")
        return XmppClient(url, host=self.host.domain, domain=self.host.domain)

    def room_jid(self, node: str, tenant: str = "") -> str:
        # The web app's MUC domain on a tenant's pages is conference.<tenant>.<domain>.
        domain = f"conference.{tenant}.{self.host.domain}" if tenant else self.host.conference
        return f"{node}@{domain}"

    async def create_room(self, room_jid: str) -> None:
        """As jicofo does before anybody joins: the focus user creates the room."""
        if room_jid in self._created:
            return
        if self._focus is None:
            self._focus = XmppClient(
                self.site.websocket_url, host=self.host.domain, domain=self.host.auth
            )
            await self._focus.connect_with_password(FOCUS_USER, self.focus_password)
        presence = await self._focus.join(room_jid, "focus", nick="focus")
        if presence.error:
            raise XmppError(f"the focus could not create {room_jid}: {presence.error}")
        self._created.add(room_jid)

    async def close(self) -> None:
        if self._focus is not None:
            await self._focus.close()

    def token(self, person: Person, path: str) -> str:
        status, token = self.site.room_reply_with_basic(person.uid, person.password, path)
        if not token:
            raise NoToken(f"no token for {path} (HTTP {status})")
        return token

    async def joined(
        self,
        token: str,
        node: str,
        *,
        tenant: str = "",
        display_name: str = "",
        identity: ForgedIdentity | None = None,
        nick: str | None = None,
    ) -> tuple[XmppClient, Presence]:
        """A client that joined (or was refused); the caller closes it."""
        client = self.client(tenant)
        try:
            await client.connect_with_token(token, node)
            presence = await client.join(
                self.room_jid(node, tenant),
                display_name or user_claim(token, "name"),
                identity=identity,
                nick=nick,
            )
        except BaseException:
            await client.close()
            raise
        return client, presence


async def room_spellings(run: Run) -> None:
    """Every spelling: the teacher owns the room, the pupil is a member."""
    for room in ROOM_SPELLINGS:
        await one_spelling(run, room)


async def one_spelling(run: Run, room: str) -> None:
    segment = room_segment(room)
    node = backend_safe(segment)
    clients: list[XmppClient] = []

    async def join_as(person: Person) -> str:
        token = run.token(person, f"/{segment}")
        await run.create_room(run.room_jid(node))
        client, presence = await run.joined(token, node)
        clients.append(client)
        return shown(presence)

    await run.guarded(f"room {room!r}: teacher", "owner", lambda: join_as(TEACHER))
    await run.guarded(f"room {room!r}: pupil", "member", lambda: join_as(PUPIL))
    for client in clients:
        await client.close()


async def another_room(run: Run) -> None:
    async def step() -> str:
        token = run.token(PUPIL, "/Mathe7b")
        await run.create_room(run.room_jid("physik9a"))
        client, presence = await run.joined(token, "physik9a")
        await client.close()
        return "refused" if presence.error else shown(presence)

    await run.guarded("pupil's Mathe7b token in room physik9a", "refused", step)


async def lobby(run: Run) -> None:
    """The lobby on: teachers pass it (token_lobby_bypass), pupils are held in it."""
    segment = room_segment("Englisch 5c")
    node = backend_safe(segment)
    room_jid = run.room_jid(node)
    clients: list[XmppClient] = []

    async def first_teacher() -> str:
        await run.create_room(room_jid)
        client, presence = await run.joined(run.token(TEACHER, f"/{segment}"), node)
        clients.append(client)
        if presence.error:
            return shown(presence)
        return "on" if await client.turn_lobby(room_jid, on=True) else "refused"

    async def join_as(person: Person) -> str:
        client, presence = await run.joined(run.token(person, f"/{segment}"), node)
        clients.append(client)
        return shown(presence)

    await run.guarded("lobby: the teacher turns it on", "on", first_teacher)
    await run.guarded("lobby: a second teacher", "owner", lambda: join_as(SECOND_TEACHER))
    await run.guarded("lobby: the teacher's second device", "owner", lambda: join_as(TEACHER))
    await run.guarded("lobby: a pupil", "refused (registration-required)", lambda: join_as(PUPIL))
    for client in clients:
        await client.close()


async def locked_name(run: Run) -> None:
    """A pupil sends the teacher's name and identity; the room sees the token's."""
    segment = room_segment("Kunst 6a")
    node = backend_safe(segment)
    clients: list[XmppClient] = []
    seen: dict[str, Presence] = {}
    pupil_token = ""

    async def forge() -> str:
        nonlocal pupil_token
        await run.create_room(run.room_jid(node))
        teacher, presence = await run.joined(run.token(TEACHER, f"/{segment}"), node)
        clients.append(teacher)
        if presence.error:
            return f"teacher {shown(presence)}"
        pupil_token = run.token(PUPIL, f"/{segment}")
        pupil, joined = await run.joined(
            pupil_token,
            node,
            display_name=f"{TEACHER.display_name} (Lehrerin)",
            identity=ForgedIdentity(TEACHER.display_name, TEACHER.mail, "owner"),
            nick="forger01",
        )
        clients.append(pupil)
        if joined.error:
            return shown(joined)
        seen["pupil"] = await teacher.presence_of("forger01")
        return seen["pupil"].affiliation

    await run.guarded("locked name: the forging pupil's affiliation", "member", forge)
    presence = seen.get("pupil")
    for check, claim, got in (
        ("name the teacher sees (muc_displayname)", "name", presence.nick if presence else ""),
        ("identity name (presence_identity)", "name", presence.identity_name if presence else ""),
        (
            "identity e-mail (presence_identity)",
            "email",
            presence.identity_email if presence else "",
        ),
        (
            "identity affiliation (presence_identity)",
            "affiliation",
            presence.identity_affiliation if presence else "",
        ),
    ):
        expected = user_claim(pupil_token, claim) if pupil_token else "(no token)"
        run.add(f"locked name: {check}", repr(expected), repr(got) if presence else "(not seen)")
    for client in clients:
        await client.close()


async def tenant_room(run: Run) -> None:
    segment = room_segment("Mathe 7b")
    node = backend_safe(segment)
    clients: list[XmppClient] = []

    async def join_as(person: Person, tenant_of_room: str) -> str:
        token = run.token(person, f"/{TENANT}/{segment}")
        await run.create_room(run.room_jid(node, tenant_of_room))
        client, presence = await run.joined(token, node, tenant=tenant_of_room)
        clients.append(client)
        return shown(presence) if not presence.error else "refused"

    await run.guarded(f"tenant {TENANT}: teacher", "owner", lambda: join_as(TEACHER, TENANT))
    await run.guarded(f"tenant {TENANT}: pupil", "member", lambda: join_as(PUPIL, TENANT))
    await run.guarded(
        f"tenant {TENANT}'s token in the site's own room", "refused", lambda: join_as(PUPIL, "")
    )
    for client in clients:
        await client.close()


async def guest(run: Run) -> None:
    room = "Mathe 7b"
    segment = room_segment(room)
    node = backend_safe(segment)
    details: dict[str, str] = {}

    async def step() -> str:
        teacher = run.site.browser()
        teacher.log_in(TEACHER.uid, TEACHER.password, f"/{segment}")
        link = guest_link_path(teacher, room)
        if not link:
            return "no guest link"
        visitor = run.site.browser()
        page = visitor.get(link)
        visitor.post(link, {"csrf_token": visitor.csrf_token(page), "name": "Oma Erna"})
        reply = visitor.get(f"/{segment}")
        token = token_of(reply.header("Location") or "")
        if not token:
            return f"no token (HTTP {reply.status})"
        details["name"] = user_claim(token, "name")
        await run.create_room(run.room_jid(node))
        client, presence = await run.joined(token, node)
        await client.close()
        return shown(presence)

    await run.guarded("guest (link from the start page)", "member", step)
    run.add("guest's name in the token", "'Oma Erna (Gast)'", repr(details.get("name", "")))


async def waiting_page(run: Run) -> None:
    """Pupils wait for the teacher: the real mod_muc_size says when the room is open.

    Each room is asked about first when only the focus is in it (jicofo creates
    rooms and may stay alone in one): an answer the sidecar kept from an earlier
    question cannot hide what it makes of the focus alone.
    """

    async def nobody_in() -> str:
        return pupil_sees(run, f"/{room_segment(EMPTY_ROOM)}")[0]

    await run.guarded(f"waiting {EMPTY_ROOM!r}: nobody in", "waits", nobody_in)
    for room in WAITING_ROOMS:
        await waiting_in(run, room)


def pupil_sees(run: Run, path: str) -> tuple[str, str]:
    """What a pupil's page shows at ``path``: "let in" (and the token), "waits", or else."""
    reply = run.site.stack.get(path, basic_auth(PUPIL.uid, PUPIL.password))
    token = token_of(reply.header("Location") or "")
    if token:
        return "let in", token
    return ("waits" if waits(reply.status, reply.body) else f"HTTP {reply.status}"), ""


async def waiting_in(run: Run, room: str) -> None:
    segment = room_segment(room)
    node = backend_safe(segment)
    path = f"/{segment}"
    clients: list[XmppClient] = []

    async def focus_alone() -> str:
        await run.create_room(run.room_jid(node))
        return pupil_sees(run, path)[0]

    async def teacher_in() -> str:
        client, presence = await run.joined(run.token(TEACHER, path), node)
        clients.append(client)
        if presence.error:
            return f"teacher {shown(presence)}"
        deadline = time.monotonic() + LET_IN_WITHIN
        while True:
            seen, token = pupil_sees(run, path)
            if token:
                pupil, joined = await run.joined(token, node)
                clients.append(pupil)
                return f"let in, {shown(joined)}"
            if time.monotonic() > deadline:
                return seen
            # The pupil's page checks again by itself; so does this, a little faster.
            await asyncio.sleep(POLL_INTERVAL)

    await run.guarded(f"waiting {room!r}: only the focus in", "waits", focus_alone)
    await run.guarded(f"waiting {room!r}: teacher in", "let in, member", teacher_in)
    for client in clients:
        await client.close()


async def rs256(run: Run) -> None:
    """Tokens signed with the sidecar's RSA key; Prosody fetches the key from /auth/asap/."""
    segment = room_segment("Mathe 7b")
    node = backend_safe(segment)
    clients: list[XmppClient] = []

    async def join_as(person: Person) -> str:
        await run.create_room(run.room_jid(node))
        client, presence = await run.joined(run.token(person, f"/{segment}"), node)
        clients.append(client)
        return shown(presence)

    await run.guarded("RS256 (asap_key_server): teacher", "owner", lambda: join_as(TEACHER))
    await run.guarded("RS256 (asap_key_server): pupil", "member", lambda: join_as(PUPIL))
    for client in clients:
        await client.close()
