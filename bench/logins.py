"""Before measuring: what the load is made of, obtained through nginx and the sidecar.

For each person: a room token (a Basic login, which also puts them in the
Basic credentials cache) and a session cookie (a form login). And one CSRF
pair for the login form: the sidecar's CSRF check is a double submit (the
cookie and the form field must be equal, ``sidecar/web/csrf.py``) with no state
on the server, so one pair fetched from the login page serves every POST.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp

from bench.prepared import ACCEPT_LANGUAGE, LOGIN_PATH, ROOM_PATH, basic_authorization
from demo.school import Person
from sidecar.web.csrf import FIELD as CSRF_FIELD

REQUEST_TIMEOUT = 30.0
T = TypeVar("T")
_FORM_TOKEN = re.compile(rf'name="{CSRF_FIELD}" value="([^"]+)"')


class LoginFailed(RuntimeError):
    """The sidecar did not answer a preparing request as a good login gets answered."""


@dataclass(frozen=True)
class CsrfPair:
    cookie: str  # "name=value", as the Cookie header carries it
    token: str  # the form field's value


@dataclass(frozen=True)
class Admitted:
    """What one person's requests carry in the measurements."""

    person: Person
    token: str  # a room token for ROOM_PATH
    session_cookie: str  # "name=value"


def _cookie_pair(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0]


def token_of(location: str) -> str:
    tokens = parse_qs(urlsplit(location).query).get("jwt", [])
    if len(tokens) != 1:
        raise LoginFailed(f"no single token in the redirect {location[:80]!r}")
    return tokens[0]


async def _csrf_pair(session: aiohttp.ClientSession, base_url: str) -> CsrfPair:
    url = f"{base_url}{LOGIN_PATH}?next={quote(ROOM_PATH, safe='')}"
    async with session.get(url, allow_redirects=False) as response:
        page = await response.text()
        cookies = response.headers.getall("Set-Cookie", [])
    match = _FORM_TOKEN.search(page)
    if response.status != 200 or match is None or len(cookies) != 1:
        raise LoginFailed(f"the login page answered {response.status} without a CSRF pair")
    pair = CsrfPair(cookie=_cookie_pair(cookies[0]), token=match.group(1))
    if pair.cookie.partition("=")[2] != pair.token:
        raise LoginFailed("the login page's CSRF cookie and field differ")
    return pair


async def _basic_token(session: aiohttp.ClientSession, base_url: str, person: Person) -> str:
    headers = {"Authorization": basic_authorization(person.uid, person.password)}
    async with session.get(
        f"{base_url}{ROOM_PATH}", headers=headers, allow_redirects=False
    ) as response:
        location = response.headers.get("Location", "")
        if response.status != 302:
            raise LoginFailed(f"Basic login of {person.uid}: {response.status}")
    return token_of(location)


async def _session_cookie(
    session: aiohttp.ClientSession, base_url: str, person: Person, csrf: CsrfPair
) -> str:
    form = {
        CSRF_FIELD: csrf.token,
        "next": ROOM_PATH,
        "username": person.uid,
        "password": person.password,
    }
    async with session.post(
        f"{base_url}{LOGIN_PATH}",
        data=form,
        headers={"Cookie": csrf.cookie},
        allow_redirects=False,  # the redirect is what is checked, never followed
    ) as response:
        cookies = response.headers.getall("Set-Cookie", [])
        if response.status != 302 or len(cookies) != 1:
            raise LoginFailed(f"form login of {person.uid}: {response.status}")
    return _cookie_pair(cookies[0])


async def _each(
    people: Sequence[Person], concurrency: int, step: Callable[[Person], Awaitable[T]]
) -> list[T]:
    """``step`` for every person, ``concurrency`` at a time, in the people's order."""
    slots = asyncio.Semaphore(concurrency)

    async def bounded(person: Person) -> T:
        async with slots:
            return await step(person)

    return list(await asyncio.gather(*(bounded(person) for person in people)))


async def _admit_all(
    base_url: str, people: Sequence[Person], concurrency: int
) -> tuple[CsrfPair, list[Admitted]]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),  # every request says itself what it carries
        headers={"Accept-Language": ACCEPT_LANGUAGE},
    ) as session:
        csrf = await _csrf_pair(session, base_url)
        tokens = await _each(people, concurrency, lambda p: _basic_token(session, base_url, p))
        cookies = await _each(
            people, concurrency, lambda p: _session_cookie(session, base_url, p, csrf)
        )
    return csrf, [
        Admitted(person, token, cookie)
        for person, token, cookie in zip(people, tokens, cookies, strict=True)
    ]


def admit_all(
    base_url: str, people: Sequence[Person], concurrency: int
) -> tuple[CsrfPair, list[Admitted]]:
    """Every person logged in twice (Basic, then the form), ``concurrency`` at a time."""
    return asyncio.run(_admit_all(base_url, people, concurrency))
