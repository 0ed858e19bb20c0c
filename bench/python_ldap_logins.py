"""Baseline: the LDAP steps of one sidecar login, with python-ldap, in one thread.

The steps follow the bench configuration's [ldap] as ``sidecar/ldap/directory.py``
does: find the person (a search through the service account, or anonymously;
or the DN from ``user_dn_template``), bind as them on a new connection, read
their groups (from ``memberOf``, or a search under ``group_base`` through the
service account when there is one), close. The service account's connection
stays open, as the sidecar's pool keeps it. One login after the other, for a
fixed time: the classic synchronous way to check a password.

Run with Debian's python3-ldap: ``/usr/bin/python3 -m bench.python_ldap_logins
JOB RESULT`` (standard library and ``ldap`` only; see bench/driver_io.py).
"""

from __future__ import annotations

import importlib
import resource
import sys
import time
from collections import Counter
from typing import Any

from bench.driver_io import DriverJob, JobPerson, LoginSteps, read_job, write_result

# Debian's python3-ldap ships no type information: its modules are Any here.
ldap: Any = importlib.import_module("ldap")
ldap_dn: Any = importlib.import_module("ldap.dn")
ldap_filter: Any = importlib.import_module("ldap.filter")

OPERATION_TIMEOUT = 10.0


class LoginFailed(Exception):
    """The directory did not give the answer a good login gets."""


def _connection(url: str) -> Any:
    connection = ldap.initialize(url)
    connection.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    connection.set_option(ldap.OPT_NETWORK_TIMEOUT, OPERATION_TIMEOUT)
    connection.set_option(ldap.OPT_TIMEOUT, OPERATION_TIMEOUT)
    connection.set_option(ldap.OPT_REFERRALS, 0)
    return connection


def _entries(found: list[tuple[str | None, Any]]) -> list[tuple[str, Any]]:
    """Search results without the referrals python-ldap lists beside entries."""
    return [(dn, attributes) for dn, attributes in found if dn is not None]


def _log_in(url: str, steps: LoginSteps, service: Any, person: JobPerson) -> None:
    escaped = ldap_filter.escape_filter_chars(person.uid)
    user = _connection(url)
    try:
        if steps.user_dn_template:
            dn = steps.user_dn_template.format(username=ldap_dn.escape_dn_chars(person.uid))
            user.simple_bind_s(dn, person.password)
            found = _entries(
                user.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", steps.attributes)
            )
        else:
            found = _entries(
                service.search_s(
                    steps.user_base,
                    ldap.SCOPE_SUBTREE,
                    steps.user_filter.format(username=escaped),
                    steps.attributes,
                )
            )
            if len(found) != 1:
                raise LoginFailed(f"search found {len(found)} entries")
            dn = found[0][0]
            user.simple_bind_s(dn, person.password)
        if len(found) != 1:
            raise LoginFailed(f"found {len(found)} entries")
        if steps.group_mode == "memberof":
            groups = found[0][1].get("memberOf", [])
        else:
            reader = service if steps.bind_dn else user
            groups = _entries(
                reader.search_s(
                    steps.group_base,
                    ldap.SCOPE_SUBTREE,
                    steps.group_filter.format(
                        user_dn=ldap_filter.escape_filter_chars(dn), username=escaped
                    ),
                    ["1.1"],
                )
            )
        if not groups:
            raise LoginFailed("no groups")
    finally:
        user.unbind_s()


def measure(job: DriverJob) -> dict[str, Any]:
    steps = job.login_steps
    if steps is None:
        raise SystemExit("the job names no login steps")
    service = _connection(job.ldap_url)
    if steps.bind_dn:
        service.simple_bind_s(steps.bind_dn, steps.bind_password)
    latency_us: Counter[int] = Counter()
    failures = 0
    examples: list[str] = []
    people = job.people
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    deadline = started + job.seconds
    index = 0
    while time.monotonic() < deadline:
        person = people[index % len(people)]
        index += 1
        begun = time.perf_counter()
        try:
            _log_in(job.ldap_url, steps, service, person)
        except (ldap.LDAPError, LoginFailed) as error:
            failures += 1
            if len(examples) < 3:
                examples.append(f"{type(error).__name__}: {error}"[:120])
            continue
        latency_us[int((time.perf_counter() - begun) * 1e6)] += 1
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    service.unbind_s()
    return {
        "operations": sum(latency_us.values()),
        "seconds": elapsed,
        "latency_us": latency_us,
        "failures": failures,
        "cpu_seconds": (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime),
        "examples": examples,
    }


def main() -> int:
    job_path, result_path = sys.argv[1:3]
    write_result(result_path, measure(read_job(job_path)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
