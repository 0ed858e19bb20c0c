"""Distinguished names in one comparable spelling."""

from __future__ import annotations

import re

import bonsai

_ESCAPE = re.compile(rb"\\([0-9a-fA-F]{2}|.)", re.DOTALL)


def _unescape_value(value: str) -> str:
    """Undo RFC 4514 escaping (``\\,`` and ``\\C3\\BC`` alike) to the plain value."""

    def replace(match: re.Match[bytes]) -> bytes:
        escaped = match.group(1)
        return bytes.fromhex(escaped.decode()) if len(escaped) == 2 else escaped

    return _ESCAPE.sub(replace, value.encode("utf-8")).decode("utf-8", errors="strict")


def canonical_dn(dn: str) -> str:
    """Lowercase attribute names and values, one escaping, no spaces around separators.

    Directory servers return ``memberOf`` in their own spelling, while an admin
    types group DNs by hand; comparing this form makes ``CN=Teachers, ou=groups``
    and ``cn=teachers,ou=groups`` the same group. Raises ValueError when ``dn``
    is not a DN.
    """
    try:
        rdns = bonsai.LDAPDN(dn).rdns
        parts = [
            "+".join(
                f"{attribute.strip().lower()}="
                + bonsai.escape_attribute_value(_unescape_value(value.strip()).lower())
                for attribute, value in sorted(rdn)
            )
            for rdn in rdns
        ]
    except (bonsai.InvalidDN, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"not a DN: {dn!r}") from error
    if not parts:
        raise ValueError("empty DN")
    return ",".join(parts)
