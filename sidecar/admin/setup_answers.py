"""The school's directory, as ``setup`` asks for it: each answer checked live.

Whatever setup cannot find on the Jitsi host (the LDAP URL, the service
account, where people are, the teachers' and pupils' groups) comes from an
option, from the configuration an earlier run wrote, or from a question;
each answer is tried against the directory before the next question, with
the same checks as ``check-config``, so that a typo is caught while the
admin still knows what they meant.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import bonsai

from sidecar.admin.directory_checks import base_exists, check_role_groups, check_user_filter
from sidecar.config.fields import Secret
from sidecar.config.settings import LdapSettings, RoleRule
from sidecar.ldap.directory import ldap_client

DEFAULT_FILTER = "(uid={username})"
# The first line of the config.toml setup writes: only that file's answers are
# taken up again (the package's example names a school that is not this one).
WRITTEN_BY_SETUP = (
    "# Written by jitsi-auth-sidecar setup (config.example.toml lists every other key)."
)


@dataclass(frozen=True)
class DirectoryAnswers:
    url: str = ""
    bind_dn: str = ""
    password: str = ""
    user_base: str = ""
    user_filter: str = DEFAULT_FILTER
    teachers: str = ""
    pupils: str = ""

    def ldap_settings(self) -> LdapSettings:
        return LdapSettings(
            urls=(self.url,),
            bind_dn=self.bind_dn or None,
            bind_password=Secret(self.password.encode()) if self.bind_dn else None,
            user_base=self.user_base or "dc=invalid",
            user_filter=self.user_filter,
            group_mode="search",
            group_base=self.group_base or "dc=invalid",
            timeout=5.0,
        )

    @property
    def group_base(self) -> str:
        """Where both groups are: their parents' common part."""
        parents = [_parent(dn) for dn in (self.teachers, self.pupils) if dn]
        if not parents:
            return ""
        common = list(reversed(_rdns(parents[0])))
        for parent in parents[1:]:
            other = list(reversed(_rdns(parent)))
            length = 0
            while length < min(len(common), len(other)) and (
                common[length].lower() == other[length].lower()
            ):
                length += 1
            common = common[:length]
        return ",".join(reversed(common))


def _rdns(dn: str) -> list[str]:
    if not dn:
        return []
    parsed = bonsai.LDAPDN(dn)
    return [str(parsed[index]) for index in range(len(parsed))]


def _parent(dn: str) -> str:
    try:
        return str(bonsai.LDAPDN(dn)[1:])
    except (bonsai.InvalidDN, TypeError, ValueError):
        return ""


def written_by_setup(config: Path) -> dict[str, Any]:
    """The configuration an earlier run wrote, as TOML reads it; empty if there is none."""
    try:
        text = config.read_text("utf-8")
        if not text.startswith(WRITTEN_BY_SETUP):
            return {}
        return tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def previous_answers(config: Path, password_file: Path) -> DirectoryAnswers:
    """What an earlier run wrote: the answers a second run starts from."""
    document = written_by_setup(config)
    if not document:
        return DirectoryAnswers()
    ldap = document.get("ldap", {})
    roles = {role.get("name"): role.get("groups", []) for role in document.get("roles", [])}
    try:
        password = password_file.read_text("utf-8")
    except OSError:
        password = ""
    urls = ldap.get("urls") or [""]
    return DirectoryAnswers(
        url=str(urls[0]),
        bind_dn=str(ldap.get("bind_dn", "")),
        password=password,
        user_base=str(ldap.get("user_base", "")),
        user_filter=str(ldap.get("user_filter", DEFAULT_FILTER)),
        teachers=str((roles.get("teacher") or [""])[0]),
        pupils=str((roles.get("pupil") or [""])[0]),
    )


# -- the live checks, one per answer ------------------------------------------------------


async def _connect(answers: DirectoryAnswers, *, as_service: bool) -> Any:
    settings = answers.ldap_settings()
    dn = answers.bind_dn if as_service and answers.bind_dn else None
    client = ldap_client(settings, answers.url, dn, answers.password if dn else None)
    async with asyncio.timeout(settings.timeout):
        return await client.connect(is_async=True, timeout=settings.timeout)


async def _problem_with_url(answers: DirectoryAnswers) -> str | None:
    if not answers.url.startswith(("ldap://", "ldaps://", "ldapi://")):
        return "an LDAP URL starts with ldap://, ldaps:// or ldapi://"
    try:
        conn = await _connect(answers, as_service=False)
    except (TimeoutError, bonsai.LDAPError, OSError, ValueError) as error:
        return f"no LDAP server answers at {answers.url}: {error or type(error).__name__}"
    conn.close()
    return None


