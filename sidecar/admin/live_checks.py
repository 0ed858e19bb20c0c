"""Whether the services a configuration names answer now (``check-config``).

One check per LDAP server in ``ldap.urls`` (connect, bind as the service
account if there is one, one search); then, on the first server that passed,
what the directory holds (:mod:`sidecar.admin.directory_checks`: the ``[[roles]]``
groups and ``ldap.user_filter``); one of Redis when ``state.redis_url``
is set (PING), one of the room-size API when ``classroom.room_size_url`` is
set (the daemon's own question, for a room that does not exist), one of the
videobridge's statistics when ``classroom.bridge_stats_url`` is set (the
figures the start page shows). Each result says exactly which
step failed, and whether the service answered wrongly or did not answer at
all (``unreachable``). Every request is bounded by the timeout the daemon
itself uses for it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import bonsai

from sidecar.admin.directory_checks import check_role_groups, check_user_filter
from sidecar.config.settings import LdapSettings, Settings, StateSettings
from sidecar.jitsi.bridge_stats import REQUEST_TIMEOUT_SECONDS as BRIDGE_TIMEOUT_SECONDS
from sidecar.jitsi.room_size import (
    REQUEST_TIMEOUT_SECONDS,
    Occupants,
    OccupantsEndpoint,
    RoomSizeError,
    spellings_for,
)
from sidecar.jitsi.tokens import RoomTokens
from sidecar.ldap.directory import ldap_client
from sidecar.rooms import backend_safe_room_name
from sidecar.shared_state import open_redis

# A room (and a user name) that exists nowhere: asking about it changes nothing.
_NOBODY_PREFIX = "jitsi-auth-sidecar-check-"
_ROOT_DSE = ""


@dataclass(frozen=True)
class CheckResult:
    name: str  # what was checked: "LDAP ldap://...", "Redis ...", "room-size API ..."
    ok: bool
    detail: str  # what was done, or exactly what failed
    unreachable: bool = False  # nothing answered at all (rather than a wrong answer)


async def live_checks(settings: Settings) -> AsyncIterator[CheckResult]:
    """Each check's result as soon as it is known (an admin watches slow ones come in)."""
    answering: str | None = None
    for url in settings.ldap.urls:
        result = await check_ldap_server(settings.ldap, url)
        if result.ok and answering is None:
            answering = url
        yield result
    if answering is not None:
        for result in await check_directory(settings, answering):
            yield result
    if settings.state.redis_url:
        yield await check_redis(settings.state)
    if settings.classroom.room_size_url:
        yield await check_room_size(settings)
    if settings.classroom.bridge_stats_url:
        yield await check_bridge_statistics(settings.classroom.bridge_stats_url)


def _nobody() -> str:
    return _NOBODY_PREFIX + secrets.token_hex(6)


def _milliseconds(started: float) -> str:
    return f"{(time.monotonic() - started) * 1000:.0f} ms"


# -- LDAP ------------------------------------------------------------------------------


def _ldap_client(settings: LdapSettings, url: str) -> Any:
    """A client for ``url`` set up as the daemon's Directory sets up its own."""
    return ldap_client(settings, url, settings.bind_dn, settings.bind_password)


def _parent_dn(template: str) -> str | None:
    """The entry above the ones ``ldap.user_dn_template`` names; None when it is no DN
    (an Active Directory ``{username}@domain``, say)."""
    try:
        dn = bonsai.LDAPDN(template.format(username="x"))
    except (bonsai.InvalidDN, TypeError, ValueError):
        return None
    parent: str = dn[1:]
    return parent or None


@dataclass(frozen=True)
class _Read:
    key: str  # the setting it checks
    base: str
    scope: bonsai.LDAPSearchScope
    filter_exp: str = "(objectClass=*)"
    # bonsai answers a base that does not exist with no entries, not with an error:
    # a base read must find its entry.
    must_find: bool = True

    @property
    def shown(self) -> str:
        return self.base or "the root DSE"


def _reads(settings: LdapSettings) -> list[_Read]:
    """What to read to see that the configured bases exist and the user filter is taken."""
    base_scope = bonsai.LDAPSearchScope.BASE
    reads: list[_Read] = []
    if settings.user_dn_template:
        parent = _parent_dn(settings.user_dn_template)
        if parent is None:
            reads.append(_Read("the root DSE", _ROOT_DSE, base_scope))
        else:
            reads.append(_Read("ldap.user_dn_template", parent, base_scope))
    else:
        # Then as a login searches, for a name nobody has: an answer, with nothing in it.
        user_filter = settings.user_filter.format(username=bonsai.escape_filter_exp(_nobody()))
        reads += [
            _Read("ldap.user_base", settings.user_base, base_scope),
            _Read(
                "ldap.user_filter",
                settings.user_base,
                bonsai.LDAPSearchScope.SUBTREE,
                user_filter,
                must_find=False,
            ),
        ]
    if settings.group_mode == "search":
        reads.append(_Read("ldap.group_base", settings.group_base, base_scope))
    return reads


