"""The configuration as the loader resolved it, as TOML-like text (``check-config``).

Every section and key is shown, the ones the file leaves out included, so an
admin sees what the daemon runs with rather than what the file says. A key
that took its default ends in ``# default``, one an environment variable set
ends in ``# from $JITSI_AUTH_SIDECAR_...``. Secrets are never shown: each is
named by where it came from (its file or its systemd credential), and a
secret whose source cannot be told is ``********``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Mapping
from typing import Any

from sidecar.config.fields import (
    ConfigError,
    Secret,
    Sources,
    key_of,
    option_of,
    raw_of,
    secret_source,
)
from sidecar.config.settings import Settings, TcpAddress, UnixAddress

MASKED = "********"
NOT_SET = "(not set)"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def render_settings(
    settings: Settings, document: Mapping[str, object], environ: Mapping[str, str]
) -> list[str]:
    """The lines of the effective configuration; ``document`` is the file as TOML read it."""
    sources = Sources.of(environ)
    lines: list[str] = []
    for item in dataclasses.fields(settings):
        value = getattr(settings, item.name)
        raw = document.get(item.name)
        if isinstance(value, tuple):
            # [[roles]], [[apps]], [[previous_keys]]: never from the environment.
            raw_tables = raw if isinstance(raw, list) else []
            if not value:
                lines += [f"# [[{item.name}]]: none", ""]
            for index, entry in enumerate(value):
                table = raw_tables[index] if index < len(raw_tables) else {}
                lines += [f"[[{item.name}]]", *_table(entry, _mapping(table), None, sources), ""]
        else:
            lines += [f"[{item.name}]", *_table(value, _mapping(raw), item.name, sources), ""]
    return lines


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _table(
    instance: Any, table: Mapping[str, object], section: str | None, sources: Sources
) -> list[str]:
    """One table's ``key = value`` lines; ``section`` is None for an array's table."""
    hints = typing.get_type_hints(type(instance))
    lines: list[str] = []
    for item in dataclasses.fields(instance):
        key = key_of(item)
        raw = raw_of(section, key, table, sources)
        value = getattr(instance, item.name)
        credential = option_of(item).credential
        if credential is not None:
            shown = _secret(key, value, raw.value, credential, sources)
        else:
            shown = _value(item.name, value, hints[item.name], raw.value)
        if raw.variable is not None:
            note = f"  # from ${raw.variable}"
        elif key in table or shown.startswith("<secret from "):
            # A secret from a systemd credential already says where it came from.
            note = ""
        else:
            note = "  # default"
        lines.append(f"{key} = {shown}{note}")
    return lines


def _secret(key: str, value: object, raw: object, credential: str, sources: Sources) -> str:
    """Where a secret came from, the way the loader looked for it; never the secret."""
    if value is None or value == ():
        return NOT_SET
    try:
        source = secret_source(key, raw, credential, sources)
    except ConfigError:
        source = None
    if source is None:
        return MASKED
    keys = f", {len(value)} keys" if isinstance(value, tuple) and len(value) > 1 else ""
    return f"<secret from {source.describe()}{keys}>"


def _value(name: str, value: object, hint: object, raw: object) -> str:
    if value is None:
        return NOT_SET
    if isinstance(value, bytes):
        # A public key read from a file: the file is what the admin wrote.
        return f"<read from {raw}>" if isinstance(raw, str) else MASKED
    if isinstance(value, frozenset):
        return _list(sorted(value))
    if isinstance(value, tuple):
        if _is_table_of_pairs(hint):
            return _inline_table(value)
        return _list(value)
    if name == "socket_mode" and isinstance(value, int):
        # Written as octal text in the file; 432 would mean nothing to anybody.
        return _string(f"{value:04o}")
    return _scalar(value)


def _scalar(value: object) -> str:
    if isinstance(value, Secret):
        return MASKED  # a secret in a field without a credential name: still never shown
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, UnixAddress):
        return _string(f"unix:{value.path}")
    if isinstance(value, TcpAddress):
        host = f"[{value.host}]" if ":" in value.host else value.host
        return _string(f"{host}:{value.port}")
    # Text, a path, a choice: shown as the string the file would hold.
    return _string(str(value))


def _string(text: str) -> str:
    # A JSON string is a TOML basic string: the same quotes and escapes.
    return json.dumps(text, ensure_ascii=False)


def _list(items: typing.Iterable[object]) -> str:
    return "[" + ", ".join(_scalar(item) for item in items) + "]"


def _is_table_of_pairs(hint: object) -> bool:
    """``tuple[tuple[str, X], ...]``: a TOML table kept as sorted pairs (``features``)."""
    if typing.get_origin(hint) is not tuple:
        return False
    arguments = typing.get_args(hint)
    return bool(arguments) and typing.get_origin(arguments[0]) is tuple


def _inline_table(pairs: tuple[Any, ...]) -> str:
    if not pairs:
        return "{}"
    items = [
        f"{name if _BARE_KEY.fullmatch(name) else _string(name)} = {_scalar(value)}"
        for name, value in pairs
    ]
    return "{ " + ", ".join(items) + " }"
