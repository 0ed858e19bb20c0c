"""The demo slapd is a real directory: binds, memberOf, posixGroup, LDAPS, ACLs, restarts."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import bonsai
import pytest

from demo.school import SCHOOL, Person
from demo.slapd import Slapd, write_tls_files

TIMEOUT = 5.0
TEACHER = SCHOOL.teachers[0]


def client(url: str, person: Person | None = None, *, password: str | None = None) -> Any:
    ldap = bonsai.LDAPClient(url)
    if person is not None:
        ldap.set_credentials("SIMPLE", user=person.dn, password=password or person.password)
    return ldap


def service_client(slapd: Slapd) -> Any:
    ldap = bonsai.LDAPClient(slapd.ldap_url)
    ldap.set_credentials("SIMPLE", user=SCHOOL.service_dn, password=SCHOOL.service_password)
    return ldap


async def read_entry(slapd: Slapd, dn: str, attributes: list[str]) -> Any:
    async with service_client(slapd).connect(is_async=True, timeout=TIMEOUT) as conn:
        entries = await conn.search(
            dn, bonsai.LDAPSearchScope.BASE, attrlist=attributes, timeout=TIMEOUT
        )
    assert len(entries) == 1
    return entries[0]


async def whoami(ldap: Any) -> str:
    async with ldap.connect(is_async=True, timeout=TIMEOUT) as conn:
        name: str = await conn.whoami(timeout=TIMEOUT)
        return name


async def test_teacher_binds_with_the_right_password(slapd: Slapd) -> None:
    assert await whoami(client(slapd.ldap_url, TEACHER)) == f"dn:{TEACHER.dn}"


async def test_non_ascii_password_binds(slapd: Slapd) -> None:
    (pupil,) = [person for person in SCHOOL.pupils if not person.password.isascii()]
    assert await whoami(client(slapd.ldap_url, pupil)) == f"dn:{pupil.dn}"


async def test_wrong_password_is_refused(slapd: Slapd) -> None:
    with pytest.raises(bonsai.AuthenticationError):
        await whoami(client(slapd.ldap_url, TEACHER, password="Tafel-Kreide-8"))


async def test_group_of_names_shows_up_as_member_of(slapd: Slapd) -> None:
    teacher = await read_entry(slapd, TEACHER.dn, ["memberOf"])
    assert list(teacher["memberOf"]) == [SCHOOL.teachers_group_dn]
    pupil = await read_entry(slapd, SCHOOL.pupils[0].dn, ["memberOf"])
    assert list(pupil["memberOf"]) == [SCHOOL.pupils_group_dn]
    for person in (SCHOOL.nobody, SCHOOL.posix_only):
        assert "memberOf" not in await read_entry(slapd, person.dn, ["memberOf"])


async def test_posix_group_names_members_by_uid(slapd: Slapd) -> None:
    group = await read_entry(slapd, SCHOOL.posix_group_dn, ["memberUid", "gidNumber"])
    assert set(group["memberUid"]) == set(SCHOOL.posix_group_members)
    assert SCHOOL.posix_only.uid in group["memberUid"]


async def test_nobody_reads_password_hashes(slapd: Slapd) -> None:
    teacher = await read_entry(slapd, TEACHER.dn, ["userPassword", "mail"])
    assert list(teacher["mail"]) == [TEACHER.mail]
    assert "userPassword" not in teacher
    async with client(slapd.ldap_url, TEACHER).connect(is_async=True, timeout=TIMEOUT) as conn:
        (own,) = await conn.search(
            TEACHER.dn,
            bonsai.LDAPSearchScope.BASE,
            attrlist=["userPassword", "uid"],
            timeout=TIMEOUT,
        )
    assert list(own["uid"]) == [TEACHER.uid]
    assert "userPassword" not in own


async def test_anonymous_cannot_read_people(slapd: Slapd) -> None:
    # slapd answers noSuchObject rather than disclose the base; bonsai makes that [].
    people = (SCHOOL.people_dn, bonsai.LDAPSearchScope.SUBTREE, "(uid=*)")
    async with client(slapd.ldap_url).connect(is_async=True, timeout=TIMEOUT) as conn:
        assert await conn.whoami(timeout=TIMEOUT) == "anonymous"
        assert await conn.search(*people, timeout=TIMEOUT) == []
        assert (
            await conn.search(
                SCHOOL.base_dn, bonsai.LDAPSearchScope.SUBTREE, "(uid=*)", timeout=TIMEOUT
            )
            == []
        )
    async with service_client(slapd).connect(is_async=True, timeout=TIMEOUT) as conn:
        assert len(await conn.search(*people, timeout=TIMEOUT)) == len(SCHOOL.people)


async def test_ldaps_with_the_generated_ca(slapd: Slapd) -> None:
    ldap = client(slapd.ldaps_url, TEACHER)
    ldap.set_ca_cert(str(slapd.ca_file))
    ldap.set_cert_policy("demand")
    assert await whoami(ldap) == f"dn:{TEACHER.dn}"


async def test_ldaps_without_the_ca_is_refused(slapd: Slapd, tmp_path: Path) -> None:
    other_ca = tmp_path / "ca.pem"
    write_tls_files(
        ca_file=other_ca, cert_file=tmp_path / "server.pem", key_file=tmp_path / "server.key"
    )
    ldap = client(slapd.ldaps_url, TEACHER)
    ldap.set_ca_cert(str(other_ca))
    ldap.set_cert_policy("demand")
    with pytest.raises(bonsai.ConnectionError):
        await whoami(ldap)


async def test_stop_and_start_keep_the_data_and_the_port(tmp_path: Path) -> None:
    with Slapd(tmp_path / "slapd") as own:
        url = own.ldap_url
        own.stop()
        assert not own.running
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", own.port), timeout=TIMEOUT).close()
        own.stop()  # a second stop is harmless
        own.start()
        assert own.ldap_url == url
        assert await whoami(client(own.ldap_url, TEACHER)) == f"dn:{TEACHER.dn}"
        teacher = await read_entry(own, TEACHER.dn, ["memberOf"])
        assert list(teacher["memberOf"]) == [SCHOOL.teachers_group_dn]
    assert not own.running
