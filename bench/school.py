"""A generated school large enough to load slapd: thousands of teachers and pupils.

It keeps the demo school's shape (``demo/school.py``): teachers and pupils in
``groupOfNames`` groups (so ``memberOf`` is filled in), one class as a
``posixGroup``, one person in no group, one only in the ``posixGroup``, and a
service account. Passwords are hashed as the demo hashes them, ``{SSHA512}``
through slapd's ``pw-sha2`` module: one salted SHA-512 each, so two thousand
take a few milliseconds to make and need no cache.
"""

from __future__ import annotations

import secrets

from demo.school import BASE_DN, SCHOOL, Person, School, make_person

TEACHER_SHARE = 10  # one teacher for every ten people
POSIX_CLASS_SIZE = 30
POSIX_GROUP_GID = 10007
CLASSES = ("5a", "5b", "6a", "6b", "7a", "7b", "8a", "8b", "9a", "9b", "10a", "10b")


def _person(uid: str, given_name: str, surname: str, department: str = "") -> Person:
    # A fresh password for every run: nothing to guess, nothing worth keeping.
    password = secrets.token_urlsafe(12)
    return make_person(uid, given_name, surname, password, department=department)


def generated_school(size: int) -> School:
    """``size`` people who can log in with a role (a tenth of them teachers), plus the two
    the demo school also has: one in no group, one only in the ``posixGroup``."""
    if size < 2:
        raise ValueError("a school needs at least one teacher and one pupil")
    teacher_count = max(1, size // TEACHER_SHARE)
    teachers = tuple(
        _person(f"lehrer.{number:05d}", "Lehrkraft", f"Nummer {number}")
        for number in range(teacher_count)
    )
    pupils = tuple(
        _person(
            f"schueler.{number:05d}",
            "Kind",
            f"Nummer {number}",
            department=CLASSES[number % len(CLASSES)],
        )
        for number in range(size - teacher_count)
    )
    posix_only = _person("paul.posix", "Paul", "Posix")
    return School(
        base_dn=BASE_DN,
        teachers=teachers,
        pupils=pupils,
        nobody=_person("hans.hausmeister", "Hans", "Hausmeister"),
        posix_only=posix_only,
        # demo.run.write_demo_config hands the sidecar the demo school's service password.
        service_password=SCHOOL.service_password,
        posix_group_members=(
            *(pupil.uid for pupil in pupils[:POSIX_CLASS_SIZE]),
            posix_only.uid,
        ),
        posix_group_gid=POSIX_GROUP_GID,
    )


def people_with_a_role(school: School) -> tuple[Person, ...]:
    """Everybody the sidecar lets into a room: the load is made of them."""
    return (*school.teachers, *school.pupils)
