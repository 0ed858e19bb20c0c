"""The pieces of check-config's directory checks that read text: filters and the subschema."""

from __future__ import annotations

import pytest

from sidecar.admin.directory_checks import filter_attributes, has_members, schema_attribute_names

# attributeTypes values as slapd's cn=Subschema hands them out.
CN = (
    "( 2.5.4.3 NAME ( 'cn' 'commonName' ) DESC 'RFC4519: common name(s) for which the "
    "entity is known by' SUP name )"
)
UID = (
    "( 0.9.2342.19200300.100.1.1 NAME ( 'uid' 'userid' ) DESC 'RFC4519: user identifier' "
    "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{256} )"
)
MAIL = (
    "( 0.9.2342.19200300.100.1.3 NAME 'mail' DESC 'RFC1274: RFC822 Mailbox' "
    "EQUALITY caseIgnoreIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )"
)


def test_schema_names_include_every_alias_and_the_oid() -> None:
    names = schema_attribute_names([CN, UID, MAIL])
    assert {"cn", "commonname", "uid", "userid", "mail", "2.5.4.3"} <= names
    assert "uidd" not in names
    assert "desc" not in names


@pytest.mark.parametrize(
    ("filter_exp", "attributes"),
    [
        ("(uid={username})", ["uid"]),
        (
            "(&(objectClass=inetOrgPerson)(|(uid={username})(mail={username})))",
            ["objectClass", "uid", "mail"],
        ),
        ("(&(uidd={username})(!(pwdAccountLockedTime=*)))", ["uidd", "pwdAccountLockedTime"]),
        ("(sAMAccountName:caseExactMatch:={username})", ["sAMAccountName"]),
        ("(cn;lang-de>={username})", ["cn"]),
        ("(2.5.4.3~={username})", ["2.5.4.3"]),
        ("( uid = {username} )", ["uid"]),
    ],
)
def test_filter_attributes(filter_exp: str, attributes: list[str]) -> None:
    assert filter_attributes(filter_exp) == attributes


class Entry(dict[str, list[str]]):
    """What a bonsai entry offers here: keys, and their values."""


@pytest.mark.parametrize(
    ("entry", "members"),
    [
        (Entry(member=["uid=a,ou=people"]), True),
        (Entry(memberUid=["a"]), True),
        (Entry({"member;range=0-1499": ["uid=a,ou=people"]}), True),
        (Entry(uniqueMember=[]), False),
        (Entry(description=["Klasse 7b"]), False),
    ],
)
def test_has_members(entry: Entry, members: bool) -> None:
    assert has_members(entry) is members
