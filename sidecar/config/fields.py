"""How a settings dataclass is read: each field declares its key, default and
range right where it is defined (:func:`option`), and one loader
(:func:`read_table`) reads any such dataclass from a TOML table plus its
environment overrides.

Values from the TOML file must have the TOML type of their field (a number
is not a string, a list is not a comma-separated string); values from the
environment are text and are parsed by the field's type. Every problem is a
:class:`ConfigError` that names the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

ENV_PREFIX = "JITSI_AUTH_SIDECAR_"


class ConfigError(ValueError):
    """A setting is missing or wrong; ``key`` is its dotted name."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class Secret:
    """Bytes that never show up in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Option:
    """How one field is read. ``parse`` turns the checked plain value into the field's."""

    key: str | None = None  # the TOML key, when it is not the field's name
    minimum: float | None = None
    maximum: float | None = None
    nonempty: bool = False
    credential: str | None = None  # a secret: the systemd credential read when the key is absent
    parse: Callable[[str, Any], Any] | None = None  # (dotted key, plain value) -> value
    read_as: Any = None  # the plain value's type, when parse makes another (default: str)


_OPTION = "jitsi-auth-sidecar option"


def option(default: Any = dataclasses.MISSING, **how: Any) -> Any:
    """A dataclass field with its default and how it is read (see :class:`Option`)."""
    return field(default=default, metadata={_OPTION: Option(**how)})


def option_of(item: dataclasses.Field[Any]) -> Option:
    found = item.metadata.get(_OPTION)
    return found if isinstance(found, Option) else Option()


def key_of(item: dataclasses.Field[Any]) -> str:
    return option_of(item).key or item.name


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section}_{key}".upper()


T = TypeVar("T")


@dataclass(frozen=True)
class Sources:
    """Where values come from besides the file."""

    environ: Mapping[str, str]
    credentials_dir: Path | None

    @classmethod
    def of(cls, environ: Mapping[str, str]) -> Sources:
        """The environment, and the systemd credentials directory it names."""
        credentials = environ.get("CREDENTIALS_DIRECTORY")
        return cls(environ, Path(credentials) if credentials else None)


@dataclass(frozen=True)
class Raw:
    """A key's value before it is checked: from the environment, else from the file.

    ``value`` is None when neither sets the key (its default, or a secret's credential).
    """

    value: object
    variable: str | None  # the environment variable that set it, if one did


def raw_of(
    section: str | None, key: str, table: Mapping[str, object], sources: Sources | None
) -> Raw:
    """The one place where the environment wins over the file.

    ``section`` is None for a table of an array (``[[roles]]``): those are never
    read from the environment.
    """
    if section is not None and sources is not None:
        variable = env_name(section, key)
        from_env = sources.environ.get(variable)
        if from_env is not None:
            return Raw(from_env, variable)
    return Raw(table.get(key), None)


@dataclass(frozen=True)
class SecretSource:
    """Where a secret is read: the file the key names, else a systemd credential."""

    path: Path
    credential: str | None  # the credential's name when it came from there

    def describe(self) -> str:
        return f"credential {self.credential}" if self.credential else str(self.path)


def secret_source(
    key: str, raw: object, credential: str, sources: Sources | None
) -> SecretSource | None:
    """The file ``raw`` names, else the systemd credential; None when neither is there.

    Secrets are never values in the file or the environment, only file names.
    """
    if raw is None or raw == "":
        directory = sources.credentials_dir if sources else None
        if directory is None or not (directory / credential).exists():
            return None
        return SecretSource(directory / credential, credential)
    if isinstance(raw, str):
        return SecretSource(Path(raw), None)
    raise ConfigError(key, "must be a file path")


