"""The XMPP a Jitsi web app sends over Prosody's websocket, and what it reads back.

Only what the checks need: the framing (RFC 7395), SASL ANONYMOUS (the token
rides in the websocket's ``?token=``) and PLAIN (the focus user), resource
binding, the MUC join presence as lib-jitsi-meet sends it (a random nick,
``<nick>`` with the display name), the owner's form that turns the lobby on,
and reading a room's presence: affiliation, role, nick, identity, or the error.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from dataclasses import dataclass

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
CLIENT = "jabber:client"
MUC = "http://jabber.org/protocol/muc"
MUC_USER = "http://jabber.org/protocol/muc#user"
MUC_OWNER = "http://jabber.org/protocol/muc#owner"
DATA_FORMS = "jabber:x:data"
NICK = "http://jabber.org/protocol/nick"
STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"
# Jitsi's lobby answers a refused join with this extension naming the lobby room.
LOBBY_ROOM = "http://jitsi.org/protocol/lobbyrooms"
# A presence from the room about oneself carries status 110.
SELF_PRESENCE = "110"


def element(tag: str, xmlns: str | None = None, **attributes: str) -> ET.Element:
    """An element with its namespace as a plain ``xmlns`` attribute, never a prefix:
    RFC 7395 wants ``xmlns="jabber:client"`` on every stanza, as browsers send it."""
    if xmlns is not None:
        attributes = {"xmlns": xmlns, **attributes}
    return ET.Element(tag, attributes)


def child(parent: ET.Element, tag: str, xmlns: str | None = None, **attributes: str) -> ET.Element:
    made = element(tag, xmlns, **attributes)
    parent.append(made)
    return made


def serialize(stanza: ET.Element) -> str:
    return ET.tostring(stanza, encoding="unicode")


def open_frame(domain: str) -> str:
    return serialize(element("open", FRAMING, to=domain, version="1.0"))


def close_frame() -> str:
    return serialize(element("close", FRAMING))


def sasl_anonymous() -> str:
    return serialize(element("auth", SASL, mechanism="ANONYMOUS"))


def sasl_plain(user: str, password: str) -> str:
    auth = element("auth", SASL, mechanism="PLAIN")
    auth.text = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return serialize(auth)


def bind(stanza_id: str) -> str:
    iq = element("iq", CLIENT, type="set", id=stanza_id)
    child(iq, "bind", BIND)
    return serialize(iq)


@dataclass(frozen=True)
class ForgedIdentity:
    """What a pupil's client could put in its presence to pass as somebody else."""

    name: str
    email: str
    affiliation: str


def join_presence(
    occupant_jid: str, display_name: str, *, identity: ForgedIdentity | None = None
) -> str:
    """A MUC join as lib-jitsi-meet sends it: ``<x xmlns=muc>`` and the display name as nick."""
    presence = element("presence", CLIENT, to=occupant_jid)
    child(presence, "x", MUC)
    child(presence, "nick", NICK).text = display_name
    if identity is not None:
        # The web app never sends this; mod_presence_identity must replace it.
        user = child(child(presence, "identity"), "user")
        for tag, text in (
            ("name", identity.name),
            ("email", identity.email),
            ("affiliation", identity.affiliation),
        ):
            child(user, tag).text = text
    return serialize(presence)


def members_only(room_jid: str, stanza_id: str, *, enabled: bool) -> str:
    """The owner's room configuration form that turns the lobby on, as the web app submits it."""
    iq = element("iq", CLIENT, type="set", to=room_jid, id=stanza_id)
    form = child(child(iq, "query", MUC_OWNER), "x", DATA_FORMS, type="submit")
    for var, value in (
        ("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"),
        ("muc#roomconfig_membersonly", "true" if enabled else "false"),
    ):
        child(child(form, "field", var=var), "value").text = value
    return serialize(iq)


def parse(frame: str) -> ET.Element:
    """One websocket frame: exactly one element (RFC 7395).

    Frames come from the Prosody this run started, on loopback; expat refuses
    entity expansion bombs by itself (since 2.4).
    """
    return ET.fromstring(frame)  # noqa: S314


def local_name(element: ET.Element) -> str:
    return element.tag.rpartition("}")[2]


@dataclass(frozen=True)
class Presence:
    """A presence the room sent: somebody in it, or the error that refused a join."""

    sender: str
    affiliation: str = ""
    role: str = ""
    nick: str = ""
    identity_name: str = ""
    identity_email: str = ""
    identity_affiliation: str = ""
    is_self: bool = False
    error: str = ""
    lobby_room: str = ""

    @property
    def occupant_nick(self) -> str:
        """The resource of the sender: the occupant's nick in the room."""
        return self.sender.partition("/")[2]


def read_presence(element: ET.Element) -> Presence:
    """What a MUC presence says (error condition, affiliation, role, nick, identity)."""
    sender = element.get("from", "")
    if element.get("type") == "error":
        error = element.find(f"{{{CLIENT}}}error")
        condition = ""
        lobby_room = ""
        if error is not None:
            for child in error:
                if child.tag.startswith(f"{{{STANZA_ERRORS}}}") and local_name(child) != "text":
                    condition = local_name(child)
                if child.tag == f"{{{LOBBY_ROOM}}}lobbyroom":
                    lobby_room = child.text or ""
        return Presence(sender, error=condition or "unknown", lobby_room=lobby_room)
    muc_user = element.find(f"{{{MUC_USER}}}x")
    item = muc_user.find(f"{{{MUC_USER}}}item") if muc_user is not None else None
    statuses = (
        {status.get("code", "") for status in muc_user.findall(f"{{{MUC_USER}}}status")}
        if muc_user is not None
        else set()
    )
    user = element.find(f"{{{CLIENT}}}identity/{{{CLIENT}}}user")
    return Presence(
        sender,
        affiliation=item.get("affiliation", "") if item is not None else "",
        role=item.get("role", "") if item is not None else "",
        nick=element.findtext(f"{{{NICK}}}nick", default=""),
        identity_name=user.findtext(f"{{{CLIENT}}}name", default="") if user is not None else "",
        identity_email=user.findtext(f"{{{CLIENT}}}email", default="") if user is not None else "",
        identity_affiliation=(
            user.findtext(f"{{{CLIENT}}}affiliation", default="") if user is not None else ""
        ),
        is_self=SELF_PRESENCE in statuses,
    )
