"""Whether a room is open, from Prosody's ``mod_muc_size``.

A room is open when somebody other than the focus (jicofo) is in it. The
module's ``/room-size`` cannot tell: it counts the focus when it sits alone
(a room the teacher left, or jicofo kept, reads as one participant), so the
sidecar asks the module's occupants endpoint, ``/room`` beside
``room_size_url``: ``GET <.../room>?room=<node>&domain=<xmpp domain>
[&subdomain=<tenant>][&token=<jwt>]`` answers 200 with a JSON list of
occupants (``jid``, ``display_name``, ...), an empty 404 for a room that does
not exist, and 403 when it wants a valid token for the room
(``enable_roomsize_token_verification``). The request names the XMPP domain
in its ``Host`` header: Prosody routes HTTP by it, and answers any other
host with an HTML 404 "Unknown host" of its own.

The room's node (``bio%207b``) travels in one of two spellings, because both
generations of the module are in use: since jitsi-meet 0f9c57eea (2026-05)
the query is read without percent-decoding, so ``room=bio%207b`` exactly;
before, it was decoded once, so ``room=bio%25207b``. A name with a ``%`` is
asked in the current spelling and, where that finds no room, in the older
one; the spelling that finds a room is remembered for this site (and learnt
again after a while, in case Prosody was upgraded meanwhile).

Answers are kept for a couple of seconds per room, and concurrent checks of
one room share one request: a class of thirty waiting pupils costs Prosody
one request per room every few seconds. A check that needs a request is paid
for by whoever asks (:mod:`sidecar.jitsi.room_budget`): over her own budget a
person waits, and nobody else does; rooms that others are waiting in, or
that were open, go before names only one person asks about, and when the
site's budget is spent the last answer about the room stands (a minute at
most). Anything that is neither "open" nor
"closed" (no answer, a 5xx, a 403, Prosody's own 404 page, garbage) is
logged and counted, and ``on_room_size_error`` decides: "wait" keeps pupils
waiting, "admit" lets them in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import aiohttp
from cachetools import TTLCache
from yarl import URL

from sidecar.config.settings import ClassroomSettings
from sidecar.jitsi.room_budget import RoomBudget
from sidecar.metrics import Metrics

log = logging.getLogger(__name__)

# How long one answer about a room is believed.
ANSWER_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 2.0
# Rooms remembered at most (the idle ones go first), each for ROOM_SECONDS after it was last
# asked about: who asked, and the last answer (used when the site's budget is spent).
MAX_ROOMS_REMEMBERED = 10_000
ROOM_SECONDS = 60.0
# How long the spelling a site answered to is trusted before it is learnt again.
SPELLING_SECONDS = 3600.0
# Larger answers are no occupant list of a classroom.
MAX_ANSWER_BYTES = 1 << 20

Spelling = Literal["exact", "encoded"]
SPELLINGS: tuple[Spelling, ...] = ("exact", "encoded")
ErrorReason = Literal["unreachable", "unknown-host", "other-404", "refused", "status", "unreadable"]


class RoomSizeError(Exception):
    """The room-size API gave no usable answer; ``reason`` is a metric label."""

    def __init__(self, reason: ErrorReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Occupants:
    """What ``/room`` said about one spelling of a room: None, or the people in it."""

    people: int | None  # occupants other than the focus; None: no such room
    refused: bool = False  # 403: the token was not good for the room read this way


def occupants_url(room_size_url: str) -> URL:
    """``/room`` beside the configured ``/room-size`` (the same module answers both)."""
    return URL(room_size_url).with_query(None).join(URL("room"))


def room_parameter(backend_room: str, spelling: Spelling) -> str:
    """The ``room=`` value: the node as it is, or encoded once more for modules that decode."""
    return backend_room if spelling == "exact" else quote(backend_room, safe="")


def spellings_for(backend_room: str) -> tuple[Spelling, ...]:
    # Without a "%", both spellings are the same string.
    return SPELLINGS if "%" in backend_room else ("exact",)


def is_focus(jid: object, *, domain: str, focus_user: str) -> bool:
    """jicofo's occupant: its nick (``room@conference.<domain>/focus``) or its own JID
    (``focus@auth.<domain>/...``), whichever the module lists."""
    if not isinstance(jid, str):
        return False
    bare, _, resource = jid.partition("/")
    return resource == focus_user or bare.lower() == f"{focus_user}@auth.{domain}".lower()


async def ask_occupants(
    client: aiohttp.ClientSession,
    url: URL,
    *,
    room: str,
    domain: str,
    tenant: str = "",
    token: str | None = None,
    focus_user: str = "focus",
) -> Occupants:
    """One GET of mod_muc_size's occupants endpoint with ``room=<room>`` sent as it is."""
    query = [f"room={room}", f"domain={quote(domain, safe='')}"]
    if tenant:
        query.append(f"subdomain={quote(tenant, safe='')}")
    if token is not None:
        query.append(f"token={quote(token, safe='')}")
    target = URL(f"{url}?{'&'.join(query)}", encoded=True)
    try:
        async with client.get(
            target,
            # Prosody picks the virtual host (and its HTTP modules) by this.
            headers={"Host": domain},
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
        ) as response:
            status = response.status
            body = await response.content.read(MAX_ANSWER_BYTES)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise RoomSizeError("unreachable", str(error) or type(error).__name__) from None
    if status == 404:
        if not body.strip():
            return Occupants(None)  # mod_muc_size: no such room
        if b"Unknown host" in body:
            raise RoomSizeError(
                "unknown-host",
                f"404 'Unknown host' from Prosody itself: it serves no host {domain!r} "
                "(classroom.xmpp_domain, or http_default_host in Prosody)",
            )
        raise RoomSizeError("other-404", "a 404 page that is not mod_muc_size's (the URL?)")
    if status == 403:
        return Occupants(None, refused=True)
    if status != 200:
        raise RoomSizeError("status", f"status {status}")
    return Occupants(_people(body, domain=domain, focus_user=focus_user))