def read_table(
    cls: type[T], section: str, table: Mapping[str, object], sources: Sources | None
) -> T:
    """An instance of the dataclass ``cls`` from ``table`` (and, with ``sources``, the
    environment and systemd credentials); unknown keys and wrong values are refused."""
    hints = typing.get_type_hints(cls)
    known = {key_of(item) for item in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{section}.{unknown[0]}", "unknown key")
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        how = option_of(item)
        key = key_of(item)
        dotted = f"{section}.{key}"
        raw = raw_of(section, key, table, sources)
        if how.credential is not None:
            value = _secret(dotted, raw.value, how.credential, sources)
            if value is None and item.default is dataclasses.MISSING:
                raise ConfigError(dotted, "missing (a file holding the secret)")
        elif raw.value is None:
            if item.default is dataclasses.MISSING:
                raise ConfigError(dotted, "missing")
            continue
        else:
            plain_type = hints[item.name] if how.parse is None else (how.read_as or str)
            value = _plain(dotted, raw.value, plain_type, how, from_env=raw.variable is not None)
        if how.parse is not None:
            value = how.parse(dotted, value)
        values[item.name] = value
    try:
        return cls(**values)
    except ConfigError as error:
        # Checks across fields name their key within the table; make it dotted.
        if "." in error.key or error.key == section:
            raise
        raise ConfigError(f"{section}.{error.key}", error.problem) from None


# -- plain values, by the field's type ------------------------------------------------


def _plain(key: str, raw: object, hint: Any, how: Option, *, from_env: bool) -> Any:
    """``raw`` as the field's type: str, bool, int, float, a Literal or a tuple of them
    (``object``: as it stands, for ``parse`` to judge)."""
    target = _without_none(hint)
    if target is object:
        return raw
    if typing.get_origin(target) is tuple:
        (item_type, _) = typing.get_args(target)
        if from_env:
            assert isinstance(raw, str)
            items: list[object] = [part.strip() for part in raw.split(",") if part.strip()]
        elif isinstance(raw, list):
            items = list(raw)
        else:
            raise ConfigError(key, "must be a list")
        if how.nonempty and not items:
            raise ConfigError(key, "must not be empty")
        return tuple(_scalar(key, item, item_type, how, from_env=from_env) for item in items)
    return _scalar(key, raw, target, how, from_env=from_env)


def _without_none(hint: Any) -> Any:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        remaining = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(remaining) == 1:
            return remaining[0]
    return hint


def _scalar(key: str, raw: object, target: Any, how: Option, *, from_env: bool) -> Any:
    if target is bool:
        return _boolean(key, raw, from_env=from_env)
    if target is int:
        return _in_range(key, _integer(key, raw, from_env=from_env), how)
    if target is float:
        return _in_range(key, _number(key, raw, from_env=from_env), how)
    text = _text(key, raw, how)
    if typing.get_origin(target) is Literal:
        allowed = typing.get_args(target)
        if text not in allowed:
            raise ConfigError(key, f"must be one of {', '.join(allowed)}")
    return text


def _text(key: str, raw: object, how: Option) -> str:
    if not isinstance(raw, str):
        raise ConfigError(key, "must be a string")
    if any(ord(ch) < 0x20 for ch in raw):
        raise ConfigError(key, "contains a control character")
    if how.nonempty and not raw.strip():
        raise ConfigError(key, "must not be empty")
    return raw


def _boolean(key: str, raw: object, *, from_env: bool) -> bool:
    # Strict on purpose: "yes", "1" or "on" are typos as often as intent.
    if isinstance(raw, bool):
        return raw
    if from_env and raw in ("true", "false"):
        return raw == "true"
    raise ConfigError(key, "must be true or false")


def _integer(key: str, raw: object, *, from_env: bool) -> int:
    if from_env and isinstance(raw, str):
        try:
            return int(raw.strip(), 10)
        except ValueError:
            raise ConfigError(key, "must be a whole number") from None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ConfigError(key, "must be a whole number")
    return raw


def _number(key: str, raw: object, *, from_env: bool) -> float:
    if from_env and isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            raise ConfigError(key, "must be a number") from None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConfigError(key, "must be a number")
    return float(raw)


def _in_range(key: str, value: float, how: Option) -> Any:
    low = how.minimum if how.minimum is not None else value
    high = how.maximum if how.maximum is not None else value
    if not low <= value <= high:
        shown = [int(bound) if float(bound).is_integer() else bound for bound in (low, high)]
        raise ConfigError(key, f"must be between {shown[0]} and {shown[1]}")
    return value


# -- secrets ---------------------------------------------------------------------------


def _secret(key: str, raw: object, credential: str, sources: Sources | None) -> Secret | None:
    """The secret read from :func:`secret_source`; None when there is none."""
    source = secret_source(key, raw, credential, sources)
    if source is None:
        return None
    path = source.path
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(key, f"cannot read {path}: {error.strerror}") from None
    # Editors add a final newline; it is never part of the secret.
    data = data.rstrip(b"\r\n")
    if not data:
        raise ConfigError(key, f"{path} is empty")
    return Secret(data)


def known_env_names(sections: Mapping[str, type[Any]]) -> set[str]:
    """Every ``JITSI_AUTH_SIDECAR_*`` variable the sections read."""
    return {
        env_name(section, key_of(item))
        for section, cls in sections.items()
        for item in dataclasses.fields(cls)
    }