async def check_ldap_server(settings: LdapSettings, url: str) -> CheckResult:
    """Connect, bind (the service account, or anonymously) and search, on ``url`` alone."""
    name = f"LDAP {url}"
    who = f"as {settings.bind_dn}" if settings.bind_dn is not None else "anonymously"
    started = time.monotonic()
    client = _ldap_client(settings, url)
    try:
        async with asyncio.timeout(settings.timeout):
            conn = await client.connect(is_async=True, timeout=settings.timeout)
    except bonsai.AuthenticationError as error:
        return CheckResult(
            name,
            False,
            f"the server refused the bind {who}: {error}: "
            "fix ldap.bind_password_file (or ldap.bind_dn)",
        )
    except (TimeoutError, bonsai.TimeoutError):
        return CheckResult(
            name, False, f"no answer within ldap.timeout ({settings.timeout:g} s)", True
        )
    except (bonsai.LDAPError, OSError) as error:
        return CheckResult(name, False, f"cannot connect: {error}", True)
    reads = _reads(settings)
    try:
        for read in reads:
            failure = await _search(settings, conn, read)
            if failure is not None:
                detail, unreachable = failure
                return CheckResult(name, False, detail, unreachable)
    finally:
        conn.close()
    bases = ", ".join(dict.fromkeys(read.shown for read in reads))
    return CheckResult(name, True, f"bound {who}, read {bases} ({_milliseconds(started)})")


async def _search(settings: LdapSettings, conn: Any, read: _Read) -> tuple[str, bool] | None:
    """None, or what failed and whether that was no answer at all."""
    timeout = f"ldap.timeout ({settings.timeout:g} s)"
    try:
        async with asyncio.timeout(settings.timeout):
            entries = await conn.search(
                read.base, read.scope, read.filter_exp, ["1.1"], timeout=settings.timeout
            )
    except (TimeoutError, bonsai.TimeoutError):
        return f"no answer to a search of {read.shown} within {timeout}", True
    except bonsai.ConnectionError as error:
        return f"the connection broke in a search of {read.shown}: {error}", True
    except bonsai.LDAPError as error:
        return f"{read.key}: the search of {read.shown} failed: {error}", False
    if read.must_find and not entries:
        reader = "the service account" if settings.bind_dn is not None else "an anonymous reader"
        return (
            f"{read.key}: {read.shown!r} does not exist, or {reader} may not read it: "
            f"fix the DN in {read.key}"
        ), False
    return None


async def check_directory(settings: Settings, url: str) -> list[CheckResult]:
    """The admin's likely typos, on the server at ``url`` (it answered a moment ago)."""
    ldap = settings.ldap
    try:
        async with asyncio.timeout(ldap.timeout):
            conn = await _ldap_client(ldap, url).connect(is_async=True, timeout=ldap.timeout)
    except (TimeoutError, bonsai.LDAPError, OSError) as error:
        return [CheckResult(f"LDAP {url}", False, f"cannot connect again: {error}", True)]
    try:
        findings = []
        if not ldap.user_dn_template:
            findings.append(await check_user_filter(ldap, conn))
        findings += await check_role_groups(ldap, conn, settings.roles)
    except (TimeoutError, bonsai.TimeoutError):
        return [CheckResult(f"LDAP {url}", False, "no answer within ldap.timeout", True)]
    except bonsai.LDAPError as error:
        return [CheckResult(f"LDAP {url}", False, f"reading the directory failed: {error}")]
    finally:
        conn.close()
    return [CheckResult(finding.name, finding.ok, finding.detail) for finding in findings]


# -- Redis -------------------------------------------------------------------------------


