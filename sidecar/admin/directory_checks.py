"""Whether the directory holds what the configuration names (``check-config``).

The connection checks (:mod:`sidecar.admin.live_checks`) see that a server answers
and the bases exist; these see the admin's likely typos, which a server
answers without any error: a ``[[roles]]`` group DN that names no entry, or a
group nobody is in (every teacher then gets the 403 page), and an
``ldap.user_filter`` that finds nobody. slapd answers a filter on an
attribute its schema does not know with no entries (the filter is
"Undefined"), other servers with an error: either way the subschema's
``attributeTypes`` tell which attribute is unknown, and the finding names it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import bonsai

from sidecar.config.settings import LdapSettings, RoleRule

# Where a group lists its members: groupOfNames, groupOfUniqueNames, posixGroup.
MEMBER_ATTRIBUTES = ("member", "uniqueMember", "memberUid")
# An attribute in a filter: "(name=", "(name>=", "(name~=", "(name:dn:=" ...
_FILTER_ATTRIBUTE = re.compile(
    r"\(\s*([A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)(?:;[^=~<>:()]*)?\s*(?:[~<>]?=|:)"
)
# NAME 'cn' or NAME ( 'cn' 'commonName' ) in an attributeTypes value (RFC 4512).
_SCHEMA_NAMES = re.compile(r"\bNAME\s+(?:'([^']+)'|\(([^)]*)\))")
_ROOT_DSE = ""


@dataclass(frozen=True)
class Finding:
    """One problem, as one line: what is wrong and how to fix it; or what was fine."""

    name: str
    ok: bool
    detail: str


def filter_attributes(filter_exp: str) -> list[str]:
    """The attribute names a filter compares, in order, each once."""
    return list(dict.fromkeys(match.group(1) for match in _FILTER_ATTRIBUTE.finditer(filter_exp)))


def schema_attribute_names(attribute_types: Iterable[str]) -> frozenset[str]:
    """Every name (lower case) the subschema's attributeTypes values give, OIDs included."""
    names: set[str] = set()
    for definition in attribute_types:
        oid = definition.strip().lstrip("(").split(None, 1)
        if oid:
            names.add(oid[0].lower())
        match = _SCHEMA_NAMES.search(definition)
        if match is None:
            continue
        if match.group(1) is not None:
            names.add(match.group(1).lower())
        else:
            names.update(name.lower() for name in re.findall(r"'([^']+)'", match.group(2)))
    return frozenset(names)


async def _search(
    settings: LdapSettings,
    conn: Any,
    base: str,
    scope: bonsai.LDAPSearchScope,
    filter_exp: str,
    attributes: list[str],
    sizelimit: int = 0,
) -> list[Any]:
    """A search; a base that does not exist gives no entries (as bonsai answers it, too)."""
    try:
        async with asyncio.timeout(settings.timeout):
            entries: list[Any] = await conn.search(
                base, scope, filter_exp, attributes, timeout=settings.timeout, sizelimit=sizelimit
            )
    except bonsai.NoSuchObjectError:
        return []
    return entries


async def known_attributes(settings: LdapSettings, conn: Any) -> frozenset[str] | None:
    """The attribute names the directory's schema knows; None when it cannot be read."""
    try:
        root = await _search(
            settings,
            conn,
            _ROOT_DSE,
            bonsai.LDAPSearchScope.BASE,
            "(objectClass=*)",
            ["subschemaSubentry"],
        )
        subschema = _first(root, "subschemaSubentry") or "cn=Subschema"
        entries = await _search(
            settings,
            conn,
            subschema,
            bonsai.LDAPSearchScope.BASE,
            "(objectClass=subschema)",
            ["attributeTypes"],
        )
    except (bonsai.LDAPError, TimeoutError):
        return None
    types = _values(entries, "attributeTypes")
    return schema_attribute_names(types) if types else None


def _first(entries: list[Any], attribute: str) -> str | None:
    values = _values(entries, attribute)
    return str(values[0]) if values else None


