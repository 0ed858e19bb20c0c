"""The school's LDAP directory, through bonsai's asyncio API.

A password is checked by binding a fresh connection as that person; the
pooled connections (the service account, or anonymous) only search. Every
network await is bounded by ``ldap.timeout``, taking a pooled connection
included. An unreachable or slow directory is :class:`DirectoryUnavailable`,
never :class:`InvalidCredentials`: an outage must not look like a wrong
password, and certainly never like a right one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import bonsai

from sidecar.config.settings import LdapSettings, Secret
from sidecar.credentials import Credentials
from sidecar.deadlines import Deadlines, deadline_passed
from sidecar.ldap.bind_timing import BindTimings
from sidecar.ldap.connection import CancellableConnection
from sidecar.ldap.dn import canonical_dn
from sidecar.ldap.servers import ServerHealth
from sidecar.metrics import Metrics
from sidecar.names import display_name
from sidecar.people import Person
from sidecar.refusals import DirectoryUnavailable, InvalidCredentials

log = logging.getLogger(__name__)

MEMBER_OF = "memberOf"
MAX_AVATAR_URL = 200  # it travels in the session cookie too
MAX_GROUP_NAME = 64

# Told the entry a search found, before its bind: may refuse it (a ban) by raising.
EntryFound = Callable[[str], Awaitable[None]]
# Asked, when a person's search is slow, for the entry (a canonical DN) a bind may
# start with before the search answers; None: wait for the search. May raise (a ban).
UsualEntry = Callable[[], Awaitable[str | None]]
# Entries bound to lately, by canonical DN: the spelling a bind before the search uses.
MAX_BIND_SPELLINGS = 4096
_Read = TypeVar("_Read")
# A person's bind unanswered this long (local binds take milliseconds): the
# directory is slow, and the group search starts beside the bind.
OVERLAP_AFTER = 0.1


def _is_https_url(value: str) -> bool:
    """An https URL fit for a token (labeledURI may be "URL label": that is none)."""
    if len(value) > MAX_AVATAR_URL or not value.isascii() or not value.isprintable():
        return False
    if any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.netloc)


def _first(entry: Any, attribute: str) -> str | None:
    values = entry.get(attribute)
    if not values:
        return None
    value = values[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value)


def _entry_key(entry: Any) -> str:
    """One spelling for an entry's DN, however the server wrote it."""
    try:
        return canonical_dn(str(entry.dn))
    except ValueError:
        return str(entry.dn).lower()


def ldap_client(
    settings: LdapSettings, url: str, dn: str | None, password: Secret | str | None
) -> Any:
    """A bonsai client for ``url`` with the configured TLS, binding as ``dn`` if given."""
    client = bonsai.LDAPClient(url, tls=settings.start_tls)
    client.set_cert_policy("demand" if settings.verify_certificates else "never")
    if settings.ca_file is not None:
        client.set_ca_cert(str(settings.ca_file))
    client.set_server_chase_referrals(False)
    client.set_async_connection_class(CancellableConnection)
    if dn is not None and password is not None:
        secret = password.reveal().decode("utf-8") if isinstance(password, Secret) else password
        client.set_credentials("SIMPLE", user=dn, password=secret)
    return client


