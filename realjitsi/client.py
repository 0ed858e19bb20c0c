"""An XMPP client over Prosody's websocket, joining rooms as Jitsi's web app does.

Every wait is bounded: a server that does not answer is a failed check, not a
hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable
from types import TracebackType
from urllib.parse import urlencode

import aiohttp

from realjitsi import stanzas
from realjitsi.stanzas import ForgedIdentity, Presence

TIMEOUT = 10.0
# How long the room must be quiet after a join before the affiliation counts.
AFFILIATION_SETTLE_SECONDS = 0.5


class XmppError(Exception):
    """The server refused a step (authentication, binding) or did not answer it."""


class XmppClient:
    """One websocket connection, authenticated and bound; joins rooms and reads presences.

    ``url`` is the site's ``/xmpp-websocket`` (through nginx, as a browser has it);
    ``host`` is the Host header the browser sends: the site's name, which Prosody
    routes by.
    """

    def __init__(self, url: str, *, host: str, domain: str) -> None:
        self.url = url
        self.host = host
        self.domain = domain
        self.jid = ""
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._counter = 0

    async def __aenter__(self) -> XmppClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _next_id(self) -> str:
        self._counter += 1
        return f"realjitsi{self._counter}"

    async def _connect(self, query: dict[str, str]) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        address = f"{self.url}?{urlencode(query)}" if query else self.url
        try:
            self._socket = await self._session.ws_connect(
                address, protocols=("xmpp",), headers={"Host": self.host}
            )
        except aiohttp.ClientError as error:
            raise XmppError(f"websocket refused: {error}") from error

    async def send(self, frame: str) -> None:
        assert self._socket is not None
        await self._socket.send_str(frame)

    async def receive(self) -> ET.Element:
        assert self._socket is not None
        message = await self._socket.receive(timeout=TIMEOUT)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise XmppError(f"connection ended ({message.type.name})")
        return stanzas.parse(str(message.data))

    async def _until(self, local_name: str) -> ET.Element:
        """Frames are read (and dropped) until one named ``local_name`` arrives."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                element = await self.receive()
                if stanzas.local_name(element) == local_name:
                    return element

    async def _authenticate(self, auth: str) -> None:
        await self.send(stanzas.open_frame(self.domain))
        await self._until("features")
        await self.send(auth)
        answer = await self.receive()
        if stanzas.local_name(answer) != "success":
            reason = next((stanzas.local_name(child) for child in answer), "")
            text = answer.findtext(f"{{{stanzas.SASL}}}text", default="")
            raise XmppError(f"authentication refused: {reason} {text}".strip())
        await self.send(stanzas.open_frame(self.domain))
        await self._until("features")
        stanza_id = self._next_id()
        await self.send(stanzas.bind(stanza_id))
        bound = await self._until("iq")
        jid = bound.findtext(f"{{{stanzas.BIND}}}bind/{{{stanzas.BIND}}}jid")
        if bound.get("type") != "result" or not jid:
            raise XmppError("resource binding refused")
        self.jid = jid

    async def connect_with_token(self, token: str, room: str) -> None:
        """As the web app: ``?room=<backend-safe name>&token=<jwt>``, then SASL ANONYMOUS."""
        await self._connect({"room": room, "token": token})
        await self._authenticate(stanzas.sasl_anonymous())

    async def connect_with_password(self, user: str, password: str) -> None:
        """As jicofo's focus user: SASL PLAIN on its own XMPP domain."""
        await self._connect({})
        await self._authenticate(stanzas.sasl_plain(user, password))

    async def join(
        self,
        room_jid: str,
        display_name: str,
        *,
        identity: ForgedIdentity | None = None,
        nick: str | None = None,
    ) -> Presence:
        """Join ``room_jid``; the room's presence about oneself, or the error that refused it."""
        occupant = f"{room_jid}/{nick or secrets.token_hex(4)}"
        await self.send(stanzas.join_presence(occupant, display_name, identity=identity))
        async with asyncio.timeout(TIMEOUT):
            while True:
                presence = await self._next_presence()
                if presence is None or presence.sender.lower() != occupant.lower():
                    continue
                if presence.error:
                    return presence
                if presence.is_self:
                    return await self._settled(
                        lambda later: later.sender.lower() == occupant.lower() and later.is_self,
                        presence,
                    )

    async def _settled(self, about: Callable[[Presence], bool], first: Presence) -> Presence:
        """The last presence ``about`` someone once the room is quiet for a moment.

        jitsi-meet's token_affiliation sets the affiliation before the join
        completes; jitsi-contrib's token_affiliation_legacy sets it just after,
        in a second presence: the affiliation a person ends up with is the last.
        """
        latest = first
        while True:
            try:
                async with asyncio.timeout(AFFILIATION_SETTLE_SECONDS):
                    presence = await self._next_presence()
            except TimeoutError:
                return latest
            if presence is not None and about(presence):
                latest = presence

    async def _next_presence(self) -> Presence | None:
        """The next frame read, as a presence; None when it is something else."""
        element = await self.receive()
        if stanzas.local_name(element) != "presence":
            return None
        return stanzas.read_presence(element)

    async def presence_of(self, occupant_nick: str) -> Presence:
        """What the room says about another occupant, by nick, once it is quiet."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                presence = await self._next_presence()
                if presence is not None and presence.occupant_nick == occupant_nick:
                    break
        return await self._settled(lambda later: later.occupant_nick == occupant_nick, presence)

    async def turn_lobby(self, room_jid: str, *, on: bool) -> bool:
        """As a moderator does in the web app; whether the room accepted the change."""
        stanza_id = self._next_id()
        await self.send(stanzas.members_only(room_jid, stanza_id, enabled=on))
        async with asyncio.timeout(TIMEOUT):
            while True:
                element = await self.receive()
                if stanzas.local_name(element) == "iq" and element.get("id") == stanza_id:
                    return element.get("type") == "result"

    async def close(self) -> None:
        socket, self._socket = self._socket, None
        session, self._session = self._session, None
        if socket is not None and not socket.closed:
            # A server that already hung up needs no goodbye.
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await socket.send_str(stanzas.close_frame())
            await socket.close()
        if session is not None:
            await session.close()
