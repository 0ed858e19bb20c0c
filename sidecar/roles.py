"""Groups to a role: ordered rules, the first rule that matches wins."""

from __future__ import annotations

from collections.abc import Iterable

from sidecar.config.settings import RoleRule
from sidecar.people import Person


class RoleRules:
    def __init__(self, rules: Iterable[RoleRule]) -> None:
        self._rules = tuple(rules)

    def rule_named(self, name: str) -> RoleRule | None:
        for rule in self._rules:
            if rule.name == name:
                return rule
        return None

    def role_for(self, person: Person) -> RoleRule | None:
        """The first rule sharing a group with ``person``; None means no access."""
        for rule in self._rules:
            if rule.groups & person.groups:
                return rule
        return None
