"""Cookie sessions: who logged in with the form, sealed with authenticated encryption.

The cookie holds the person (id, name, e-mail), their role and three times:
issued, last seen, role last checked. No password, ever. It is sealed with
Fernet (AES-CBC + HMAC-SHA256) under keys derived from ``sessions.keys_file``,
newest first: the newest seals, every listed key opens, so a new key can be
put in front and an old one dropped a lifetime later without logging anybody
out. Idle timeout and absolute lifetime are judged here, on the server, from
the sealed times; a cookie's own expiry is only a hint to the browser.

A logged-out session's id is remembered until it would have expired anyway
(:mod:`sidecar.revocations`), so the same cookie no longer passes even though
it still opens.

:class:`SessionCookies` is the one owner of the session cookie: its name,
reading it from a request's cookies, sealing a session into a ``Set-Cookie``
header and clearing it. No other module knows how the cookie is made.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace

from cachetools import TTLCache
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sidecar.config.settings import GUEST_ROLE, Secret, SessionSettings
from sidecar.cookies import CookiePolicy
from sidecar.people import Person
from sidecar.revocations import RevokedSessions
from sidecar.shared_state import SharedState

log = logging.getLogger(__name__)

COOKIE_NAME = "jitsi_auth_session"
# Secure and __Host- unless told otherwise (only a plain-http demo is).
SECURE_COOKIES = CookiePolicy(secure=True)
MAX_COOKIE_LENGTH = 4096
# Names and addresses longer than this are cut (UTF-8 may take 4 bytes a character).
MAX_TEXT_LENGTH = 200
# Sessions kept opened (a school's people with a room open); about 2 KB each.
OPENED_COOKIES = 4096
# last_seen is rewritten at most this often, so not every page load sets a cookie.
TOUCH_INTERVAL_SECONDS = 60
# A session's role check comes due within the last 1/ROLE_CHECK_SPREAD of role_refresh.
ROLE_CHECK_SPREAD = 5


@dataclass(frozen=True)
class Session:
    session_id: str
    user_id: str
    display_name: str
    email: str
    role: str  # a [[roles]] name; re-read from LDAP every sessions.role_refresh
    issued_at: int
    last_seen: int
    role_checked: int
    group: str = ""  # the person's context_group (named so in sealed cookies)
    avatar: str = ""
    # Guest sessions only: the one room (its name), the link and when it all ends.
    room: str = ""
    link_id: str = ""
    expires_at: int = 0

    @property
    def is_guest(self) -> bool:
        return self.role == GUEST_ROLE

    def person(self) -> Person:
        return Person(
            user_id=self.user_id,
            display_name=self.display_name,
            email=self.email,
            groups=frozenset(),
            context_group=self.group,
            avatar=self.avatar,
        )


def _fernet(key: Secret) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"jitsi-auth-sidecar session cookie v1",
    ).derive(key.reveal())
    return Fernet(base64.urlsafe_b64encode(derived))


_TEXT_FIELDS = (
    "session_id",
    "user_id",
    "display_name",
    "email",
    "role",
    "group",
    "avatar",
    "room",
    "link_id",
)
_TIME_FIELDS = ("issued_at", "last_seen", "role_checked", "expires_at")


# How a sealed cookie is spelt: URL-safe base64, padded.
_SEALED = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def _canonical_base64(text: str) -> bool:
    try:
        return base64.urlsafe_b64encode(base64.urlsafe_b64decode(text)).decode("ascii") == text
    except (binascii.Error, ValueError):
        return False


def _check_types(session: Session) -> None:
    """A payload that opens is ours, but its shape is checked all the same."""
    for name in _TEXT_FIELDS:
        if not isinstance(getattr(session, name), str):
            raise TypeError(f"{name} must be text")
    for name in _TIME_FIELDS:
        value = getattr(session, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be a whole number")


# Redis key kind of ended sessions (sidecar.shared_state).
ENDED = "ended-session"


class SessionCookies:
    def __init__(
        self,
        settings: SessionSettings,
        *,
        policy: CookiePolicy = SECURE_COOKIES,
        clock: Callable[[], float] = time.time,
        revoked: RevokedSessions | None = None,
        shared: SharedState | None = None,
    ) -> None:
        if not settings.keys:
            raise ValueError("no session keys")
        self._settings = settings
        self._policy = policy
        self._clock = clock
        self._fernet = MultiFernet([_fernet(key) for key in settings.keys])
        # Cookies opened lately, by their exact text: a browser sends the same one
        # with every page load for minutes. Every check of time and logout below
        # is made again each time; only the decryption is saved. Cookies that do
        # not open are not kept.
        self._opened: TTLCache[str, Session] = TTLCache(
            OPENED_COOKIES, TOUCH_INTERVAL_SECONDS, timer=clock
        )
        self._revoked = (
            revoked
            if revoked is not None
            else RevokedSessions(settings.revocation_file, clock=clock)
        )
        # Logouts on every sidecar; this process's own are kept in _revoked as well,
        # so they hold while Redis is away.
        self._shared = shared

    def _now(self) -> int:
        return int(self._clock())

    def new(self, person: Person, role: str) -> Session:
        """A fresh session, with a new id, for every login."""
        now = self._now()
        return Session(
            session_id=secrets.token_urlsafe(18),
            user_id=person.user_id,
            # Bounded so that a sealed cookie always stays under MAX_COOKIE_LENGTH.
            display_name=person.display_name[:MAX_TEXT_LENGTH],
            email=person.email[:MAX_TEXT_LENGTH],
            group=person.context_group[:MAX_TEXT_LENGTH],
            avatar=person.avatar if len(person.avatar) <= MAX_TEXT_LENGTH else "",
            role=role,
            issued_at=now,
            last_seen=now,
            role_checked=now,
        )

    # -- the cookie ------------------------------------------------------------

    async def load(self, cookies: Mapping[str, str]) -> Session | None:
        """The session a request's cookies carry, if it is ours, current and not logged out."""
        session = self.open(cookies.get(self._policy.name(COOKIE_NAME)))
        if session is None or self._shared is None:
            return session
        ended_until = await self._shared.marked(ENDED, session.session_id)
        if ended_until is not None:
            # Kept here as well: it holds while Redis is away, too.
            self._revoked.remember(session.session_id, ended_until)
            log.info("session of %r refused: logged out elsewhere", session.user_id)
            return None
        return session

    def set_cookie(self, session: Session) -> str:
        """The ``Set-Cookie`` value that carries ``session``, sealed, to the browser."""
        return self._policy.set_cookie(
            COOKIE_NAME, self.seal(session), max_age=self._settings.lifetime
        )

    def clear_cookie(self) -> str:
        """The ``Set-Cookie`` value that removes the session cookie from the browser."""
        return self._policy.clear_cookie(COOKIE_NAME)

    # -- sealing -------------------------------------------------------------------

    def new_guest(
        self, *, display_name: str, room: str, link_id: str, link_expires_at: int, lifetime: int
    ) -> Session:
        """A guest's session: bound to one room, ending with the link or after ``lifetime``."""
        now = self._now()
        return Session(
            session_id=secrets.token_urlsafe(18),
            user_id=f"guest-{secrets.token_urlsafe(9)}",
            display_name=display_name[:MAX_TEXT_LENGTH],
            email="",
            role=GUEST_ROLE,
            issued_at=now,
            last_seen=now,
            role_checked=now,
            room=room,
            link_id=link_id,
            expires_at=min(link_expires_at, now + lifetime),
        )

    def seal(self, session: Session) -> str:
        # UTF-8 rather than \u escapes: a non-ASCII name costs 2-4 bytes a
        # character, not 6-12, and the cookie stays under MAX_COOKIE_LENGTH.
        payload = json.dumps(asdict(session), separators=(",", ":"), ensure_ascii=False)
        payload_bytes = payload.encode("utf-8")
        return self._fernet.encrypt_at_time(payload_bytes, self._now()).decode("ascii")

    def open(self, cookie: str | None) -> Session | None:
        """The session in ``cookie`` if it is ours, current and not logged out."""
        if not cookie:
            return None
        if len(cookie) > MAX_COOKIE_LENGTH:
            log.info("session cookie refused: too long")
            return None
        session = self._opened.get(cookie)
        if session is None:
            session = self._unsealed(cookie)
            if session is None:
                return None
            self._opened[cookie] = session
        now = self._now()
        settings = self._settings
        if now - session.issued_at >= settings.lifetime:
            log.info("session of %r ended: lifetime over", session.user_id)
            return None
        if now - session.last_seen >= settings.idle_timeout:
            log.info("session of %r ended: idle too long", session.user_id)
            return None
        if session.expires_at and now >= session.expires_at:
            log.info("session of %r ended: its guest link or lifetime is over", session.user_id)
            return None
        if session.session_id in self._revoked:
            log.info("session of %r refused: logged out", session.user_id)
            return None
        return session

    def _unsealed(self, cookie: str) -> Session | None:
        if not _SEALED.fullmatch(cookie) or not _canonical_base64(cookie):
            # Fernet reads base64 leniently (stray characters, other alphabets,
            # unused bits): only the one spelling this sidecar writes opens.
            log.info("session cookie refused: not as sealed")
            return None
        try:
            payload = self._fernet.decrypt_at_time(
                cookie.encode("ascii"), self._settings.lifetime, self._now()
            )
            data = json.loads(payload)
            session = Session(**data)
            _check_types(session)
        except (InvalidToken, UnicodeEncodeError, ValueError, TypeError, binascii.Error):
            log.info("session cookie refused: not sealed with a current key")
            return None
        return session

    def touch(self, session: Session) -> Session | None:
        """The session with ``last_seen`` now, or None when it need not be rewritten yet."""
        now = self._now()
        if now - session.last_seen < TOUCH_INTERVAL_SECONDS:
            return None
        return replace(session, last_seen=now)

    def role_check_due(self, session: Session) -> bool:
        """Due after ``role_refresh``, or up to a fifth of it earlier: a class that
        logged in together would otherwise be due at one moment, and its page loads
        would queue behind a directory look-up each. Where in that fifth the session's
        id fixes (the same in every worker, and at every load)."""
        refresh = self._settings.role_refresh
        early = zlib.crc32(session.session_id.encode()) % (refresh // ROLE_CHECK_SPREAD + 1)
        return self._now() - session.role_checked >= refresh - early

    def rechecked(self, session: Session, person: Person, role: str) -> Session:
        return replace(
            session,
            display_name=person.display_name[:MAX_TEXT_LENGTH],
            email=person.email[:MAX_TEXT_LENGTH],
            group=person.context_group[:MAX_TEXT_LENGTH],
            avatar=person.avatar if len(person.avatar) <= MAX_TEXT_LENGTH else "",
            role=role,
            role_checked=self._now(),
            last_seen=self._now(),
        )

    def ends_at(self, session: Session) -> int:
        """The latest a copy of ``session``'s cookie could still open (Unix time): its
        lifetime, its guest link, or its idle timeout counted from now, whichever is
        first (no copy was seen later than now). A logout is kept that long, no longer."""
        ends = [
            session.issued_at + self._settings.lifetime,
            self._now() + self._settings.idle_timeout,
        ]
        if session.expires_at:
            ends.append(session.expires_at)
        return min(ends)

    async def log_out(self, session: Session) -> bool:
        """Log ``session`` out, here at once and everywhere for as long as it could live.

        False when that could not be written to ``sessions.revocation_file``: the
        logout then holds in this process (and, with Redis, on every sidecar) but a
        restart before it is written would forget it. The caller says so.
        """
        until = self.ends_at(session)
        saved = self._revoked.revoke(session.session_id, until)
        if self._shared is not None:
            await self._shared.mark(ENDED, session.session_id, until)
        return saved
