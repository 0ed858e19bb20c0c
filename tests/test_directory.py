"""Directory access against a real slapd: binds, searches, groups, TLS, outages."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import Secret
from sidecar.credentials import Credentials
from sidecar.ldap.directory import Directory
from sidecar.ldap.dn import canonical_dn
from sidecar.metrics import Metrics
from sidecar.people import Person
from sidecar.refusals import DirectoryUnavailable, InvalidCredentials
from soak.proxy import DelayingProxy
from testbed.configs import ldap_settings

TEACHERS = canonical_dn(SCHOOL.teachers_group_dn)
PUPILS = canonical_dn(SCHOOL.pupils_group_dn)
CLASS_7B = canonical_dn(SCHOOL.posix_group_dn)


@pytest.fixture
async def directory(slapd: Slapd) -> AsyncIterator[Directory]:
    directory = Directory(ldap_settings(slapd))
    yield directory
    directory.close()


def login(uid: str, password: str) -> Credentials:
    return Credentials(username=uid, password=password)


TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[0]


async def test_teacher_search_then_bind(directory: Directory) -> None:
    person = await directory.authenticate(login(TEACHER.uid, TEACHER.password))
    assert person.user_id == TEACHER.uid
    assert person.display_name == TEACHER.display_name
    assert person.email == TEACHER.mail
    assert TEACHERS in person.groups
    assert PUPILS not in person.groups


async def test_wrong_password_and_unknown_user_look_the_same(directory: Directory) -> None:
    with pytest.raises(InvalidCredentials) as wrong:
        await directory.authenticate(login(TEACHER.uid, TEACHER.password + "x"))
    with pytest.raises(InvalidCredentials) as unknown:
        await directory.authenticate(login("no.such.person", TEACHER.password))
    assert str(wrong.value) == str(unknown.value)


@pytest.mark.parametrize(
    "username",
    [
        "*",
        TEACHER.uid[:4] + "*",
        "*)(uid=*",
        f"{TEACHER.uid})(uid=*",
        "\\00",
        f"{TEACHER.uid}\\00",
        f"{TEACHER.uid}*)(|(objectClass=*",
    ],
)
async def test_filter_metacharacters_never_match_someone_else(
    directory: Directory, username: str
) -> None:
    with pytest.raises(InvalidCredentials):
        await directory.authenticate(login(username, TEACHER.password))


async def test_search_must_find_exactly_one_entry(slapd: Slapd) -> None:
    # A filter that matches everybody: even the right password is not enough.
    directory = Directory(
        ldap_settings(slapd, user_filter="(|(uid={username})(objectClass=inetOrgPerson))")
    )
    try:
        with pytest.raises(InvalidCredentials):
            await directory.authenticate(login(TEACHER.uid, TEACHER.password))
    finally:
        directory.close()


async def test_direct_bind_with_template(slapd: Slapd) -> None:
    directory = Directory(
        ldap_settings(
            slapd,
            bind_dn=None,
            bind_password=None,
            user_dn_template=f"uid={{username}},ou=people,{SCHOOL.base_dn}",
        )
    )
    try:
        person = await directory.authenticate(login(PUPIL.uid, PUPIL.password))
        assert PUPILS in person.groups
        with pytest.raises(InvalidCredentials):
            await directory.authenticate(login(PUPIL.uid, "not-the-password"))
        # A DN-breaking name is escaped into a name nobody has.
        with pytest.raises(InvalidCredentials):
            await directory.authenticate(login(f"{PUPIL.uid},ou=people", PUPIL.password))
    finally:
        directory.close()


async def test_group_search_finds_group_of_names_and_posix_group(slapd: Slapd) -> None:
    directory = Directory(ldap_settings(slapd, group_mode="search"))
    try:
        posix_only = SCHOOL.posix_only
        person = await directory.authenticate(login(posix_only.uid, posix_only.password))
        assert person.groups == {CLASS_7B}
        teacher = await directory.authenticate(login(TEACHER.uid, TEACHER.password))
        assert TEACHERS in teacher.groups
    finally:
        directory.close()


async def test_person_in_no_group(directory: Directory) -> None:
    nobody = SCHOOL.nobody
    person = await directory.authenticate(login(nobody.uid, nobody.password))
    assert person.groups == frozenset()


async def test_ldaps_with_the_schools_ca(slapd: Slapd) -> None:
    directory = Directory(ldap_settings(slapd, urls=(slapd.ldaps_url,), ca_file=slapd.ca_file))
    try:
        person = await directory.authenticate(login(TEACHER.uid, TEACHER.password))
        assert person.user_id == TEACHER.uid
    finally:
        directory.close()


async def test_start_tls_with_the_schools_ca(slapd: Slapd) -> None:
    directory = Directory(ldap_settings(slapd, start_tls=True, ca_file=slapd.ca_file))
    try:
        person = await directory.authenticate(login(TEACHER.uid, TEACHER.password))
        assert person.user_id == TEACHER.uid
    finally:
        directory.close()


async def test_untrusted_certificate_is_an_outage_not_a_wrong_password(slapd: Slapd) -> None:
    # No CA given: the self-made CA is unknown to the system, so "demand" fails.
    directory = Directory(ldap_settings(slapd, urls=(slapd.ldaps_url,)))
    try:
        with pytest.raises(DirectoryUnavailable):
            await directory.authenticate(login(TEACHER.uid, TEACHER.password))
    finally:
        directory.close()


async def test_urls_are_tried_in_order(slapd: Slapd) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_url = f"ldap://127.0.0.1:{closed.getsockname()[1]}"
    directory = Directory(ldap_settings(slapd, urls=(dead_url, slapd.ldap_url)))
    try:
        person = await directory.authenticate(login(TEACHER.uid, TEACHER.password))
        assert person.user_id == TEACHER.uid
    finally:
        directory.close()


async def test_wrong_service_password_is_an_outage(slapd: Slapd) -> None:
    directory = Directory(ldap_settings(slapd, bind_password=Secret(b"not-the-service-password")))
    try:
        with pytest.raises(DirectoryUnavailable):
            await directory.authenticate(login(TEACHER.uid, TEACHER.password))
    finally:
        directory.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts TCP connections and never says a word, like a hung directory."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield f"ldap://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


async def test_silent_server_times_out_as_outage(slapd: Slapd, silent_server: str) -> None:
    directory = Directory(ldap_settings(slapd, urls=(silent_server,), timeout=0.5))
    try:
        with pytest.raises(DirectoryUnavailable):
            await asyncio.wait_for(
                directory.authenticate(login(TEACHER.uid, TEACHER.password)), timeout=10
            )
    finally:
        directory.close()


async def test_busy_pool_waits_with_a_deadline(slapd: Slapd, silent_server: str) -> None:
    # pool_size 1, and the one connection hangs: the next caller must not wait forever.
    directory = Directory(ldap_settings(slapd, urls=(silent_server,), timeout=0.5, pool_size=1))
    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(directory.authenticate(login(TEACHER.uid, TEACHER.password)) for _ in range(3)),
                return_exceptions=True,
            ),
            timeout=15,
        )
        assert all(isinstance(result, DirectoryUnavailable) for result in results)
    finally:
        directory.close()


async def test_recovers_after_the_server_restarts(tmp_path: Path) -> None:
    with Slapd(tmp_path / "slapd") as own:
        directory = Directory(ldap_settings(own))
        try:
            await directory.authenticate(login(TEACHER.uid, TEACHER.password))
            own.stop()
            with pytest.raises(DirectoryUnavailable):
                await directory.authenticate(login(TEACHER.uid, TEACHER.password))
            own.start()
            person = await directory.authenticate(login(TEACHER.uid, TEACHER.password))
            assert person.user_id == TEACHER.uid
        finally:
            directory.close()


async def test_direct_bind_escapes_dn_parts(slapd: Slapd) -> None:
    # Unescaped, this name would turn the template into the service account's DN.
    directory = Directory(
        ldap_settings(
            slapd,
            bind_dn=None,
            bind_password=None,
            user_dn_template=f"cn={{username}},{SCHOOL.base_dn}",
        )
    )
    try:
        with pytest.raises(InvalidCredentials):
            await directory.authenticate(login("sidecar,ou=services", SCHOOL.service_password))
    finally:
        directory.close()


async def test_waiting_for_a_pooled_connection_has_a_deadline(slapd: Slapd) -> None:
    directory = Directory(ldap_settings(slapd, pool_size=1, timeout=0.5))
    try:
        # Somebody holds the only connection (a hung search, say).
        async with directory._pool.connection():
            with pytest.raises(DirectoryUnavailable):
                await asyncio.wait_for(
                    directory.authenticate(login(TEACHER.uid, TEACHER.password)), timeout=10
                )
    finally:
        directory.close()


@pytest.mark.parametrize(
    ("value", "usable"),
    [
        ("https://school.example/photos/anna.png", True),
        ("https://school.example/p.png photo", False),  # labeledURI's "URL label" form
        ("https://[x/p.png", False),  # urlsplit raises: no 500, no avatar
        ("http://school.example/p.png", False),
        ("javascript:alert(1)", False),
        ("https://school.example/" + "a" * 300, False),
        ("https://schüle.example/p.png", False),
    ],
)
def test_only_a_plain_https_url_becomes_an_avatar(value: str, usable: bool) -> None:
    from sidecar.ldap.directory import _is_https_url

    assert _is_https_url(value) is usable


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_bursts_pooled_connections_are_closed_once_idle_and_a_used_one_is_kept(
    slapd: Slapd,
) -> None:
    metrics = Metrics()
    directory = Directory(ldap_settings(slapd, pool_size=8, pool_idle_timeout=2.0), metrics=metrics)

    def service_binds() -> float:
        value = metrics.registry.get_sample_value(
            "jitsi_auth_ldap_operations_total", {"operation": "service_bind", "result": "ok"}
        )
        return value or 0.0

    def idle() -> float:
        return metrics.registry.get_sample_value("jitsi_auth_ldap_pool_idle") or 0.0

    try:
        await directory.authenticate(login(TEACHER.uid, TEACHER.password))
        before = open_descriptors()
        # A class at once: several searches overlap, each on a connection of its own.
        await asyncio.gather(
            *(directory.authenticate(login(p.uid, p.password)) for p in SCHOOL.pupils[:8])
        )
        burst = open_descriptors()
        assert burst > before
        opened = service_binds()
        assert opened > 1
        # One login every 0.2 s keeps reusing the most recent connection, never
        # opening another, while the burst's others pass their idle time.
        for _ in range(16):
            await directory.authenticate(login(TEACHER.uid, TEACHER.password))
            await asyncio.sleep(0.2)
        assert service_binds() == opened
        assert idle() == 1
        assert open_descriptors() == before
        # Unused for longer than the idle time: the last one goes too.
        for _ in range(60):
            if idle() == 0:
                break
            await asyncio.sleep(0.1)
        assert idle() == 0
        assert open_descriptors() < before
        # And the pool opens a new one when it is wanted again.
        person = await directory.authenticate(login(TEACHER.uid, TEACHER.password))
        assert person.user_id == TEACHER.uid
        assert service_binds() == opened + 1
    finally:
        directory.close()


async def test_with_a_slow_directory_the_group_search_goes_beside_the_bind(slapd: Slapd) -> None:
    """Every answer 1 s late: the group search does not wait for the person's
    bind (two round trips a login, not three), and a refused bind still gives
    nothing but InvalidCredentials, with no search left running."""
    proxy = DelayingProxy(slapd.port).start()
    directory = Directory(ldap_settings(slapd, urls=(proxy.url,), group_mode="search", timeout=5.0))
    try:
        # The pool's connection opened while the directory is quick.
        await directory.authenticate(login(TEACHER.uid, TEACHER.password))
        assert proxy.most_held == 0
        proxy.delay = 1.0
        person = await directory.authenticate(login(TEACHER.uid, TEACHER.password))
        assert TEACHERS in person.groups
        # The bind's answer and the group search's answer were held back together.
        assert proxy.most_held == 2
        with pytest.raises(InvalidCredentials):
            await directory.authenticate(login(TEACHER.uid, "not the password"))
        assert directory._pool.in_use == 0
        # On time again: one request at a time, nothing started beside the bind.
        proxy.delay = 0.0
        proxy.most_held = 0
        assert PUPILS in (await directory.authenticate(login(PUPIL.uid, PUPIL.password))).groups
        assert proxy.most_held == 0
    finally:
        directory.close()
        proxy.stop()


class Usual:
    """A login's answer to "which entry may a bind start with": ``entry``, and how often
    it was asked."""

    def __init__(self, entry: str | None) -> None:
        self.entry = entry
        self.asked = 0

    async def __call__(self) -> str | None:
        self.asked += 1
        return self.entry


@pytest.fixture
async def slow_directory(slapd: Slapd) -> AsyncIterator[tuple[Directory, DelayingProxy]]:
    """A directory whose answers come 1 s late once the test says so; the teacher
    logged in once while it was quick (her entry's spelling known, a pooled
    connection open)."""
    proxy = DelayingProxy(slapd.port).start()
    directory = Directory(ldap_settings(slapd, urls=(proxy.url,), timeout=5.0))
    try:
        await directory.authenticate(login(TEACHER.uid, TEACHER.password))
        proxy.delay = 1.0
        proxy.connections = 0
        yield directory, proxy
        assert directory._pool.in_use == 0
    finally:
        directory.close()
        proxy.stop()


async def test_a_returning_person_binds_beside_a_slow_search(
    slow_directory: tuple[Directory, DelayingProxy],
) -> None:
    """Her usual entry named: its bind goes out with the search (one round trip a
    login, not two), and it is the only bind."""
    directory, proxy = slow_directory
    usual = Usual(canonical_dn(TEACHER.dn))
    person = await directory.authenticate(login(TEACHER.uid, TEACHER.password), usual=usual)
    assert person.user_id == TEACHER.uid
    assert TEACHERS in person.groups
    assert usual.asked == 1
    assert proxy.most_held == 2
    assert proxy.connections == 1
    # No usual entry: search, then bind, one after the other.
    proxy.most_held = 0
    person = await directory.authenticate(login(TEACHER.uid, TEACHER.password), usual=Usual(None))
    assert person.user_id == TEACHER.uid
    assert proxy.most_held == 1
    assert proxy.connections == 2


async def test_a_wrong_password_beside_a_slow_search_is_one_refused_bind(
    slow_directory: tuple[Directory, DelayingProxy],
) -> None:
    directory, proxy = slow_directory
    usual = Usual(canonical_dn(TEACHER.dn))
    with pytest.raises(InvalidCredentials):
        await directory.authenticate(login(TEACHER.uid, "not the password"), usual=usual)
    assert proxy.most_held == 2
    assert proxy.connections == 1


async def test_a_bind_to_another_entry_than_the_search_finds_never_counts(
    slow_directory: tuple[Directory, DelayingProxy],
) -> None:
    """The usual entry is the teacher's, the name a pupil's (a name given to someone
    else since, say): the teacher's password admits nobody under the pupil's name,
    and the pupil's own password admits the pupil, never the teacher."""
    directory, proxy = slow_directory
    teachers_entry = Usual(canonical_dn(TEACHER.dn))
    with pytest.raises(InvalidCredentials):
        await directory.authenticate(login(PUPIL.uid, TEACHER.password), usual=teachers_entry)
    person = await directory.authenticate(login(PUPIL.uid, PUPIL.password), usual=teachers_entry)
    assert person.user_id == PUPIL.uid
    assert TEACHERS not in person.groups
    assert teachers_entry.asked == 2
    # Each login: the discarded bind beside the search, then the pupil's own.
    assert proxy.connections == 4