@dataclass(frozen=True)
class OccupantsEndpoint:
    """mod_muc_size's occupants endpoint as configured: where it is, the XMPP domain it
    serves and the focus's name; one question per spelling of a room's name."""

    url: URL
    domain: str
    focus_user: str

    @classmethod
    def configured(cls, settings: ClassroomSettings, domain: str) -> OccupantsEndpoint:
        return cls(occupants_url(settings.room_size_url), domain, settings.focus_user)

    async def ask(
        self,
        client: aiohttp.ClientSession,
        backend_room: str,
        spelling: Spelling,
        *,
        tenant: str = "",
        token: str | None = None,
    ) -> Occupants:
        return await ask_occupants(
            client,
            self.url,
            room=room_parameter(backend_room, spelling),
            domain=self.domain,
            tenant=tenant,
            token=token,
            focus_user=self.focus_user,
        )


def _people(body: bytes, *, domain: str, focus_user: str) -> int:
    try:
        listed = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise RoomSizeError("unreadable", "the answer is not JSON") from None
    # Lua has one empty table: an empty list may come as {}.
    if listed == {}:
        listed = []
    if not isinstance(listed, list) or not all(isinstance(entry, dict) for entry in listed):
        raise RoomSizeError("unreadable", "no list of occupants in the answer")
    return sum(
        1
        for entry in listed
        if not is_focus(entry.get("jid"), domain=domain, focus_user=focus_user)
    )


@dataclass(frozen=True)
class Asker:
    """Who a check is for: the person (her user id) and where she asks from (her place)."""

    person: str
    place: str


NOBODY = Asker("", "")
RoomKey = tuple[str, str]  # (tenant, backend room)


@dataclass
class RoomNote:
    """What is known of one room lately: who asked first, whether anybody else did, and the
    last answer (None: none yet) with when it came."""

    first_asker: str
    others: bool = False
    answer: bool | None = None
    answered_at: float = 0.0

    @property
    def wanted(self) -> bool:
        """Others are waiting in it, or it was open: not a name one person made up."""
        return self.others or self.answer is True