def _values(entries: list[Any], attribute: str) -> list[str]:
    if not entries:
        return []
    try:
        return [str(value) for value in entries[0][attribute]]
    except KeyError:
        return []


def has_members(entry: Any) -> bool:
    """Whether a group entry names a member. Active Directory hands a large group's
    members out in ranges, as ``member;range=0-1499``: options do not count."""
    wanted = {attribute.lower() for attribute in MEMBER_ATTRIBUTES}
    return any(str(key).split(";", 1)[0].lower() in wanted and bool(entry[key]) for key in entry)


async def base_exists(settings: LdapSettings, conn: Any, base: str) -> bool:
    entries = await _search(
        settings, conn, base, bonsai.LDAPSearchScope.BASE, "(objectClass=*)", ["1.1"]
    )
    return bool(entries)


async def check_user_filter(settings: LdapSettings, conn: Any) -> Finding:
    """``ldap.user_filter``, for any name, finds at least one person under ``ldap.user_base``."""
    name = "ldap.user_filter"
    anyone = settings.user_filter.format(username="*")
    # First the schema: an unknown attribute in one branch of an "|" still finds
    # people through the others, and never matches anybody itself.
    known = await known_attributes(settings, conn)
    if known is not None:
        unknown = [
            attribute
            for attribute in filter_attributes(settings.user_filter)
            if attribute.lower() not in known
        ]
        if unknown:
            return Finding(
                name,
                False,
                f"the directory's schema has no attribute {unknown[0]!r}: "
                f"fix {unknown[0]!r} in {settings.user_filter!r}",
            )
    try:
        # One entry is enough: a whole school's would take long to list.
        entries = await _search(
            settings,
            conn,
            settings.user_base,
            bonsai.LDAPSearchScope.SUBTREE,
            anyone,
            ["1.1"],
            sizelimit=1,
        )
        failure = None
    except bonsai.SizeLimitError:
        # More than one (or than the server's own limit, as Active Directory's 1000).
        return Finding(name, True, f"{anyone} finds people under {settings.user_base}")
    except bonsai.LDAPError as error:
        entries, failure = [], str(error)
    if entries:
        return Finding(name, True, f"{anyone} finds people under {settings.user_base}")
    if failure is not None:
        return Finding(name, False, f"the directory refused {anyone}: {failure}: fix the filter")
    if not await base_exists(settings, conn, settings.user_base):
        return Finding(
            name, False, f"ldap.user_base {settings.user_base!r} does not exist: fix its DN"
        )
    return Finding(
        name,
        False,
        f"{anyone} finds nobody under {settings.user_base}: "
        "fix the filter (or ldap.user_base) so that it finds the people who log in",
    )


async def check_role_groups(
    settings: LdapSettings, conn: Any, roles: Iterable[RoleRule]
) -> list[Finding]:
    """Each ``[[roles]]`` group exists and has members: one failure per group that does not."""
    reader = "the service account" if settings.bind_dn is not None else "an anonymous reader"
    findings: list[Finding] = []
    checked = 0
    for rule in roles:
        name = f"[[roles]] {rule.name}"
        for group in sorted(rule.groups):
            checked += 1
            entries = await _search(
                settings,
                conn,
                group,
                bonsai.LDAPSearchScope.BASE,
                "(objectClass=*)",
                list(MEMBER_ATTRIBUTES),
            )
            if not entries:
                findings.append(
                    Finding(
                        name,
                        False,
                        f"the group {group!r} does not exist (or {reader} may not read it): "
                        "fix the DN in its groups",
                    )
                )
            elif not has_members(entries[0]):
                findings.append(
                    Finding(
                        name,
                        False,
                        f"the group {group!r} has no members {reader} can read: add its "
                        "people in the directory, or name the group they are in",
                    )
                )
    if not findings:
        findings.append(Finding("[[roles]]", True, f"all {checked} groups exist and have members"))
    return findings