async def test_no_bind_before_the_search_to_an_entry_this_process_never_bound_to(
    slow_directory: tuple[Directory, DelayingProxy],
) -> None:
    """Only the spelling a search gave is bound to: a canonical DN from elsewhere
    (another process's entry, through Redis) may not be how the directory spells it."""
    directory, proxy = slow_directory
    usual = Usual(canonical_dn(PUPIL.dn))
    person = await directory.authenticate(login(PUPIL.uid, PUPIL.password), usual=usual)
    assert person.user_id == PUPIL.uid
    assert usual.asked == 1
    assert proxy.most_held == 1
    # Now it bound to her once, the next login binds beside the search.
    proxy.most_held = 0
    await directory.authenticate(login(PUPIL.uid, PUPIL.password), usual=usual)
    assert proxy.most_held == 2


async def test_a_quick_directory_is_searched_then_bound_as_before(
    directory: Directory,
) -> None:
    await directory.authenticate(login(TEACHER.uid, TEACHER.password))
    usual = Usual(canonical_dn(TEACHER.dn))
    person = await directory.authenticate(login(TEACHER.uid, TEACHER.password), usual=usual)
    assert person.user_id == TEACHER.uid
    assert usual.asked == 0


async def test_a_slow_directory_never_admits_a_wrong_password_for_its_groups(
    slapd: Slapd,
) -> None:
    proxy = DelayingProxy(slapd.port).start()
    proxy.delay = 0.5
    directory = Directory(
        ldap_settings(slapd, urls=(proxy.url,), group_mode="search", timeout=5.0, pool_size=8)
    )
    try:
        people = [*SCHOOL.teachers, *SCHOOL.pupils]
        assert len(people) >= 4
        results = await asyncio.gather(
            *(
                directory.authenticate(login(p.uid, "wrong" if i % 2 else p.password))
                for i, p in enumerate(people)
            ),
            return_exceptions=True,
        )
        assert all(isinstance(r, InvalidCredentials) for r in results[1::2]), results
        assert [r.user_id for r in results[0::2] if isinstance(r, Person)] == [
            p.uid for p in people[0::2]
        ]
        assert directory._pool.in_use == 0
    finally:
        directory.close()
        proxy.stop()
