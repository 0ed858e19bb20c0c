"""Debian's prosody with Jitsi's plugins, configured as a Jitsi host, in a directory of its own.

The configuration is the shape jitsi-meet-prosody generates for a meet domain
(``/etc/prosody/conf.d/<domain>.cfg.lua``) with jitsi-meet-tokens' changes:
token authentication on the meet VirtualHost, the conference, internal and
lobby MUC components, the focus user on ``auth.<domain>``. Only what a test
run needs differs: loopback ports, a data directory and log of its own, no
TLS certificates (nothing leaves loopback), no s2s.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from demo.ports import free_port
from demo.processes import terminate

PROSODY = "/usr/bin/prosody"
PROSODYCTL = "/usr/bin/prosodyctl"
PROSODY_USER = "prosody"
POLL_INTERVAL = 0.05

FOCUS_USER = "focus"

# Lua libraries Jitsi's plugins load (token/util.lib.lua, luajwtjitsi.lib.lua,
# mod_muc_size.lua, ...) and the Debian packages that hold them.
LUA_PACKAGES = {
    "cjson.safe": "lua-cjson",
    "basexx": "lua-basexx",
    "openssl.pkey": "lua-luaossl",
    "ssl": "lua-sec",
    "inspect": "lua-inspect",
    "lunbound": "lua-unbound",
}


def lua_string(value: str) -> str:
    """A Lua string literal (double-quoted, escaped) for the configuration file."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def lua_list(values: tuple[str, ...]) -> str:
    return "{ " + "; ".join(lua_string(value) for value in values) + " }"


@dataclass(frozen=True)
class TokenSettings:
    """How the meet VirtualHost checks tokens: a shared secret, or RS* keys fetched by kid."""

    app_id: str
    algorithm: Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512"] = "HS256"
    app_secret: str = ""
    asap_key_server: str = ""


@dataclass(frozen=True)
class JitsiHost:
    """One meet domain as Jitsi's packages configure it."""

    domain: str
    plugin_paths: tuple[Path, ...]
    token: TokenSettings
    # Each component's modules, as listed by the site's configuration.
    host_modules: tuple[str, ...]
    conference_modules: tuple[str, ...]
    room_size_token: bool = False

    @property
    def conference(self) -> str:
        return f"conference.{self.domain}"

    @property
    def lobby(self) -> str:
        return f"lobby.{self.domain}"

    @property
    def auth(self) -> str:
        return f"auth.{self.domain}"

    @property
    def internal(self) -> str:
        return f"internal.auth.{self.domain}"

    @property
    def focus_jid(self) -> str:
        return f"{FOCUS_USER}@{self.auth}"


GLOBAL = """\
-- Written by realjitsi for one test run; nothing here is /etc/prosody's.
pidfile = {pidfile}
data_path = {data_path}
certificates = {certs}
plugin_paths = {plugin_paths}
log = {{ debug = {log_file} }}
admins = {{ }}
modules_enabled = {{
    "roster"; "saslauth"; "disco"; "ping"; "time"; "version"; "uptime";
}}
modules_disabled = {{ "s2s" }}
c2s_ports = {{ {c2s_port} }}
c2s_interfaces = {{ "127.0.0.1" }}
http_ports = {{ {http_port} }}
http_interfaces = {{ "127.0.0.1" }}
https_ports = {{ }}
component_ports = {{ }}
s2s_ports = {{ }}
-- As Jitsi's packages: the meet domain is the mapper's base.
muc_mapper_domain_base = {domain}
cross_domain_bosh = false
consider_bosh_secure = true
consider_websocket_secure = true
unlimited_jids = {{ {focus_jid} }}
smacks_max_unacked_stanzas = 5
smacks_hibernation_time = 60
smacks_max_old_sessions = 1
"""

VIRTUAL_HOST = """\
VirtualHost {domain}
    authentication = "token"
    app_id = {app_id}
{token_keys}    signature_algorithm = {algorithm}
    allow_empty_token = false
    enable_roomsize_token_verification = {room_size_token}
    modules_enabled = {modules}
    c2s_require_encryption = false
    lobby_muc = {lobby}
    main_muc = {conference}

Component {conference} "muc"
    restrict_room_creation = true
    storage = "memory"
    modules_enabled = {conference_modules}
    admins = {{ {focus_jid} }}
    muc_password_whitelist = {{ {focus_jid} }}
    muc_room_locking = false
    muc_room_default_public_jids = true

-- internal muc component
Component {internal} "muc"
    storage = "memory"
    modules_enabled = {{ "muc_hide_all"; "ping"; }}
    admins = {{ {focus_jid} }}
    muc_room_locking = false
    muc_room_default_public_jids = true

VirtualHost {auth}
    modules_enabled = {{ "limits_exception"; "smacks"; }}
    authentication = "internal_hashed"
    smacks_hibernation_time = 15

Component {focus_component} "client_proxy"
    target_address = {focus_jid}

Component {lobby} "muc"
    storage = "memory"
    restrict_room_creation = true
    muc_room_locking = false
    muc_room_default_public_jids = true
    modules_enabled = {{ "muc_hide_all"; "muc_rate_limit"; }}
"""


