"""The sidecar's own files that ``setup`` writes: config.toml and the secrets."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from sidecar.admin.setup_answers import WRITTEN_BY_SETUP, DirectoryAnswers

# As long as the keys the daemon accepts (at least 32 bytes).
SECRET_BYTES = 48


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class SiteAnswers:
    public_url: str  # the meet site's origin
    subject: str  # the XMPP domain
    app_id: str


def config_toml(site: SiteAnswers, directory: DirectoryAnswers) -> bytes:
    """The smallest configuration for the shipped unit: the secrets come in as credentials."""
    lines = [
        WRITTEN_BY_SETUP,
        "",
        "[server]",
        f"public_url = {_toml(site.public_url)}",
        "",
        "[jitsi]",
        f"app_id = {_toml(site.app_id)}",
        f"subject = {_toml(site.subject)}",
        "",
        "[ldap]",
        f"urls = [{_toml(directory.url)}]",
    ]
    if directory.bind_dn:
        lines.append(f"bind_dn = {_toml(directory.bind_dn)}")
    lines += [
        f"user_base = {_toml(directory.user_base)}",
        f"user_filter = {_toml(directory.user_filter)}",
        'group_mode = "search"',
        f"group_base = {_toml(directory.group_base)}",
        "",
        "[guests]",
        'state_file = "/var/lib/jitsi-auth-sidecar/guest_links.json"',
        "",
        "[[roles]]",
        'name = "teacher"',
        f"groups = [{_toml(directory.teachers)}]",
        "moderator = true",
        "",
        "[[roles]]",
        'name = "pupil"',
        f"groups = [{_toml(directory.pupils)}]",
        "",
    ]
    return "\n".join(lines).encode()


def secret_file(path: Path) -> bytes:
    """The secret already there (never replaced: Prosody and the sessions depend on
    it), or a new one on a line of its own, as the package's are."""
    try:
        current = path.read_bytes()
    except FileNotFoundError:
        current = b""
    if current.strip():
        return current
    return secrets.token_urlsafe(SECRET_BYTES).encode() + b"\n"


def secret_text(data: bytes) -> str:
    """The secret as the daemon reads its file (without the line's end)."""
    return data.rstrip(b"\r\n").decode("utf-8")
