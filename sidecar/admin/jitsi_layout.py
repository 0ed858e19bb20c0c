"""Where a Jitsi installation keeps the files ``setup`` changes.

Two shapes: Jitsi's Debian packages (``jitsi-meet``) and docker-jitsi-meet.
Every path is found under ``root``, a folder that stands for ``/`` (``/``
itself on a real host; a copy of the tree in the tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sidecar.admin.jitsi_edits import CONTRIB_MODULES, env_values

SIDECAR_ETC = "etc/jitsi-auth-sidecar"
INCLUDE = "etc/nginx/snippets/jitsi-auth-sidecar.conf"
# At http level: the connections the include's checks go through.
UPSTREAM = "etc/nginx/conf.d/jitsi-auth-sidecar-upstream.conf"
STATE = "var/lib/jitsi-auth-sidecar/setup"
DEBIAN_PLUGINS = "usr/share/jitsi-meet/prosody-plugins"


class NotFound(LookupError):
    """What was looked for and where: one line for the admin."""


def under(root: Path, path: str | Path) -> Path:
    """``path`` (absolute on the target system) inside ``root``."""
    return root / str(path).lstrip("/")


@dataclass(frozen=True)
class DebianJitsi:
    """Jitsi's Debian packages: one meet domain with its four files."""

    root: Path
    domain: str

    @property
    def meet_config(self) -> Path:
        return under(self.root, f"etc/jitsi/meet/{self.domain}-config.js")

    @property
    def prosody_host(self) -> Path:
        return under(self.root, f"etc/prosody/conf.avail/{self.domain}.cfg.lua")

    @property
    def nginx_site(self) -> Path:
        return under(self.root, f"etc/nginx/sites-available/{self.domain}.conf")

    @property
    def jicofo_conf(self) -> Path:
        return under(self.root, "etc/jitsi/jicofo/jicofo.conf")

    @property
    def include(self) -> Path:
        return under(self.root, INCLUDE)

    @property
    def upstream(self) -> Path:
        return under(self.root, UPSTREAM)

    def missing_plugins(self) -> list[str]:
        """jitsi-contrib's modules that are not where Prosody loads Jitsi's from."""
        folder = under(self.root, DEBIAN_PLUGINS)
        return [name for name in CONTRIB_MODULES if not (folder / f"mod_{name}.lua").exists()]


def find_debian(root: Path, domain: str | None) -> DebianJitsi:
    """The meet domain of ``/etc/jitsi/meet/<domain>-config.js``; ``domain`` picks one."""
    folder = under(root, "etc/jitsi/meet")
    found = sorted(path.name.removesuffix("-config.js") for path in folder.glob("*-config.js"))
    if domain is None:
        if not found:
            raise NotFound(
                "no Jitsi Meet site found (no /etc/jitsi/meet/<domain>-config.js): install "
                "jitsi-meet first, or use --docker for docker-jitsi-meet"
            )
        if len(found) > 1:
            raise NotFound(
                f"several Jitsi Meet sites ({', '.join(found)}): choose one with --domain"
            )
        domain = found[0]
    jitsi = DebianJitsi(root, domain)
    for path, what in (
        (jitsi.prosody_host, "Prosody's host file"),
        (jitsi.nginx_site, "the nginx site"),
        (jitsi.jicofo_conf, "jicofo's configuration"),
    ):
        if not path.is_file():
            raise NotFound(f"{what} for {domain} is not at /{path.relative_to(root)}")
    return jitsi


@dataclass(frozen=True)
class DockerJitsi:
    """docker-jitsi-meet: its folder (with .env) and the configuration folder it names."""

    root: Path
    folder: Path  # the checkout with docker-compose.yml and .env

    @property
    def env_file(self) -> Path:
        return self.folder / ".env"

    def _values(self) -> dict[str, str]:
        return env_values(self.env_file.read_text("utf-8"))

    @property
    def config_folder(self) -> Path:
        """CONFIG in .env (docker-jitsi-meet's default: ~/.jitsi-meet-cfg)."""
        configured = self._values().get("CONFIG", "~/.jitsi-meet-cfg")
        return under(self.root, os.path.expanduser(configured))

    @property
    def nginx_custom(self) -> Path:
        """The web container includes /config/nginx-custom/*.conf before its locations."""
        return self.config_folder / "web" / "nginx-custom" / "jitsi-auth-sidecar.conf"

    @property
    def domain(self) -> str:
        return self._values().get("XMPP_DOMAIN", "meet.jitsi")

    @property
    def public_url(self) -> str:
        return self._values().get("PUBLIC_URL", "").rstrip("/")

    def missing_plugins(self) -> list[str]:
        folder = self.config_folder / "prosody" / "prosody-plugins-custom"
        return [name for name in CONTRIB_MODULES if not (folder / f"mod_{name}.lua").exists()]


def find_docker(root: Path, folder: Path) -> DockerJitsi:
    docker = DockerJitsi(root, under(root, folder) if folder.is_absolute() else folder)
    if not docker.env_file.is_file():
        raise NotFound(
            f"no .env in {folder}: the docker-jitsi-meet folder has one (cp env.example .env)"
        )
    if not docker.public_url:
        raise NotFound(f"PUBLIC_URL is not set in {docker.env_file}: set the site's address there")
    return docker