async def check_redis(settings: StateSettings) -> CheckResult:
    """PING through the daemon's own client (``state.timeout``, no retry)."""
    import redis.exceptions  # loaded only when a Redis is configured (see shared_state)

    name = f"Redis {settings.redis_url}"
    client = open_redis(settings)
    assert client is not None  # only asked when state.redis_url is set
    started = time.monotonic()
    try:
        await client.ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
        if _is_authentication(error):
            detail = f"refused the password (state.redis_password_file): {error}"
            return CheckResult(name, False, detail)
        return CheckResult(name, False, f"cannot connect: {error}", True)
    except redis.exceptions.RedisError as error:
        return CheckResult(name, False, f"refused PING: {error}")
    finally:
        await client.aclose()
    return CheckResult(name, True, f"PING answered ({_milliseconds(started)})")


def _is_authentication(error: BaseException) -> bool:
    """A refused password: the server answered. redis-py may wrap it in a ConnectionError."""
    from redis.exceptions import AuthenticationError as auth

    return isinstance(error, auth) or isinstance(error.__cause__, auth)


# -- the room-size API ----------------------------------------------------------------


async def check_room_size(settings: Settings) -> CheckResult:
    """The question :mod:`sidecar.jitsi.room_size` asks, for a room nobody is in, end to end.

    The same request as the daemon's (mod_muc_size's occupants endpoint, the
    XMPP domain as ``Host``, a token when configured), for a name with a
    ``%`` in its node, in both spellings of ``room=``: mod_muc_size answers a
    room that does not exist with an empty 404, which is told apart from
    Prosody's own HTML 404 ("Unknown host": Prosody serves no such host).
    """
    url = settings.classroom.room_size_url
    name = f"room-size API {url}"
    domain = settings.xmpp_domain
    room = backend_safe_room_name(_nobody() + " check")
    token = (
        RoomTokens(settings.jitsi).room_check_token(room)
        if settings.classroom.room_size_token
        else None
    )
    started = time.monotonic()
    answers: list[Occupants] = []
    endpoint = OccupantsEndpoint.configured(settings.classroom, domain)
    try:
        async with aiohttp.ClientSession() as client:
            for spelling in spellings_for(room):
                answers.append(await endpoint.ask(client, room, spelling, token=token))
    except RoomSizeError as error:
        if error.reason == "unreachable":
            detail = str(error) or f"no answer within {REQUEST_TIMEOUT_SECONDS:g} s"
            return CheckResult(name, False, f"cannot connect: {detail}", True)
        if error.reason == "unreadable":
            return CheckResult(name, False, f"no usable answer: {error}")
        return CheckResult(name, False, str(error))
    took = _milliseconds(started)
    if all(answer.refused for answer in answers):
        hint = (
            "refused the room's token (jitsi.app_id, app_secret, classroom.xmpp_domain?)"
            if settings.classroom.room_size_token
            else "wants a token (classroom.room_size_token = true)"
        )
        return CheckResult(name, False, f"status 403: {hint}")
    if any(answer.people for answer in answers):
        return CheckResult(name, False, "a room nobody uses has people in it: not mod_muc_size?")
    return CheckResult(
        name, True, f"mod_muc_size's empty 404 for a room nobody is in, Host {domain} ({took})"
    )


# -- the videobridge's statistics ----------------------------------------------------


async def check_bridge_statistics(url: str) -> CheckResult:
    """The request :mod:`sidecar.jitsi.bridge_stats` makes: a JSON object with the two counts."""
    name = f"bridge statistics {url}"
    started = time.monotonic()
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.get(
                url,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=BRIDGE_TIMEOUT_SECONDS),
            ) as response,
        ):
            if response.status != 200:
                return CheckResult(
                    name,
                    False,
                    f"status {response.status}: fix the URL (the videobridge's /colibri/stats)",
                )
            stats = await response.json(content_type=None)
    except (aiohttp.ClientConnectionError, TimeoutError) as error:
        detail = str(error) or f"no answer within {BRIDGE_TIMEOUT_SECONDS:g} s"
        return CheckResult(
            name,
            False,
            f"cannot connect: {detail}: fix the URL, or start the videobridge's REST API",
            True,
        )
    except (aiohttp.ClientError, ValueError) as error:
        return CheckResult(name, False, f"no usable answer: {error}: not the videobridge's stats?")
    missing = [
        key
        for key in ("conferences", "participants")
        if not isinstance(stats, dict)
        or isinstance(stats.get(key), bool)
        or not isinstance(stats.get(key), int)
    ]
    if missing:
        return CheckResult(
            name, False, f"no {' or '.join(missing)} in the answer: not the videobridge's stats?"
        )
    return CheckResult(
        name,
        True,
        f"{stats['conferences']} conferences, {stats['participants']} participants "
        f"({_milliseconds(started)})",
    )
