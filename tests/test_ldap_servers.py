"""Failed LDAP servers are asked last and probed in the background; every
login has one deadline, so nginx always gets its answer in time."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import bonsai
import pytest

from demo.nginx import default_include
from demo.ports import free_port
from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import MAX_DEADLINE_SECONDS, LdapSettings
from sidecar.credentials import Credentials
from sidecar.ldap.directory import Directory, _Outcome
from sidecar.ldap.servers import ServerHealth
from sidecar.people import Person
from sidecar.refusals import DirectoryUnavailable, InvalidCredentials
from soak.proxy import DelayingProxy
from testbed.configs import ldap_settings
from testbed.poll import poll_until_async
from testbed.stack import SilentServer, Stack, basic_auth

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
    reached = await poll_until_async(condition, seconds=seconds, interval=0.01)
    assert reached, "condition not reached in time"


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
            assert "does not answer" in reply.body or "antwortet gerade nicht" in reply.body
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


# -- hedged attempts ---------------------------------------------------------------

# Longer than any deadline: a server asked in turn, not in parallel, would end every login.
NEVER = 60.0


async def test_silent_servers_first_hold_up_no_login(
    slapd: Slapd, silent: Callable[[], SilentServer]
) -> None:
    """Each silent server would wait its whole timeout, longer than the deadline; the
    next is asked after the hedge delay instead, and the first answer wins."""
    first, second = silent(), silent()
    urls = (first.url, second.url, slapd.ldap_url)
    settings = ldap_settings(
        slapd, urls=urls, timeout=NEVER, deadline=10.0, hedge_delay=0.1, retry_interval=3600
    )
    directory = Directory(settings)
    try:
        person = await directory.authenticate(Credentials(TEACHER.uid, TEACHER.password))
        assert person.user_id == TEACHER.uid
        # The service connection asked all three, in order, each while the others waited.
        assert list(directory.attempts_started)[:3] == list(urls)
        # Given up while another answered: both count as failed, and go last.
        assert directory._servers.ordered() == [slapd.ldap_url, first.url, second.url]
        asked = (first.connections, second.connections)
        directory.attempts_started.clear()
        for pupil in PUPILS:
            await directory.authenticate(Credentials(pupil.uid, pupil.password))
        assert set(directory.attempts_started) == {slapd.ldap_url}
        assert (first.connections, second.connections) == asked
    finally:
        directory.close()


async def test_a_wrong_password_is_an_answer_even_behind_silent_servers(
    slapd: Slapd, silent: Callable[[], SilentServer]
) -> None:
    """Refused by the one live server: a wrong password, not an outage, and never a login."""
    urls = (silent().url, slapd.ldap_url)
    settings = ldap_settings(slapd, urls=urls, timeout=NEVER, deadline=10.0, hedge_delay=0.1)
    directory = Directory(settings)
    try:
        with pytest.raises(InvalidCredentials):
            await directory.authenticate(Credentials(TEACHER.uid, TEACHER.password + "x"))
        # Right after: the right password works, the wrong one still does not.
        assert (await directory.authenticate(Credentials(TEACHER.uid, TEACHER.password))).user_id
        with pytest.raises(InvalidCredentials):
            await directory.authenticate(Credentials(TEACHER.uid, "wrong"))
    finally:
        directory.close()


async def test_a_server_given_up_at_the_deadline_counts_as_failed(
    slapd: Slapd, silent: Callable[[], SilentServer]
) -> None:
    first, second = silent(), silent()
    settings = ldap_settings(
        slapd,
        urls=(first.url, second.url),
        timeout=NEVER,
        deadline=0.5,
        hedge_delay=10.0,  # only the first is asked before the deadline
        retry_interval=3600,
    )
    directory = Directory(settings)
    try:
        with pytest.raises(DirectoryUnavailable):
            await directory.authenticate(Credentials(TEACHER.uid, TEACHER.password))
        assert second.connections == 0
        assert directory._servers.ordered() == [second.url, first.url]
    finally:
        directory.close()


@pytest.mark.parametrize("refusal_first", [True, False])
async def test_a_refusal_is_never_outvoted(refusal_first: bool) -> None:
    """Two servers answer at the same moment, one "wrong password", one "welcome" (a
    replica with an old password, say): the refusal wins, whichever was asked first."""
    settings = LdapSettings(
        urls=("ldap://one", "ldap://two"), user_base="ou=people", hedge_delay=0.05
    )
    directory = Directory(settings)
    both_asked = asyncio.Event()
    welcomed: list[FakeConnection] = []

    async def attempt(url: str, dn: str | None, password: object) -> _Outcome:
        if url == "ldap://two":
            both_asked.set()
        await both_asked.wait()
        refuses = (url == "ldap://one") is refusal_first
        if refuses:
            return _Outcome(url, refused=True)
        welcomed.append(FakeConnection())
        return _Outcome(url, conn=welcomed[-1])

    directory._attempt = attempt  # type: ignore[method-assign]
    try:
        with pytest.raises(bonsai.AuthenticationError):
            await directory._connect("uid=anna", "password")
        assert all(connection.closed for connection in welcomed)
    finally:
        directory.close()


class FakeConnection:
    closed = False

    def close(self) -> None:
        self.closed = True


# -- a slow directory ------------------------------------------------------------------


async def test_a_slow_directory_makes_logins_wait_for_it_not_for_each_other(
    slapd: Slapd,
) -> None:
    """Every answer 1 s late: logins at one moment each take their own few round
    trips, instead of queueing for a few pooled connections until ldap.timeout
    (with the 4 there were, most of these got "directory unavailable")."""
    proxy = DelayingProxy(slapd.port).start()
    proxy.delay = 1.0
    settings = ldap_settings(slapd, urls=(proxy.url,), timeout=3.0, deadline=10.0)
    default_pool = LdapSettings(user_base="ou=people").pool_size
    directory = Directory(dataclasses.replace(settings, pool_size=default_pool))
    people = [*PUPILS, *SCHOOL.teachers] * 4
    try:
        results = await asyncio.gather(
            *(directory.authenticate(Credentials(p.uid, p.password)) for p in people),
            return_exceptions=True,
        )
        failures = [repr(result) for result in results if not isinstance(result, Person)]
        assert not failures, failures
        assert len(people) > 16
    finally:
        directory.close()
        proxy.stop()


async def test_a_connection_no_longer_wanted_does_not_blame_its_server(
    slapd: Slapd, silent: Callable[[], SilentServer]
) -> None:
    """A group search given up because the bind beside it was refused cancels
    its pooled connection's open: the server has not failed."""
    first = silent()
    settings = ldap_settings(
        slapd, urls=(first.url, slapd.ldap_url), timeout=NEVER, deadline=5.0, hedge_delay=1.0
    )
    directory = Directory(settings)
    try:
        opening = asyncio.ensure_future(directory.connect_reader())
        await poll_until_async(lambda: first.connections == 1)
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        assert directory._servers.ordered() == [first.url, slapd.ldap_url]
    finally:
        directory.close()