class _ConnectionPool:
    """Reusable reading connections, at most ``size`` at once.

    Hand-made rather than bonsai's pool so that a connection which died with
    the server is dropped instead of handed out again, and so that waiting
    for a free connection has a deadline.

    The most recently returned connection is handed out first, so that a
    steady load keeps reusing a few warm ones while the rest stay idle; a
    connection idle for ``idle_timeout`` is closed. A burst (a class logging
    in at once, or a directory that held every request for a while) opens
    many connections; this gives their descriptors back once it is over.
    """

    def __init__(self, directory: Directory, size: int, idle_timeout: float) -> None:
        self._directory = directory
        self._slots = asyncio.Semaphore(size)
        self._idle_timeout = idle_timeout
        # (returned at, server URL, connection): oldest on the left, reused from the right.
        self._idle: deque[tuple[float, str, Any]] = deque()
        self._closing_idle: asyncio.TimerHandle | None = None
        self.in_use = 0

    @property
    def idle(self) -> int:
        return len(self._idle)

    @asynccontextmanager
    async def connection(self, *, fresh: bool = False) -> AsyncIterator[Any]:
        try:
            async with asyncio.timeout(self._directory.timeout):
                await self._slots.acquire()
        except TimeoutError:
            # Busy, not hung: no other server would help, and no retry either.
            log.warning("every pooled LDAP connection stayed busy for ldap.timeout")
            raise DirectoryUnavailable("pooled connections busy") from None
        self.in_use += 1
        try:
            if fresh:
                self.close()
            if self._idle:
                _, url, conn = self._idle.pop()
            else:
                url, conn = await self._directory.connect_reader()
            try:
                yield conn
            except (bonsai.ConnectionError, TimeoutError) as error:
                # Died with its server, or the server went silent: ask another.
                conn.close()
                self._directory.server_failed(url, type(error).__name__)
                raise
            except BaseException:
                conn.close()
                raise
            self._idle.append((time.monotonic(), url, conn))
            self._close_idle_later()
        finally:
            self.in_use -= 1
            self._slots.release()

    def _close_idle_later(self) -> None:
        """Have the oldest idle connection closed when its idle time is up."""
        if self._closing_idle is not None or not self._idle:
            return
        due = self._idle[0][0] + self._idle_timeout - time.monotonic()
        loop = asyncio.get_running_loop()
        self._closing_idle = loop.call_later(max(due, 0.0), self._close_idle)

    def _close_idle(self) -> None:
        self._closing_idle = None
        expired = time.monotonic() - self._idle_timeout
        while self._idle and self._idle[0][0] <= expired:
            self._idle.popleft()[2].close()
        self._close_idle_later()

    def close(self) -> None:
        if self._closing_idle is not None:
            self._closing_idle.cancel()
            self._closing_idle = None
        while self._idle:
            self._idle.pop()[2].close()


@dataclass(frozen=True)
class _Outcome:
    """How one server answered an attempt: a connection, a refusal, or a failure's kind."""

    url: str
    conn: Any = None
    refused: bool = False
    failure: str = ""


