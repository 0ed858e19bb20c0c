"""Guest links: a teacher's signed, expiring invitation into one room.

A link is ``/auth/guest/<payload>.<signature>``: the payload (base64url JSON)
names the room, the expiry, the inviting teacher and a link id; the
signature is an HMAC-SHA256 under a key of the sidecar's own (``[guests]
keys_file``, newest first: the newest signs, every listed key checks, so keys
rotate like the session keys). Nothing in it can be changed, nor can it be
moved to another room, without breaking the signature.

The links a teacher created are remembered so that she can see and withdraw
them; a withdrawn id is remembered until the link would have expired. Both
survive a restart when ``[guests] state_file`` is set: a link is handed out,
and a withdrawal confirmed, only once the file holds it; when it cannot be
written nothing changes and :class:`NotSaved` says so (a link nobody could
see in her list, or a withdrawal a restart would undo, is never made).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sidecar.config.settings import GuestSettings, Secret
from sidecar.rooms import NotARoom, RoomRequest, room_named
from sidecar.shared_state import SharedState, done, optional_texts, texts
from sidecar.state_files import StateFileError as StateFileError  # what the start catches
from sidecar.state_files import remove_leftovers, unreadable, write_atomically

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

log = logging.getLogger(__name__)

PATH_PREFIX = "/auth/guest/"
# Room and teacher's name at 200 characters of up to 4 bytes each, in base64, and more.
MAX_LINK_LENGTH = 4096
# A school's teachers create a few links a day; this bounds a runaway all the same.
MAX_REMEMBERED_LINKS = 50_000

# Redis key kinds (sidecar.shared_state): a link, a teacher's links, a withdrawn link.
LINK = "guest-link"
LINKS_OF = "guest-links-of"
WITHDRAWN = "withdrawn-guest-link"
LinkProblem = Literal["altered", "expired", "withdrawn"]
STATE_FILE = "guests.state_file"
CONSEQUENCE = "make every withdrawn link work again and forget which links exist"


class InvalidLink(Exception):
    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(problem)
        self.problem = problem


class NotSaved(Exception):
    """``guests.state_file`` could not be written: the action did not happen (nothing
    changed, here or in Redis), and the teacher is told to try again."""


@dataclass(frozen=True)
class GuestLink:
    link_id: str
    room: str  # the room's name, as typed
    expires_at: int
    inviter_name: str
    inviter_id: str = ""  # kept here only, never put into the link itself
    created_at: int = 0  # kept here only, for the teacher's list (0: not known)

    @property
    def room_request(self) -> RoomRequest:
        return room_named(self.room)

    def signed_part(self) -> dict[str, object]:
        """What the link carries: nothing an outsider should not see (no login name)."""
        return {
            "link_id": self.link_id,
            "room": self.room,
            "expires_at": self.expires_at,
            "inviter_name": self.inviter_name,
        }


def _well_typed(link: GuestLink) -> bool:
    texts = (link.link_id, link.room, link.inviter_name, link.inviter_id)
    times = (link.expires_at, link.created_at)
    return all(isinstance(text, str) for text in texts) and all(
        isinstance(moment, int) and not isinstance(moment, bool) for moment in times
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signing_key(key: Secret) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"jitsi-auth-sidecar guest link v1"
    ).derive(key.reveal())


class GuestLinks:
    def __init__(
        self,
        settings: GuestSettings,
        *,
        clock: Callable[[], float] = time.time,
        shared: SharedState | None = None,
    ) -> None:
        if not settings.keys:
            raise ValueError("no guest link keys")
        self._settings = settings
        self._keys = [_signing_key(key) for key in settings.keys]
        self._clock = clock
        self._created: dict[str, GuestLink] = {}
        self._withdrawn: dict[str, int] = {}
        # With Redis, links and withdrawals are known to every sidecar: a link
        # made through one node can be withdrawn through another. This
        # process's own are kept here as well, for while Redis is away.
        self._shared = shared
        if settings.state_file is not None:
            self._load(settings.state_file)

    # -- links -----------------------------------------------------------------

    async def create(self, room: RoomRequest, days: int, inviter_id: str, inviter_name: str) -> str:
        """A new link's path, valid ``days`` days (at most ``max_days``)."""
        days = max(1, min(days, self._settings.max_days))
        link = GuestLink(
            link_id=secrets.token_urlsafe(12),
            room=room.room,
            expires_at=int(self._clock()) + days * 86400,
            inviter_id=inviter_id,
            inviter_name=inviter_name[:200],
            created_at=int(self._clock()),
        )
        self._prune()
        self._created[link.link_id] = link
        try:
            self._save()
        except NotSaved:
            del self._created[link.link_id]
            raise
        if self._shared is not None:
            await self._share(self._shared, link)
        return self.path_of(link)

    async def _share(self, shared: SharedState, link: GuestLink) -> None:
        mine = shared.key(LINKS_OF, link.inviter_id)
        lifetime_ms = max(1, int((link.expires_at - self._clock()) * 1000))
        now, longest = self._clock(), self._settings.max_days * 86400

        def queue(pipe: Pipeline) -> None:
            pipe.set(shared.key(LINK, link.link_id), json.dumps(asdict(link)), px=lifetime_ms)
            # Her links by expiry; the list lives as long as the longest a link can.
            pipe.zadd(mine, {link.link_id: link.expires_at})
            pipe.zremrangebyscore(mine, "-inf", now)
            pipe.expire(mine, longest)

        await shared.pipeline(LINK, queue, done)

    async def _shared_links(self, shared: SharedState, inviter_id: str) -> list[GuestLink] | None:
        """Her links as Redis knows them; None when it does not answer."""
        mine = shared.key(LINKS_OF, inviter_id)
        now = self._clock()
        ids = await shared.command(
            LINKS_OF, lambda redis: redis.zrangebyscore(mine, now, "+inf"), texts
        )
        if ids is None:
            return None
        keys = [shared.key(LINK, link_id) for link_id in ids]
        stored = (
            await shared.command(LINK, lambda redis: redis.mget(keys), optional_texts(len(keys)))
            if keys
            else []
        )
        if stored is None:
            return None
        links = []
        for item in stored:
            try:
                link = GuestLink(**json.loads(item or ""))
            except (TypeError, ValueError):
                continue  # withdrawn or expired between the two commands
            if _well_typed(link) and link.inviter_id == inviter_id:
                links.append(link)
        return links

    def path_of(self, link: GuestLink) -> str:
        text = json.dumps(link.signed_part(), separators=(",", ":"), ensure_ascii=False)
        payload = _b64(text.encode("utf-8"))
        signature = _b64(hmac.new(self._keys[0], payload.encode("ascii"), hashlib.sha256).digest())
        return f"{PATH_PREFIX}{payload}.{signature}"

    async def open(self, value: str) -> GuestLink:
        """The link in ``value`` (the part after /auth/guest/), or :class:`InvalidLink`."""
        if len(value) > MAX_LINK_LENGTH or value.count(".") != 1:
            raise InvalidLink("altered")
        payload, signature = value.split(".")
        try:
            given = _unb64(signature)
            if _b64(given) != signature:  # only the one spelling the sidecar writes
                raise InvalidLink("altered")
            expected = [
                hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()
                for key in self._keys
            ]
            if not any(hmac.compare_digest(given, mac) for mac in expected):
                raise InvalidLink("altered")
            fields = json.loads(_unb64(payload))
            link = GuestLink(**{**fields, "inviter_id": ""})
            if not _well_typed(link):
                raise InvalidLink("altered")
            link.room_request  # noqa: B018 - a room the sidecar accepts, or NotARoom
        except (binascii.Error, UnicodeError, ValueError, TypeError, NotARoom):
            raise InvalidLink("altered") from None
        if link.expires_at <= self._clock():
            raise InvalidLink("expired")
        if await self.withdrawn(link.link_id):
            raise InvalidLink("withdrawn")
        return link

    async def withdrawn(self, link_id: str) -> bool:
        if self._withdrawn.get(link_id, 0) > self._clock():
            return True
        if self._shared is None:
            return False
        until = await self._shared.marked(WITHDRAWN, link_id)
        if until is None:
            return False
        # Kept here as well: it holds while Redis is away, too.
        self._withdrawn[link_id] = until
        return True

    async def withdraw(self, link_id: str, inviter_id: str) -> bool:
        """Withdraw one of ``inviter_id``'s links; False when it is not hers (or gone),
        :class:`NotSaved` when the state file could not be written (nothing changed)."""
        mine = {link.link_id: link for link in await self.created_by(inviter_id)}
        link = mine.get(link_id)
        if link is None:
            return False
        created = self._created.pop(link_id, None)
        self._withdrawn[link_id] = link.expires_at
        try:
            self._save()
        except NotSaved:
            del self._withdrawn[link_id]
            if created is not None:
                self._created[link_id] = created
            raise
        shared = self._shared
        if shared is not None:
            await shared.mark(WITHDRAWN, link_id, link.expires_at)
            link_key, links_key = shared.key(LINK, link_id), shared.key(LINKS_OF, inviter_id)

            def queue(pipe: Pipeline) -> None:
                pipe.delete(link_key)
                pipe.zrem(links_key, link_id)

            await shared.pipeline(LINK, queue, done)
        return True

    async def created_by(self, inviter_id: str) -> list[GuestLink]:
        """Her links that are still valid, soonest to expire first.

        With Redis: the links any node made, and those this process made while
        Redis was away, unless another node withdrew them.
        """
        found = {
            link.link_id: link for link in self._created.values() if link.inviter_id == inviter_id
        }
        if self._shared is not None:
            shared = await self._shared_links(self._shared, inviter_id)
            if shared is not None:
                await self._reconcile(self._shared, found, {link.link_id for link in shared})
                found.update({link.link_id: link for link in shared})
        now = self._clock()
        mine = [
            link
            for link in found.values()
            if link.expires_at > now and self._withdrawn.get(link.link_id, 0) <= now
        ]
        return sorted(mine, key=lambda link: link.expires_at)

    async def _reconcile(
        self, shared: SharedState, found: dict[str, GuestLink], listed: set[str]
    ) -> None:
        """Her links this process knows and Redis does not list: withdrawn through
        another node (forgotten here), or made here while Redis was away (shared now)."""
        for link_id in [link_id for link_id in found if link_id not in listed]:
            if await self.withdrawn(link_id):
                self._created.pop(link_id, None)
                del found[link_id]
            else:
                await self._share(shared, found[link_id])

    # -- the state file ----------------------------------------------------------

    def _prune(self) -> None:
        now = self._clock()
        self._created = {k: v for k, v in self._created.items() if v.expires_at > now}
        self._withdrawn = {k: v for k, v in self._withdrawn.items() if v > now}
        while len(self._created) > MAX_REMEMBERED_LINKS:
            del self._created[min(self._created, key=lambda k: self._created[k].expires_at)]

    def _load(self, path: Path) -> None:
        """Read the state, all of it or nothing: a half-read file would forget withdrawals."""
        remove_leftovers(path)
        try:
            data = json.loads(path.read_text("utf-8"))
            created = {item["link_id"]: GuestLink(**item) for item in data["created"]}
            withdrawn = dict(data["withdrawn"])
        except FileNotFoundError:
            return
        except OSError as error:
            raise unreadable(
                STATE_FILE, path, error.strerror or error, consequence=CONSEQUENCE
            ) from None
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise unreadable(STATE_FILE, path, error, consequence=CONSEQUENCE) from None
        typed = all(
            isinstance(key, str) and isinstance(until, int) for key, until in withdrawn.items()
        )
        if not typed or not all(_well_typed(link) for link in created.values()):
            raise unreadable(STATE_FILE, path, "values of the wrong type", consequence=CONSEQUENCE)
        self._created, self._withdrawn = created, withdrawn
        self._prune()

    def _save(self) -> None:
        """Write the whole state (a few links a teacher: small), or :class:`NotSaved`."""
        path = self._settings.state_file
        if path is None:
            return
        data = {
            "created": [asdict(link) for link in self._created.values()],
            "withdrawn": self._withdrawn,
        }
        try:
            write_atomically(path, json.dumps(data).encode("utf-8"))
        except OSError as error:
            log.error("cannot write %s %s: %s", STATE_FILE, path, error.strerror or error)
            raise NotSaved from error
