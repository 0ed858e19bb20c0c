"""``python -m realjitsi --plugins DIR [--contrib DIR]``: the checks against a real Prosody.

Prints one table (check, expected, got, ok); exits 1 when any check failed,
2 when the run could not start (no plugins, Prosody missing or refusing its
configuration).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from demo.ports import free_port
from demo.slapd import Slapd
from realjitsi import checks
from realjitsi.prosody import (
    FOCUS_USER,
    JitsiHost,
    Prosody,
    TokenSettings,
    lua_bridge,
    missing_lua_libraries,
)
from realjitsi.site import SchoolSite, SidecarOptions
from realjitsi.table import Row, exit_code, render

DOMAIN = "meet.school.example"
APP_ID = "school-meet"
KEY_ID = "school-meet-2026"

# The meet VirtualHost's modules: Jitsi's Debian configuration, the room-size
# API, and the identity every presence gets from the token.
HOST_MODULES = (
    "bosh",
    "websocket",
    "smacks",
    "ping",
    "conference_duration",
    "muc_lobby_rooms",
    "muc_size",
    "presence_identity",
)
# The conference component's: Jitsi's Debian configuration with
# jitsi-meet-tokens' token_verification, the token's affiliation and lobby
# bypass, and the locked display name.
CONFERENCE_MODULES = (
    "muc_hide_all",
    "muc_meeting_id",
    "muc_domain_mapper",
    "muc_rate_limit",
    "muc_password_whitelist",
    "token_verification",
    "token_lobby_bypass",
    "muc_displayname",
)


def plugin_paths(plugins: Path, contrib: Path | None) -> tuple[Path, ...]:
    """Jitsi's folder first, then each jitsi-contrib module's own folder."""
    paths = [plugins]
    if contrib is not None:
        paths += sorted(path for path in contrib.iterdir() if any(path.glob("mod_*.lua")))
    return tuple(paths)


def affiliation_module(paths: tuple[Path, ...]) -> str:
    """jitsi-meet ships token_affiliation since 2026; before, jitsi-contrib did (now
    token_affiliation_legacy there)."""
    for name in ("token_affiliation", "token_affiliation_legacy"):
        if any((path / f"mod_{name}.lua").exists() for path in paths):
            return name
    return "token_affiliation"


def missing_modules(paths: tuple[Path, ...], modules: tuple[str, ...]) -> list[str]:
    return [
        name
        for name in modules
        if not any((path / f"mod_{name}.lua").exists() for path in paths)
        and not Path(f"/usr/lib/prosody/modules/mod_{name}.lua").exists()
    ]


def jitsi_host(paths: tuple[Path, ...], token: TokenSettings) -> JitsiHost:
    return JitsiHost(
        domain=DOMAIN,
        plugin_paths=paths,
        token=token,
        host_modules=HOST_MODULES,
        conference_modules=(*CONFERENCE_MODULES, affiliation_module(paths)),
    )


Scenario = Callable[[checks.Run], Awaitable[None]]


@dataclass(frozen=True)
class Phase:
    """One Prosody and one sidecar configuration, and the checks run against them."""

    name: str
    scenarios: tuple[Scenario, ...]
    wait_for_teacher: bool = False
    rs256: bool = False


PHASES = (
    Phase(
        "HS256",
        (
            checks.room_spellings,
            checks.another_room,
            checks.lobby,
            checks.locked_name,
            checks.tenant_room,
            checks.guest,
        ),
    ),
    Phase("waiting for the teacher", (checks.waiting_page,), wait_for_teacher=True),
    Phase("RS256", (checks.rs256,), rs256=True),
)


async def run_scenarios(run: checks.Run, scenarios: tuple[Scenario, ...]) -> None:
    try:
        for scenario in scenarios:
            await scenario(run)
    finally:
        await run.close()


def run_phase(workdir: Path, slapd: Slapd, paths: tuple[Path, ...], phase: Phase) -> list[Row]:
    port, prosody_port = free_port(), free_port()
    options = SidecarOptions(
        wait_for_teacher=phase.wait_for_teacher,
        # As docs/jitsi.md has it: Prosody's HTTP port on loopback.
        room_size_url=f"http://127.0.0.1:{prosody_port}/room-size",
        rs256_key_id=KEY_ID if phase.rs256 else "",
    )
    site = SchoolSite(
        workdir / "site",
        ldap_url=slapd.ldap_url,
        prosody_port=prosody_port,
        options=options,
        port=port,
    )
    if phase.rs256:
        # Prosody fetches the sidecar's public key through nginx, as on a Jitsi host.
        token = TokenSettings(
            app_id=APP_ID,
            algorithm="RS256",
            asap_key_server=f"http://127.0.0.1:{port}/auth/asap",
        )
    else:
        token = TokenSettings(app_id=APP_ID, app_secret=site.app_secret)
    prosody_dir = workdir / "prosody"
    prosody_dir.mkdir(parents=True)
    prosody_dir.chmod(0o755)
    prosody = Prosody(jitsi_host(paths, token), prosody_dir, http_port=prosody_port)
    focus_password = secrets.token_urlsafe(16)
    run = checks.Run(site, prosody.host, focus_password)
    try:
        prosody.write_config()
        prosody.register(FOCUS_USER, prosody.host.auth, focus_password)
        with prosody:
            site.start()
            try:
                asyncio.run(run_scenarios(run, phase.scenarios))
            finally:
                site.stop()
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"{phase.name}: {error}\n{prosody.log_tail()}", file=sys.stderr)
        run.add(f"{phase.name}: Prosody, nginx and the sidecar start", "started", str(error))
    return run.rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realjitsi", description=__doc__)
    parser.add_argument("--plugins", type=Path, required=True, help="jitsi-meet's prosody-plugins")
    parser.add_argument("--contrib", type=Path, help="jitsi-contrib's prosody-plugins")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs)")
    arguments = parser.parse_args(argv)
    plugins: Path = arguments.plugins
    contrib: Path | None = arguments.contrib
    if not (plugins / "mod_auth_token.lua").exists():
        print(f"{plugins}: no mod_auth_token.lua, not Jitsi's prosody-plugins", file=sys.stderr)
        return 2
    if contrib is not None and not contrib.is_dir():
        print(f"{contrib}: not a folder", file=sys.stderr)
        return 2
    paths = plugin_paths(plugins.resolve(), contrib.resolve() if contrib else None)
    workdir = Path(tempfile.mkdtemp(prefix="realjitsi-"))
    workdir.chmod(0o755)
    missing = missing_lua_libraries(lua_bridge(workdir / "lua-probe"))
    if missing:
        print(f"Lua libraries missing: {' '.join(missing)} (apt-get install them)", file=sys.stderr)
        return 2
    absent = missing_modules(
        paths, (*HOST_MODULES, *jitsi_host(paths, TokenSettings(APP_ID)).conference_modules)
    )
    for name in absent:
        print(
            f"note: no mod_{name}.lua in the plugin folders: its checks will fail", file=sys.stderr
        )
    rows: list[Row] = []
    try:
        with Slapd(workdir / "slapd") as slapd:
            for number, phase in enumerate(PHASES):
                rows += run_phase(workdir / f"phase{number}", slapd, paths, phase)
    finally:
        print(render(rows))
        if arguments.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return exit_code(rows)


if __name__ == "__main__":
    sys.exit(main())