def configuration(host: JitsiHost, workdir: Path, *, http_port: int, c2s_port: int) -> str:
    """The whole prosody.cfg.lua for ``host``, everything under ``workdir``."""
    token = host.token
    if token.asap_key_server:
        token_keys = f"    asap_key_server = {lua_string(token.asap_key_server)}\n"
    else:
        token_keys = f"    app_secret = {lua_string(token.app_secret)}\n"
    return (
        GLOBAL.format(
            pidfile=lua_string(str(workdir / "prosody.pid")),
            data_path=lua_string(str(workdir / "data")),
            certs=lua_string(str(workdir / "certs")),
            plugin_paths=lua_list(tuple(str(path) for path in host.plugin_paths)),
            log_file=lua_string(str(workdir / "prosody.log")),
            c2s_port=c2s_port,
            http_port=http_port,
            domain=lua_string(host.domain),
            focus_jid=lua_string(host.focus_jid),
        )
        + "\n"
        + VIRTUAL_HOST.format(
            domain=lua_string(host.domain),
            app_id=lua_string(token.app_id),
            token_keys=token_keys,
            algorithm=lua_string(token.algorithm),
            room_size_token="true" if host.room_size_token else "false",
            modules=lua_list(host.host_modules),
            lobby=lua_string(host.lobby),
            conference=lua_string(host.conference),
            conference_modules=lua_list(host.conference_modules),
            focus_jid=lua_string(host.focus_jid),
            internal=lua_string(host.internal),
            auth=lua_string(host.auth),
            focus_component=lua_string(f"focus.{host.domain}"),
        )
    )


# Debian installs these pure-Lua libraries for Lua 5.1 only (/usr/share/lua/5.1),
# while bookworm's prosody runs on Lua 5.4: they are put on its LUA_PATH.
LUA_51_ONLY = ("basexx", "inspect")
LUA_51_DIR = Path("/usr/share/lua/5.1")


def lua_bridge(directory: Path) -> dict[str, str]:
    """Environment for Lua 5.4 that also finds the 5.1-only pure-Lua libraries.

    ``directory`` gets a link to each such file; nothing outside it changes.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name in LUA_51_ONLY:
        source = LUA_51_DIR / f"{name}.lua"
        link = directory / f"{name}.lua"
        if source.exists() and not link.exists():
            link.symlink_to(source)
    # ";;" is Lua's default path, after ours.
    return {**os.environ, "LUA_PATH_5_4": f"{directory}/?.lua;;"}


def missing_lua_libraries(environment: dict[str, str]) -> list[str]:
    """The Debian packages whose Lua library prosody's Lua cannot load in ``environment``."""
    lua = shutil.which("lua5.4")
    if lua is None:
        return sorted(set(LUA_PACKAGES.values()))
    missing = []
    for library, package in LUA_PACKAGES.items():
        probe = subprocess.run(
            [lua, "-e", f"require {lua_string(library)}"],
            capture_output=True,
            check=False,
            env=environment,
        )
        if probe.returncode != 0:
            missing.append(package)
    return missing


@dataclass
class Prosody:
    """prosody in the foreground with a configuration file of its own; stopped by ``stop``."""

    host: JitsiHost
    workdir: Path
    http_port: int = field(default_factory=free_port)
    c2s_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.workdir / "prosody.cfg.lua"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prosody.log"

    def write_config(self) -> None:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        (self.workdir / "certs").mkdir(exist_ok=True)
        self.config.write_text(
            configuration(
                self.host, self.workdir, http_port=self.http_port, c2s_port=self.c2s_port
            ),
            "utf-8",
        )

    @property
    def environment(self) -> dict[str, str]:
        return lua_bridge(self.workdir / "lua")

    def hand_over(self) -> None:
        """As root, prosody and prosodyctl switch to the prosody user: it must own the files."""
        if os.geteuid() != 0:
            return
        owner = pwd.getpwnam(PROSODY_USER)
        for path in [self.workdir, *self.workdir.rglob("*")]:
            os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)

    def register(self, user: str, host: str, password: str) -> None:
        """An account in Prosody's own store (the focus user), as prosodyctl makes it."""
        self.hand_over()
        result = subprocess.run(
            [PROSODYCTL, "--config", str(self.config), "register", user, host, password],
            capture_output=True,
            text=True,
            check=False,
            env=self.environment,
        )
        if result.returncode != 0:
            raise RuntimeError(f"prosodyctl register failed:\n{result.stdout}{result.stderr}")

    def start(self, timeout: float = 30.0) -> None:
        self.write_config()
        self.hand_over()
        console = (self.workdir / "console.log").open("ab")
        self.process = subprocess.Popen(
            [PROSODY, "--config", str(self.config), "-F"],
            stdout=console,
            stderr=console,
            stdin=subprocess.DEVNULL,
            env=self.environment,
            # prosodyctl switches to the prosody user by itself, prosody does not.
            user=PROSODY_USER if os.geteuid() == 0 else None,
            group=PROSODY_USER if os.geteuid() == 0 else None,
        )
        console.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prosody exited:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(POLL_INTERVAL)
        self.stop()
        raise RuntimeError("prosody did not start listening")

    def stop(self) -> None:
        process, self.process = self.process, None
        terminate(process)

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text("utf-8", errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        console = self.workdir / "console.log"
        text = console.read_text("utf-8", errors="replace") if console.exists() else ""
        return "\n".join((text + self.log()).splitlines()[-lines:])

    def __enter__(self) -> Prosody:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
