"""Who somebody is, as the directory describes them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    user_id: str  # the directory's spelling of the login name
    display_name: str
    email: str
    groups: frozenset[str]  # canonical group DNs
    context_group: str = ""  # ldap.group_attribute (the class, say): Jitsi's context.group
    avatar: str = ""  # ldap.avatar_attribute, an https URL