async def _problem_with_account(answers: DirectoryAnswers) -> str | None:
    if not answers.bind_dn:
        return None  # anonymous reads
    try:
        conn = await _connect(answers, as_service=True)
    except bonsai.AuthenticationError:
        return f"the directory refused the password of {answers.bind_dn}"
    except (TimeoutError, bonsai.LDAPError, OSError, ValueError) as error:
        return f"binding as {answers.bind_dn} failed: {error or type(error).__name__}"
    conn.close()
    return None


async def _with_connection(answers: DirectoryAnswers, check: Callable[[Any], Any]) -> str | None:
    try:
        conn = await _connect(answers, as_service=True)
    except (TimeoutError, bonsai.LDAPError, OSError, ValueError) as error:
        return f"the directory did not answer: {error or type(error).__name__}"
    try:
        result: str | None = await check(conn)
        return result
    except (TimeoutError, bonsai.LDAPError) as error:
        return f"reading the directory failed: {error or type(error).__name__}"
    finally:
        conn.close()


async def _problem_with_base(answers: DirectoryAnswers) -> str | None:
    async def check(conn: Any) -> str | None:
        settings = answers.ldap_settings()
        if not await base_exists(settings, conn, answers.user_base):
            return f"{answers.user_base!r} does not exist (or the account may not read it)"
        finding = await check_user_filter(settings, conn)
        return None if finding.ok else finding.detail

    return await _with_connection(answers, check)


def _problem_with_group(role: str) -> Callable[[DirectoryAnswers], Any]:
    async def problem(answers: DirectoryAnswers) -> str | None:
        group = answers.teachers if role == "teacher" else answers.pupils
        try:
            rule = RoleRule(name=role, groups=frozenset({group}))
        except (ValueError, TypeError) as error:
            return f"{group!r} is not a DN: {error}"

        async def check(conn: Any) -> str | None:
            findings = await check_role_groups(answers.ldap_settings(), conn, [rule])
            return next((finding.detail for finding in findings if not finding.ok), None)

        try:
            bonsai.LDAPDN(group)
        except (bonsai.InvalidDN, TypeError, ValueError):
            return f"{group!r} is not a DN (like cn=teachers,ou=groups,dc=school,dc=example)"
        return await _with_connection(answers, check)

    return problem


@dataclass(frozen=True)
class Question:
    field: str
    prompt: str
    check: Callable[[DirectoryAnswers], Any]
    secret: bool = False
    optional: bool = False


QUESTIONS = (
    Question("url", "LDAP URL (ldaps://ldap.school.example)", _problem_with_url),
    Question(
        "bind_dn",
        "service account DN (empty: read anonymously)",
        lambda answers: _none(),
        optional=True,
    ),
    Question("password", "service account password", _problem_with_account, secret=True),
    Question("user_base", "where people are (ou=people,dc=school,dc=example)", _problem_with_base),
    Question("teachers", "the teachers' group DN", _problem_with_group("teacher")),
    Question("pupils", "the pupils' group DN", _problem_with_group("pupil")),
)


async def _none() -> None:
    return None


class NoAnswer(Exception):
    """An answer is missing or wrong, and there is nobody to ask."""


class Asker:
    """Questions on a terminal, or one answer a line from a pipe."""

    def __init__(self, stdin: TextIO, out: TextIO, *, interactive: bool) -> None:
        self.stdin, self.out, self.interactive = stdin, out, interactive

    def ask(self, question: Question, default: str) -> str:
        if not self.interactive:
            raise NoAnswer(f"{question.prompt}: not given (and --yes asks nothing)")
        shown = "" if question.secret or not default else f" [{default}]"
        prompt = f"{question.prompt}{shown}: "
        if question.secret and self.stdin.isatty():
            answer = getpass.getpass(prompt)
        else:
            print(prompt, end="", file=self.out, flush=True)
            line = self.stdin.readline()
            if not line:
                raise NoAnswer(f"{question.prompt}: no answer (end of input)")
            answer = line.rstrip("\r\n")
        return answer.strip() if not question.secret else answer or default


def gather(
    given: DirectoryAnswers, asker: Asker, *, attempts: int = 3, out: TextIO | None = None
) -> DirectoryAnswers:
    """Every answer, each checked against the directory; a wrong one is asked again."""
    out = out or sys.stdout
    answers = given
    for question in QUESTIONS:
        if question.field == "password" and not answers.bind_dn:
            continue
        for attempt in range(attempts):
            value = getattr(answers, question.field)
            if attempt > 0 or (not value and (not question.optional or asker.interactive)):
                value = asker.ask(question, value)
            answers = replace(answers, **{question.field: value})
            if not value and question.optional:
                break
            problem = asyncio.run(question.check(answers))
            if problem is None:
                if question.field != "bind_dn":
                    print(f"  ok      {question.prompt.split(' (')[0]}", file=out)
                break
            print(f"  FAILED  {problem}", file=out)
            if not asker.interactive:
                raise NoAnswer(problem)
        else:
            raise NoAnswer(f"{question.prompt}: no answer passed the check in {attempts} tries")
    return answers
