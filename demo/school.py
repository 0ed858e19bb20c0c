"""The demo school: who is in its directory, and the LDIF that puts them there.

Teachers and pupils are ``groupOfNames`` groups (so the ``memberof`` overlay
gives each person a ``memberOf``); one class is a ``posixGroup`` that names
its members by ``uid`` only. One person is in no group at all, and one only in
the ``posixGroup``. The sidecar reads the directory with a service account.

Passwords are stored as ``{SSHA512}`` hashes (slapd's ``pw-sha2`` module),
as a school's directory would hold them; the clear text lives here only so
that tests and the demo can log in.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

BASE_DN = "dc=school,dc=example"
MAIL_DOMAIN = "school.example"


@dataclass(frozen=True)
class Person:
    """Somebody who can log in, with the password they log in with."""

    uid: str
    display_name: str  # the entry's cn
    given_name: str
    surname: str
    mail: str
    password: str
    dn: str
    department: str = ""  # departmentNumber: a pupil's class
    photo_url: str = ""  # labeledURI: a picture


def make_person(uid: str, given_name: str, surname: str, password: str, **extra: str) -> Person:
    return Person(
        uid=uid,
        display_name=f"{given_name} {surname}",
        given_name=given_name,
        surname=surname,
        mail=f"{uid}@{MAIL_DOMAIN}",
        password=password,
        dn=f"uid={uid},ou=people,{BASE_DN}",
        **extra,
    )


def ssha512(password: str) -> str:
    """``{SSHA512}`` as slapd's ``pw-sha2`` module checks it: SHA-512 of password + salt."""
    salt = os.urandom(8)
    digest = hashlib.sha512(password.encode("utf-8") + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode("ascii")


def _is_safe_string(value: str) -> bool:
    # RFC 2849 SAFE-STRING; anything else (umlauts included) goes base64.
    if not value:
        return True
    if value[0] in " :<" or value.endswith(" "):
        return False
    return all(0 < ord(char) < 128 and char not in "\r\n" for char in value)


def _ldif_line(attribute: str, value: str) -> str:
    if _is_safe_string(value):
        return f"{attribute}: {value}"
    return f"{attribute}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"


def _ldif_entry(dn: str, attributes: Iterable[tuple[str, str]]) -> str:
    lines = [_ldif_line("dn", dn)]
    lines += [_ldif_line(attribute, value) for attribute, value in attributes]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class School:
    base_dn: str
    teachers: tuple[Person, ...]
    pupils: tuple[Person, ...]
    nobody: Person  # in no group: the sidecar must turn them away
    posix_only: Person  # only in the posixGroup, never in a groupOfNames
    service_password: str
    posix_group_members: tuple[str, ...]  # uids, as memberUid holds them
    posix_group_gid: int

    @property
    def people(self) -> tuple[Person, ...]:
        return (*self.teachers, *self.pupils, self.nobody, self.posix_only)

    @property
    def people_dn(self) -> str:
        return f"ou=people,{self.base_dn}"

    @property
    def groups_dn(self) -> str:
        return f"ou=groups,{self.base_dn}"

    @property
    def services_dn(self) -> str:
        return f"ou=services,{self.base_dn}"

    @property
    def service_dn(self) -> str:
        return f"cn=sidecar,{self.services_dn}"

    @property
    def teachers_group_dn(self) -> str:
        return f"cn=teachers,{self.groups_dn}"

    @property
    def pupils_group_dn(self) -> str:
        return f"cn=pupils,{self.groups_dn}"

    @property
    def posix_group_dn(self) -> str:
        return f"cn=class7b,{self.groups_dn}"

    def person(self, uid: str) -> Person:
        """The person with this ``uid``; :class:`KeyError` if there is none."""
        for person in self.people:
            if person.uid == uid:
                return person
        raise KeyError(uid)

    def seed_ldif(self) -> str:
        """The whole directory as LDIF, people before groups.

        Add it online, in this order: the ``memberof`` overlay fills a
        person's ``memberOf`` when a group naming them is added, and only if
        the person already exists.
        """
        return "\n".join(self._structure() + self._people() + self._groups())

    def _structure(self) -> list[str]:
        domain = self.base_dn.split(",")[0].removeprefix("dc=")
        entries = [
            _ldif_entry(
                self.base_dn,
                [
                    ("objectClass", "dcObject"),
                    ("objectClass", "organization"),
                    ("dc", domain),
                    ("o", "Demo School"),
                ],
            )
        ]
        for dn in (self.people_dn, self.groups_dn, self.services_dn):
            ou = dn.split(",")[0].removeprefix("ou=")
            entries.append(_ldif_entry(dn, [("objectClass", "organizationalUnit"), ("ou", ou)]))
        entries.append(
            _ldif_entry(
                self.service_dn,
                [
                    ("objectClass", "organizationalRole"),
                    ("objectClass", "simpleSecurityObject"),
                    ("cn", "sidecar"),
                    ("description", "jitsi-auth-sidecar looks people up with this account"),
                    ("userPassword", ssha512(self.service_password)),
                ],
            )
        )
        return entries

    def _people(self) -> list[str]:
        return [
            _ldif_entry(
                person.dn,
                [
                    ("objectClass", "inetOrgPerson"),
                    ("uid", person.uid),
                    ("cn", person.display_name),
                    ("givenName", person.given_name),
                    ("sn", person.surname),
                    ("displayName", person.display_name),
                    ("mail", person.mail),
                    ("userPassword", ssha512(person.password)),
                ]
                + ([("departmentNumber", person.department)] if person.department else [])
                + ([("labeledURI", person.photo_url)] if person.photo_url else []),
            )
            for person in self.people
        ]

    def _groups(self) -> list[str]:
        named = [
            (self.teachers_group_dn, "teachers", self.teachers),
            (self.pupils_group_dn, "pupils", self.pupils),
        ]
        entries = [
            _ldif_entry(
                dn,
                [("objectClass", "groupOfNames"), ("cn", cn)]
                + [("member", person.dn) for person in members],
            )
            for dn, cn, members in named
        ]
        entries.append(
            _ldif_entry(
                self.posix_group_dn,
                [
                    ("objectClass", "posixGroup"),
                    ("cn", "class7b"),
                    ("gidNumber", str(self.posix_group_gid)),
                    ("description", "Klasse 7b"),
                ]
                + [("memberUid", uid) for uid in self.posix_group_members],
            )
        )
        return entries


SCHOOL = School(
    base_dn=BASE_DN,
    teachers=(
        make_person(
            "anna.mueller",
            "Anna",
            "Müller",
            "Tafel-Kreide-7",
            photo_url="https://school.example/photos/anna.png",
        ),
        # Not https: never handed to Jitsi as an avatar.
        make_person(
            "tom.berger", "Tom", "Berger", "Zirkel-Lineal-4", photo_url="http://x.example/t.png"
        ),
    ),
    pupils=(
        make_person("max.schmidt", "Max", "Schmidt", "Heft-Bleistift-9", department="7b"),
        make_person("lea.wagner", "Lea", "Wagner", "Schüler-Ranzen-5", department="7b"),
        make_person("jonas.klein", "Jonas", "Klein", "Turnhalle-Ball-2", department="9a"),
    ),
    nobody=make_person("hans.hausmeister", "Hans", "Hausmeister", "Besen-Eimer-6"),
    posix_only=make_person("paul.posix", "Paul", "Posix", "Terminal-Shell-3"),
    service_password="Verzeichnis-Lesen-31",
    posix_group_members=("max.schmidt", "lea.wagner", "paul.posix"),
    posix_group_gid=10007,
)