class RoomSize:
    def __init__(
        self,
        settings: ClassroomSettings,
        *,
        domain: str,
        client: aiohttp.ClientSession,
        token_for: Callable[[str, str], str] | None,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
        budget: RoomBudget | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._endpoint = OccupantsEndpoint.configured(settings, domain)
        self._admit_on_error = settings.on_room_size_error == "admit"
        self._client = client
        self._token_for = token_for
        self._clock = clock
        # The spelling this site's module answered to, and until when that is trusted.
        self._spelling: tuple[Spelling, float] | None = None
        self._rooms: TTLCache[RoomKey, RoomNote] = TTLCache(
            MAX_ROOMS_REMEMBERED, ROOM_SECONDS, timer=clock
        )
        # Requests under way, one per room, shared by everybody who asks meanwhile. A task
        # of its own, so that a first asker who goes away does not take the answer along.
        self._asking: dict[RoomKey, asyncio.Task[bool]] = {}
        self._budget = budget or RoomBudget(clock=clock)

    @property
    def spelling(self) -> Spelling | None:
        """The spelling of ``room=`` this site answered to, once a room with a ``%`` was open."""
        if self._spelling is None or self._spelling[1] < self._clock():
            return None
        return self._spelling[0]

    @property
    def metrics(self) -> Metrics:
        return self._metrics

    async def is_open(self, backend_room: str, tenant: str = "", asker: Asker = NOBODY) -> bool:
        """Whether ``backend_room`` (of ``tenant``) has somebody but the focus in it (or the
        error policy's answer), as far as ``asker`` may learn it now."""
        room = (tenant, backend_room)
        note = self._rooms.get(room)
        if note is not None:
            if note.first_asker != asker.person:
                note.others = True
            if note.answer is not None and self._clock() - note.answered_at < ANSWER_SECONDS:
                return note.answer
        asking = self._asking.get(room)
        if asking is None:
            wanted = note is not None and note.wanted
            refused = await self._budget.spend(asker.person, asker.place, wanted=wanted)
            if refused is not None:
                self._metrics.room_size_held.labels(refused).inc()
                if refused == "site" and note is not None and note.answer is not None:
                    # Prosody is busy: the last answer (a minute old at most) stands.
                    return note.answer
                # Over her own budget (or the site's, with nothing known): she waits;
                # never "admit", which would be for the asking.
                return False
            asking = self._asking.get(room)  # another check may have begun meanwhile
            if asking is None:
                asking = asyncio.create_task(self._ask_and_note(room, asker.person))
                self._asking[room] = asking
                asking.add_done_callback(lambda _: self._asking.pop(room, None))
        return await asyncio.shield(asking)

    async def _ask_and_note(self, room: RoomKey, person: str) -> bool:
        tenant, backend_room = room
        answer = await self._ask(backend_room, tenant)
        note = self._rooms.get(room) or RoomNote(person)
        note.answer, note.answered_at = answer, self._clock()
        self._rooms[room] = note  # set again: remembered ROOM_SECONDS from now
        return answer

    async def _ask(self, backend_room: str, tenant: str) -> bool:
        try:
            is_open = await self._people(backend_room, tenant) > 0
        except RoomSizeError as error:
            self._metrics.room_size.labels("error").inc()
            self._metrics.room_size_errors.labels(error.reason).inc()
            log.warning(
                "room-size API: %s; %s", error, "admitting" if self._admit_on_error else "waiting"
            )
            return self._admit_on_error
        self._metrics.room_size.labels("open" if is_open else "closed").inc()
        return is_open

    async def _people(self, backend_room: str, tenant: str) -> int:
        """People but the focus in the room; 0 when no spelling finds it."""
        token = self._token_for(backend_room, tenant) if self._token_for is not None else None
        known = self.spelling
        spellings = (known,) if known is not None else spellings_for(backend_room)
        refused = 0
        for spelling in spellings:
            answer = await self._endpoint.ask(
                self._client, backend_room, spelling, tenant=tenant, token=token
            )
            if answer.people is not None:
                if len(spellings) > 1:
                    self._spelling = (spelling, self._clock() + SPELLING_SECONDS)
                    log.info("room-size API: this site reads room= %s", spelling)
                return answer.people
            # A 403 for one spelling is the module comparing the token with a room
            # read the other way; only when every spelling is refused is it the token.
            refused += answer.refused
        if refused == len(spellings):
            raise RoomSizeError("refused", "status 403: the room's token was refused")
        return 0
