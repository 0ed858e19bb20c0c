"""Failed LDAP servers are asked last and probed in the background; every
login has one deadline, so nginx always gets its answer in time."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demo.nginx import default_include, free_port
from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config import MAX_DEADLINE_SECONDS
from sidecar.credentials import Credentials
from sidecar.directory import Directory
from sidecar.ldap_servers import ServerHealth
from sidecar.refusals import DirectoryUnavailable
from tests.stack import SilentServer, Stack, basic_auth
from tests.test_directory import ldap_settings

TEACHER = SCHOOL.teachers[0]
PUPILS = SCHOOL.pupils


@pytest.fixture
def silent() -> Iterator[Callable[[], SilentServer]]:
    servers: list[SilentServer] = []

    def make() -> SilentServer:
        servers.append(SilentServer())
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def refused_url() -> str:
    """Nothing listens there: the connection is refused at once."""
    return f"ldap://127.0.0.1:{free_port()}"


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# -- the order ----------------------------------------------------------------


async def test_a_failed_server_goes_last_until_a_probe_finds_it_back() -> None:
    answers = {"ldap://a": False}
    probed: list[str] = []

    async def probe(url: str) -> bool:
        probed.append(url)
        return answers.get(url, True)

    health = ServerHealth(("ldap://a", "ldap://b", "ldap://c"), probe=probe, retry_interval=0.01)
    try:
        assert health.ordered() == ["ldap://a", "ldap://b", "ldap://c"]
        health.failed("ldap://a", "TimeoutError")
        health.failed("ldap://b", "ConnectionError")
        assert health.ordered() == ["ldap://c", "ldap://a", "ldap://b"]
        # b answers its first probe; a keeps failing and keeps being probed.
        await until(lambda: health.ordered()[0] == "ldap://b")
        await until(lambda: probed.count("ldap://a") >= 3)
        assert health.ordered() == ["ldap://b", "ldap://c", "ldap://a"]
        answers["ldap://a"] = True
        await until(lambda: health.ordered() == ["ldap://a", "ldap://b", "ldap://c"])
    finally:
        health.close()


async def test_a_real_answer_puts_a_server_back_at_once() -> None:
    async def probe(url: str) -> bool:
        return False

    health = ServerHealth(("ldap://a", "ldap://b"), probe=probe, retry_interval=3600)
    try:
        health.failed("ldap://a", "TimeoutError")
        assert health.ordered() == ["ldap://b", "ldap://a"]
        health.answered("ldap://a")
        assert health.ordered() == ["ldap://a", "ldap://b"]
    finally:
        health.close()


# -- against a real slapd ---------------------------------------------------------


async def test_silent_and_dead_servers_are_asked_once_then_skipped(
    slapd: Slapd, silent: Callable[[], SilentServer]
) -> None:
    first, second = silent(), silent()
    urls = (first.url, refused_url(), second.url, slapd.ldap_url)
    directory = Directory(ldap_settings(slapd, urls=urls, timeout=0.3, retry_interval=3600))
    try:
        login = Credentials(TEACHER.uid, TEACHER.password)
        assert (await directory.authenticate(login)).user_id == TEACHER.uid
        asked = first.connections, second.connections
        assert asked == (1, 1)
        for pupil in PUPILS:
            await directory.authenticate(Credentials(pupil.uid, pupil.password))
        assert (await directory.look_up(TEACHER.uid)) is not None
        assert (first.connections, second.connections) == asked
    finally:
        directory.close()


async def test_a_server_back_from_an_outage_is_found_by_the_probe(tmp_path: Path) -> None:
    with Slapd(tmp_path / "first") as first, Slapd(tmp_path / "second") as second:
        urls = (first.ldap_url, second.ldap_url)
        directory = Directory(ldap_settings(first, urls=urls, timeout=1.0, retry_interval=1.0))
        try:
            first.stop()
            await directory.authenticate(Credentials(TEACHER.uid, TEACHER.password))
            assert directory._servers.ordered() == [second.ldap_url, first.ldap_url]
            first.start()
            await until(lambda: directory._servers.ordered()[0] == first.ldap_url, 20)
        finally:
            directory.close()


async def test_one_deadline_for_a_whole_login(
    slapd: Slapd, silent: Callable[[], SilentServer]
) -> None:
    """Three silent servers at 1 s each would take 3 s; the deadline ends it sooner,
    as an outage, never as a wrong password."""
    urls = (silent().url, silent().url, silent().url, slapd.ldap_url)
    directory = Directory(ldap_settings(slapd, urls=urls, timeout=1.0, deadline=0.5))
    try:
        with pytest.raises(DirectoryUnavailable):
            await directory.authenticate(Credentials(TEACHER.uid, TEACHER.password))
        with pytest.raises(DirectoryUnavailable):
            await directory.look_up(TEACHER.uid)
    finally:
        directory.close()


# -- through nginx -------------------------------------------------------------------


def test_silent_servers_first_in_the_list_never_give_a_500(
    slapd: Slapd, silent: Callable[[], SilentServer], make_stack: Callable[..., Stack]
) -> None:
    first, second = silent(), silent()
    urls = f'urls = ["{first.url}", "{second.url}", "{slapd.ldap_url}"]'
    stack = make_stack(
        slapd,
        replace={
            f'urls = ["{slapd.ldap_url}"]': urls
            + "\ntimeout = 1.0\ndeadline = 1.5\nretry_interval = 3600"
        },
    )
    statuses = []
    for pupil in PUPILS:
        reply = stack.get("/Mathe7b", basic_auth(pupil.uid, pupil.password))
        statuses.append(reply.status)
        assert reply.status in (302, 503), reply
        if reply.status == 503:
            assert "unreachable" in reply.body or "nicht erreichbar" in reply.body
    # The first logins find the silent servers out; after that nobody waits for them.
    assert statuses[-2:] == [302, 302], statuses
    asked = first.connections, second.connections
    for teacher in SCHOOL.teachers:
        reply = stack.get("/Mathe7b", basic_auth(teacher.uid, teacher.password))
        assert reply.status == 302
    assert (first.connections, second.connections) == asked
    assert "asked last" in stack.sidecar.log()


def test_the_deadline_ends_inside_nginxs_read_timeout() -> None:
    include = default_include().read_text("utf-8")
    verify = include[include.index("location = /_jitsi_auth_sidecar/verify") :]
    match = re.search(r"proxy_read_timeout (\d+)s;", verify)
    assert match is not None
    assert int(match.group(1)) >= MAX_DEADLINE_SECONDS + 2


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_cancelled_wait_leaves_no_socket_behind(
    slapd: Slapd, silent: Callable[[], SilentServer]
) -> None:
    """The deadline cancels bonsai mid-wait, or bonsai's own timeout ends it: its
    socket must leave the event loop and close.

    Left registered, the loop calls back on it for ever (a core at 100 %), and
    every probe of a hung server would keep one more socket open.
    """
    loop = asyncio.get_running_loop()
    selector = loop._selector  # type: ignore[attr-defined]
    hung = silent()
    directory = Directory(
        ldap_settings(slapd, urls=(hung.url,), timeout=5.0, deadline=0.5, retry_interval=3600)
    )
    registered, descriptors = len(selector.get_map()), open_descriptors()
    try:
        for _ in range(3):
            with pytest.raises(DirectoryUnavailable):
                await directory.authenticate(Credentials(TEACHER.uid, TEACHER.password))
        assert len(selector.get_map()) == registered
        # The silent server runs in this process: its own ends of the connections count.
        assert open_descriptors() == descriptors + hung.connections
        timing_out = Directory(ldap_settings(slapd, urls=(hung.url,), timeout=0.2))
        try:
            with pytest.raises(DirectoryUnavailable):
                await timing_out.authenticate(Credentials(TEACHER.uid, TEACHER.password))
        finally:
            timing_out.close()
        assert len(selector.get_map()) == registered
        assert open_descriptors() == descriptors + hung.connections
    finally:
        directory.close()


async def test_a_probe_that_fails_to_run_keeps_probing() -> None:
    calls: list[str] = []

    async def probe(url: str) -> bool:
        calls.append(url)
        if len(calls) == 1:
            raise RuntimeError("the CA file went away")
        return True

    health = ServerHealth(("ldap://a", "ldap://b"), probe=probe, retry_interval=0.01)
    try:
        health.failed("ldap://a", "TimeoutError")
        await until(lambda: health.ordered() == ["ldap://a", "ldap://b"])
        assert len(calls) == 2
    finally:
        health.close()


async def test_a_busy_pool_is_no_failed_server(slapd: Slapd) -> None:
    """Waiting for a pooled connection in vain says "busy": no server is put last."""
    directory = Directory(ldap_settings(slapd, pool_size=1, timeout=0.3))
    try:
        async with directory._pool.connection():
            with pytest.raises(DirectoryUnavailable, match="busy"):
                await directory.look_up(TEACHER.uid)
        assert directory._servers.ordered() == [slapd.ldap_url]
        assert (await directory.look_up(TEACHER.uid)) is not None
    finally:
        directory.close()