class _HedgedConnect:
    """One connection wanted, asked of several servers in turn, overlapping when one is slow."""

    def __init__(self, directory: Directory, dn: str | None, password: Secret | str | None) -> None:
        self._directory = directory
        self._dn = dn
        self._password = password
        self._attempts: dict[asyncio.Task[_Outcome], tuple[str, float]] = {}
        # Only the kind of the last error is kept: the error itself would hold
        # its frames, and with them a given-up connection and its socket, until
        # the garbage collector's next full run.
        self.last_error = "no server configured"

    def _start(self, url: str) -> None:
        task = asyncio.ensure_future(self._directory._attempt(url, self._dn, self._password))
        self._attempts[task] = (url, time.monotonic())
        self._directory.attempts_started.append(url)

    async def first_connected(self, urls: list[str]) -> tuple[str, Any]:
        servers = self._directory._servers
        waiting = list(urls)
        hedge_delay = self._directory.hedge_delay
        while waiting or self._attempts:
            if waiting and not self._attempts:
                self._start(waiting.pop(0))
            done, _ = await asyncio.wait(
                self._attempts,
                timeout=hedge_delay if waiting else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                self._start(waiting.pop(0))  # the ones asked are slow: ask the next too
                continue
            outcomes = [self._outcome(task) for task in done]
            # A refusal first: if one server said no, no other's yes counts.
            refused = any(outcome.refused for outcome in outcomes)
            won = None if refused else next((o for o in outcomes if o.conn is not None), None)
            for outcome in outcomes:
                if outcome.refused or outcome is won:
                    servers.answered(outcome.url)
                elif outcome.conn is not None:
                    servers.answered(outcome.url)
                    outcome.conn.close()  # answered as well, but later than the winner
                else:
                    self.last_error = outcome.failure
                    servers.failed(outcome.url, outcome.failure)
            if refused:
                raise bonsai.AuthenticationError("the directory refused the bind")
            if won is not None:
                return won.url, won.conn
        raise DirectoryUnavailable(f"no LDAP server answered (last: {self.last_error})")

    def _outcome(self, task: asyncio.Task[_Outcome]) -> _Outcome:
        del self._attempts[task]
        return task.result()

    async def finish(self) -> None:
        """Give up the attempts still running: another answered, the deadline
        came, or the login no longer needs the connection (a cancel).

        Waited for (they end at once when cancelled), so that no socket of
        theirs outlives the login.
        """
        now = time.monotonic()
        cut_short = deadline_passed()
        attempts, self._attempts = self._attempts, {}
        for task, (url, started) in attempts.items():
            task.cancel()
            # Silent until the deadline, or for the hedge delay: that server is
            # slow. Otherwise it is not blamed: beaten by another server, or no
            # longer wanted (a group search given up as the password was wrong).
            if cut_short or now - started >= self._directory.hedge_delay:
                self._directory._servers.failed(url, "no answer in time")
        if attempts:
            await asyncio.wait(attempts)
        for task in attempts:
            # Connected all the same, just before it was cancelled: nobody's connection.
            if not task.cancelled() and task.exception() is None:
                late = task.result().conn
                if late is not None:
                    late.close()


class Directory:
    def __init__(self, settings: LdapSettings, *, metrics: Metrics | None = None) -> None:
        self._settings = settings
        self.timeout = settings.timeout
        self.hedge_delay = settings.hedge_delay
        # The servers asked for a connection, in order (the latest few): what hedging did.
        self.attempts_started: deque[str] = deque(maxlen=64)
        # ldap.deadline per login or lookup; a stopping daemon brings it forward.
        self.deadlines = Deadlines(settings.deadline)
        self._pool = _ConnectionPool(self, settings.pool_size, settings.pool_idle_timeout)
        self._metrics = metrics or Metrics()
        self._metrics.pool_in_use.set_function(lambda: self._pool.in_use)
        self._metrics.pool_idle.set_function(lambda: self._pool.idle)
        self._bind_timings = BindTimings()
        # Canonical DN -> the DN as the directory spells it, oldest first (see _EarlyBind).
        self._bind_spellings: dict[str, str] = {}
        self._servers = ServerHealth(
            settings.urls, probe=self._answers, retry_interval=settings.retry_interval
        )

    def close(self) -> None:
        self._pool.close()
        self._servers.close()

    # -- connections -------------------------------------------------------

    def _client(self, url: str, dn: str | None, password: Secret | str | None) -> Any:
        return ldap_client(self._settings, url, dn, password)

    async def _connect(self, dn: str | None, password: Secret | str | None) -> tuple[str, Any]:
        """Connect (and bind) to the first server that answers: its URL and the connection.

        Servers that failed lately are asked last (see ldap_servers). A server
        that has not answered within ``ldap.hedge_delay`` does not hold up the
        next: it is asked too, and the first answer wins. A refused bind is an
        answer: it ends every attempt, and no other server is asked to turn it
        into a success. Servers still silent at the deadline, or for
        ``hedge_delay`` when another answered, are counted as failed.
        """
        hedged = _HedgedConnect(self, dn, password)
        try:
            return await hedged.first_connected(self._servers.ordered())
        finally:
            await hedged.finish()

    async def _attempt(self, url: str, dn: str | None, password: Secret | str | None) -> _Outcome:
        """One server asked for a connection: how it answered, never an error it raised.

        The error would stay in the attempt's task and hold its frames, among
        them the timeout that refers to the task: a cycle that keeps the
        given-up connection and its socket until the collector's next full run.
        """
        client = self._client(url, dn, password)
        try:
            async with asyncio.timeout(self.timeout):
                conn = await client.connect(is_async=True, timeout=self.timeout)
        except bonsai.AuthenticationError:
            return _Outcome(url, refused=True)
        except (bonsai.LDAPError, TimeoutError, OSError) as error:
            return _Outcome(url, failure=type(error).__name__)
        return _Outcome(url, conn=conn)

    async def reachable(self) -> bool:
        """Whether a directory server answers a bind now (the readiness check)."""
        for url in self._servers.ordered():
            if await self._answers(url):
                return True
        return False

    def server_failed(self, url: str, reason: str) -> None:
        self._servers.failed(url, reason)

    async def _answers(self, url: str) -> bool:
        """Whether the server at ``url`` answers a bind now (a refused one answered too)."""
        settings = self._settings
        client = self._client(url, settings.bind_dn, settings.bind_password)
        try:
            async with asyncio.timeout(self.timeout):
                conn = await client.connect(is_async=True, timeout=self.timeout)
        except bonsai.AuthenticationError:
            return True
        except (bonsai.LDAPError, TimeoutError, OSError):
            return False
        conn.close()
        return True

    @contextmanager
    def _measured(self, operation: str) -> Iterator[None]:
        """Count one LDAP operation by its result, and time it."""
        started = time.monotonic()
        result = "unavailable"
        try:
            yield
            result = "ok"
        except (bonsai.AuthenticationError, InvalidCredentials):
            result = "invalid"
            raise
        finally:
            self._metrics.ldap_operations.labels(operation, result).inc()
            self._metrics.ldap_seconds.labels(operation).observe(time.monotonic() - started)

    async def connect_reader(self) -> tuple[str, Any]:
        settings = self._settings
        try:
            with self._measured("service_bind"):
                return await self._connect(settings.bind_dn, settings.bind_password)
        except bonsai.AuthenticationError as error:
            # A broken service account is an outage for everyone, not a wrong password.
            log.error("the LDAP service account cannot bind (ldap.bind_dn)")
            raise DirectoryUnavailable("service account rejected") from error

    async def _bind_as(self, dn: str, password: str) -> Any:
        started = time.monotonic()
        try:
            with self._measured("bind"):
                _, conn = await self._connect(dn, password)
        except bonsai.AuthenticationError:
            self._bind_timings.record(time.monotonic() - started)
        else:
            self._bind_timings.record(time.monotonic() - started)
            return conn
        # Refused: it ends as an unknown name's answer ends (see bind_timing),
        # outside the handler so that the error's frames are not kept meanwhile.
        await asyncio.sleep(self._bind_timings.settle())
        raise InvalidCredentials

    async def _search(
        self,
        conn: Any,
        base: str,
        scope: bonsai.LDAPSearchScope,
        filter_exp: str,
        attributes: list[str],
    ) -> list[Any]:
        with self._measured("search"):
            async with asyncio.timeout(self.timeout):
                result: list[Any] = await conn.search(
                    base, scope, filter_exp, attributes, timeout=self.timeout
                )
                return result

    async def _pooled_search(
        self, base: str, scope: bonsai.LDAPSearchScope, filter_exp: str, attributes: list[str]
    ) -> list[Any]:
        """Search with a pooled connection; once more on a fresh one if it died or hung."""
        for fresh in (False, True):
            try:
                async with self._pool.connection(fresh=fresh) as conn:
                    return await self._search(conn, base, scope, filter_exp, attributes)
            except (bonsai.ConnectionError, TimeoutError):
                if fresh:
                    raise
        raise AssertionError("unreachable")

    # -- people --------------------------------------------------------------

    def _attributes(self) -> list[str]:
        settings = self._settings
        optional = [settings.group_attribute, settings.avatar_attribute]
        names = [settings.id_attribute, settings.name_attribute, settings.mail_attribute]
        return [*names, *(name for name in optional if name), MEMBER_OF]

    async def authenticate(
        self,
        credentials: Credentials,
        *,
        found: EntryFound | None = None,
        usual: UsualEntry | None = None,
    ) -> Person:
        """The person these credentials belong to, with their groups.

        Raises InvalidCredentials or DirectoryUnavailable, or whatever
        ``found`` raises when it is told the entry a search found, or ``usual``
        when it is asked which entry a bind may start with (see _EarlyBind).
        """
        try:
            # One deadline for all of it, well inside nginx's proxy_read_timeout.
            async with self.deadlines.within():
                if self._settings.user_dn_template:
                    return await self._authenticate_direct(credentials)
                return await self._authenticate_by_search(credentials, found, usual)
        except (InvalidCredentials, DirectoryUnavailable):
            raise
        except (bonsai.LDAPError, TimeoutError, OSError) as error:
            log.warning("LDAP request failed: %s", type(error).__name__)
            raise DirectoryUnavailable(type(error).__name__) from error

    @property
    def searches_first(self) -> bool:
        """Whether a login searches for the person's entry before any bind (and tells
        ``found`` what it found), rather than binding to a DN made from the name."""
        return not self._settings.user_dn_template

    @property
    def can_look_up(self) -> bool:
        """Whether people can be read without their password (a service account)."""
        return self._settings.bind_dn is not None

    async def look_up(self, user_id: str) -> Person | None:
        """Re-read a person through the service account; None when they are gone.

        Raises DirectoryUnavailable.
        """
        settings = self._settings
        if settings.user_dn_template:
            base = settings.user_dn_template.format(username=bonsai.escape_attribute_value(user_id))
            scope = bonsai.LDAPSearchScope.BASE
            filter_exp = "(objectClass=*)"
        else:
            base = settings.user_base
            scope = bonsai.LDAPSearchScope.SUBTREE
            filter_exp = settings.user_filter.format(username=bonsai.escape_filter_exp(user_id))
        try:
            async with self.deadlines.within():
                entries = await self._pooled_search(base, scope, filter_exp, self._attributes())
                if len(entries) != 1:
                    return None
                groups = await self._groups(entries[0], user_id, None)
        except bonsai.NoSuchObjectError:
            return None
        except (bonsai.LDAPError, TimeoutError, OSError) as error:
            log.warning("LDAP lookup failed: %s", type(error).__name__)
            raise DirectoryUnavailable(type(error).__name__) from error
        return self._person(entries[0], user_id, groups)

    async def _authenticate_direct(self, credentials: Credentials) -> Person:
        dn = self._settings.user_dn_template.format(
            username=bonsai.escape_attribute_value(credentials.username)
        )
        conn = await self._bind_as(dn, credentials.password)
        try:
            entries = await self._search(
                conn, dn, bonsai.LDAPSearchScope.BASE, "(objectClass=*)", self._attributes()
            )
            if len(entries) != 1:
                raise InvalidCredentials
            entry = entries[0]
            if self._settings.bind_dn is None:
                groups = await self._groups(entry, credentials.username, conn)
            else:
                groups = await self._groups(entry, credentials.username, None)
        finally:
            conn.close()
        return self._person(entry, credentials.username, groups)

    async def _authenticate_by_search(
        self, credentials: Credentials, found: EntryFound | None, usual: UsualEntry | None
    ) -> Person:
        settings = self._settings
        filter_exp = settings.user_filter.format(
            username=bonsai.escape_filter_exp(credentials.username)
        )
        early = None if usual is None else _EarlyBind(self, usual, credentials.password)
        try:
            entries = await self._pooled_search(
                settings.user_base, bonsai.LDAPSearchScope.SUBTREE, filter_exp, self._attributes()
            )
            if early is not None:
                await early.settle()
            if len(entries) != 1:
                if len(entries) > 1:
                    log.warning("ldap.user_filter matches %d entries for one login", len(entries))
                # As long as a wrong password's bind would have taken: see bind_timing.
                await asyncio.sleep(self._bind_timings.draw() + self._bind_timings.settle())
                raise InvalidCredentials
            entry = entries[0]
            if found is not None:
                await found(_entry_key(entry))
            taken = None if early is None else early.take(str(entry.dn))
            binding = taken or self._bind_as(str(entry.dn), credentials.password)
            if settings.bind_dn is None:
                # Anonymous searches may not see groups: they are read as the person.
                conn = await binding
                try:
                    groups = await self._groups(entry, credentials.username, conn)
                finally:
                    conn.close()
            else:
                conn, groups = await self._bind_and_read(
                    binding, lambda: self._groups(entry, credentials.username, None)
                )
                conn.close()
        finally:
            if early is not None:
                await early.discard()
        self._remember_spelling(entry)
        return self._person(entry, credentials.username, groups)

    def spelling_of(self, key: str) -> str | None:
        """The DN, as the directory spells it, of the entry with canonical DN ``key``, if
        a person logged in with it lately in this process."""
        return self._bind_spellings.get(key)

    def _remember_spelling(self, entry: Any) -> None:
        """The entry a person just logged in with, for a bind before her next search."""
        key = _entry_key(entry)
        spellings = self._bind_spellings
        if key not in spellings and len(spellings) >= MAX_BIND_SPELLINGS:
            del spellings[next(iter(spellings))]
        spellings[key] = str(entry.dn)

    async def _bind_and_read(
        self, bind: Awaitable[Any], read: Callable[[], Awaitable[_Read]]
    ) -> tuple[Any, _Read]:
        """A person's bind, and a read on a pooled connection that does not need it.

        While the bind answers quickly the read follows it, so a wrong password
        costs the directory nothing more. A bind still unanswered after
        OVERLAP_AFTER means a slow directory (or a slow password hash): the read
        starts beside it, so a login takes two round trips rather than three.
        What the read found is used only once the bind has succeeded.
        """
        binding = asyncio.ensure_future(bind)
        reading: asyncio.Future[_Read] | None = None
        try:
            await asyncio.wait({binding}, timeout=OVERLAP_AFTER)
            if not binding.done():
                reading = asyncio.ensure_future(read())
            conn = await binding
            try:
                return conn, await (reading if reading is not None else read())
            except BaseException:
                conn.close()
                raise
        finally:
            # Given up (a refused bind, a deadline): neither outlives the login,
            # so no pooled connection or socket is left to a task nobody awaits.
            pending = {task for task in (binding, reading) if task is not None and not task.done()}
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
            if reading is not None and not reading.cancelled():
                reading.exception()  # a read that failed beside a refused bind: not news

    async def _groups(self, entry: Any, username: str, conn: Any | None) -> frozenset[str]:
        settings = self._settings
        if settings.group_mode == "memberof":
            names = [str(value) for value in entry.get(MEMBER_OF, [])]
        else:
            user_id = _first(entry, settings.id_attribute) or username
            filter_exp = settings.group_filter.format(
                user_dn=bonsai.escape_filter_exp(str(entry.dn)),
                username=bonsai.escape_filter_exp(user_id),
            )
            scope = bonsai.LDAPSearchScope.SUBTREE
            if conn is None:
                found = await self._pooled_search(settings.group_base, scope, filter_exp, ["1.1"])
            else:
                found = await self._search(conn, settings.group_base, scope, filter_exp, ["1.1"])
            names = [str(group.dn) for group in found]
        groups: set[str] = set()
        for name in names:
            try:
                groups.add(canonical_dn(name))
            except ValueError:
                log.warning("ignoring a group that is not a DN")
        return frozenset(groups)

    def _person(self, entry: Any, username: str, groups: frozenset[str]) -> Person:
        settings = self._settings
        user_id = _first(entry, settings.id_attribute) or username
        avatar = _first(entry, settings.avatar_attribute) if settings.avatar_attribute else None
        group = _first(entry, settings.group_attribute) if settings.group_attribute else None
        return Person(
            user_id=user_id,
            display_name=display_name(_first(entry, settings.name_attribute), user_id),
            email=_first(entry, settings.mail_attribute) or "",
            groups=groups,
            context_group=(group or "")[:MAX_GROUP_NAME],
            avatar=avatar if avatar and _is_https_url(avatar) else "",
        )


class _EarlyBind:
    """A returning person's bind, sent beside her search when the directory is slow.

    Only once the search has gone unanswered for OVERLAP_AFTER (a quick
    directory answers a login as before: search, then bind), and only to the
    entry ``usual`` names, in the spelling the directory gave it when this
    process last bound to it. The bind counts only if the search then finds
    that very entry (:meth:`take`); any other outcome discards it, and the
    found entry is bound to as usual. ``usual`` counts the entry first, so
    its bans hold before this bind, and the directory is asked one bind a
    login either way.

    The search itself stays in the login's own task: an error a task of its own
    kept would hold its frames, and with them its connection's socket, until the
    collector's next full run.
    """

    def __init__(self, directory: Directory, usual: UsualEntry, password: str) -> None:
        self._directory = directory
        self._usual = usual
        self._password = password
        self._dn: str | None = None
        self._binding: asyncio.Task[Any] | None = None
        # A timer, not a task, until OVERLAP_AFTER has passed: a quick search (nearly
        # every login) costs only its cancelling.
        self._starting: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(OVERLAP_AFTER, self._overlap)

    def _overlap(self) -> None:
        self._starting = asyncio.create_task(self._start())

    async def _start(self) -> None:
        key = await self._usual()
        self._dn = None if key is None else self._directory.spelling_of(key)
        if self._dn is not None:
            self._binding = asyncio.create_task(self._directory._bind_as(self._dn, self._password))

    async def settle(self) -> None:
        """The search has answered: no bind starts from now on, and one already decided
        on has begun (or what refused it, a ban, is raised here)."""
        self._timer.cancel()
        starting = self._starting
        if starting is None:
            return
        await asyncio.wait({starting})
        if not starting.cancelled() and (error := starting.exception()) is not None:
            raise error.with_traceback(None)

    def take(self, dn: str) -> asyncio.Task[Any] | None:
        """The bind, if it went to ``dn`` (the entry the search found): the login's now."""
        if self._binding is None or self._dn != dn:
            return None
        binding, self._binding = self._binding, None
        return binding

    async def discard(self) -> None:
        """What the login did not take: cancelled, and a connection made anyway closed,
        so that no socket outlives the login. A refused discarded bind is not news.
        usual() once asked is let finish: a count begun then ends with the login."""
        self._timer.cancel()
        if self._starting is not None:
            await asyncio.wait({self._starting})
            if not self._starting.cancelled():
                self._starting.exception()
        binding, self._binding = self._binding, None
        if binding is None:
            return
        if not binding.done():
            binding.cancel()
            await asyncio.wait({binding})
        if not binding.cancelled() and binding.exception() is None:
            binding.result().close()
