"""What ``setup`` changes in Jitsi's own files, as text in and text out.

Each function takes a file's text as it is (with or without the blocks of an
earlier run) and returns it with this run's blocks: the blocks of before are
taken out first, so the result depends only on the admin's own text and the
answers. What goes where follows docs/jitsi.md ("What Jitsi needs on its
side"): Prosody checks the tokens (token authentication with the sidecar's
app id and secret, the modules listed there), jicofo leaves ownership to the
token, and nginx asks the sidecar through the include.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sidecar.admin.marked_blocks import as_lines, block, without_blocks

# docs/jitsi.md, "What Jitsi needs on its side", point 2.
MAIN_HOST_MODULES = ("presence_identity", "muc_size")
CONFERENCE_MODULES = (
    "token_verification",
    "token_affiliation",
    "token_lobby_bypass",
    "muc_displayname",
)
# Not shipped with Jitsi's packages: copied from jitsi-contrib's prosody-plugins.
CONTRIB_MODULES = ("token_affiliation", "token_lobby_bypass")
LUA_COMMENT = "--"
HASH_COMMENT = "#"
NGINX_INCLUDE = "include snippets/jitsi-auth-sidecar.conf;"
# The http-level upstream (nginx/jitsi-auth-sidecar-upstream.conf) the include's checks go through.
NGINX_UPSTREAM = "jitsi_auth_sidecar"

_SECTION = re.compile(r"""^\s*(VirtualHost|Component)\s+"([^"]+)"(?:\s+"([^"]*)")?""")
_MODULES_START = re.compile(r"^\s*modules_enabled\s*=\s*\{")
_LUA_STRING = re.compile(r"""^\s*["']([\w.-]+)["']\s*[;,]?\s*(?:--.*)?$""")


class CannotEdit(ValueError):
    """The file is not shaped as expected: one line saying what to do by hand."""


@dataclass(frozen=True)
class TokenSettings:
    app_id: str
    app_secret: str


def _lua_string(value: str) -> str:
    if any(ch in value for ch in '"\\\n\r'):
        raise CannotEdit(f"{value!r} cannot be written into Prosody's configuration")
    return f'"{value}"'


# -- Prosody ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Section:
    start: int  # the VirtualHost/Component line
    end: int  # the next section's line, or the end of the file


def _sections(lines: Sequence[str]) -> dict[str, _Section]:
    starts = [
        (index, match[2]) for index, line in enumerate(lines) if (match := _SECTION.match(line))
    ]
    bounds = [index for index, _ in starts] + [len(lines)]
    return {name: _Section(start, bounds[n + 1]) for n, (start, name) in enumerate(starts)}


def _enabled_modules(lines: Sequence[str], section: _Section) -> tuple[int, set[str]] | None:
    """The line of the modules_enabled list's closing brace, and the modules it names."""
    for index in range(section.start, section.end):
        if _MODULES_START.match(lines[index]):
            names: set[str] = set()
            rest = lines[index].split("{", 1)[1]
            if "}" in rest:
                raise CannotEdit("modules_enabled on one line: spread it over several lines")
            for close in range(index + 1, section.end):
                if lines[close].strip().startswith("}"):
                    return close, names
                if match := _LUA_STRING.match(lines[close]):
                    names.add(match[1])
            raise CannotEdit("a modules_enabled list is not closed")
    return None


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _last_content_line(lines: Sequence[str], section: _Section) -> int:
    """Where a section's own settings end: after its last line that is not blank."""
    last = section.start
    for index in range(section.start, section.end):
        if lines[index].strip():
            last = index
    return last + 1


def prosody_host_file(text: str, *, domain: str, token: TokenSettings) -> str:
    """The Prosody host file with token authentication and the modules the tokens need."""
    lines = as_lines(without_blocks(text, comment=LUA_COMMENT))
    conference = f"conference.{domain}"
    # Edits from the bottom up, so that the indexes found stay right.
    edits: list[tuple[int, list[str]]] = []
    sections = _sections(lines)
    for name, wanted in ((domain, MAIN_HOST_MODULES), (conference, CONFERENCE_MODULES)):
        section = sections.get(name)
        if section is None:
            kind = "VirtualHost" if name == domain else "Component"
            raise CannotEdit(f'no {kind} "{name}" in the Prosody host file')
        found = _enabled_modules(lines, section)
        if found is None:
            raise CannotEdit(f'no modules_enabled list under "{name}": add one, then run again')
        close, enabled = found
        missing = [module for module in wanted if module not in enabled]
        if missing:
            indent = _indent_of(lines[close]) + "    "
            edits.append(
                (close, block([f'"{m}";' for m in missing], comment=LUA_COMMENT, indent=indent))
            )
        if name == domain:
            indent = _indent_of(lines[section.start]) + "    "
            settings = [
                'authentication = "token"',
                f"app_id = {_lua_string(token.app_id)}",
                f"app_secret = {_lua_string(token.app_secret)}",
                "allow_empty_token = false",
            ]
            at = _last_content_line(lines, section)
            edits.append((at, block(settings, comment=LUA_COMMENT, indent=indent)))
    for at, added in sorted(edits, key=lambda edit: edit[0], reverse=True):
        lines[at:at] = added
    return "".join(lines)


# -- jicofo -------------------------------------------------------------------------------


def jicofo_conf(text: str) -> str:
    """jicofo.conf with auto-owner off (HOCON merges the path into the jicofo object)."""
    lines = as_lines(without_blocks(text, comment=HASH_COMMENT))
    lines += block(["jicofo.conference.enable-auto-owner = false"], comment=HASH_COMMENT)
    return "".join(lines)


# -- nginx --------------------------------------------------------------------------------


def _code(line: str) -> str:
    """A line of nginx configuration without its comment (quotes aside: good enough
    for braces and keywords in Jitsi's site files)."""
    return line.split("#", 1)[0]


def _server_blocks(lines: Sequence[str]) -> list[tuple[int, int]]:
    """Each top-level ``server {`` block as (its first line, its closing line)."""
    blocks: list[tuple[int, int]] = []
    depth, start = 0, -1
    for index, line in enumerate(lines):
        code = _code(line)
        if depth == 0 and re.match(r"^\s*server\s*\{", code):
            start = index
        depth += code.count("{") - code.count("}")
        if depth == 0 and start >= 0:
            blocks.append((start, index))
            start = -1
    return blocks


def nginx_site(text: str) -> str:
    """Jitsi's site with the include before the meet server's first location."""
    lines = as_lines(without_blocks(text, comment=HASH_COMMENT))
    for start, end in _server_blocks(lines):
        body = lines[start : end + 1]
        if not any("/config.js" in _code(line) for line in body):
            continue  # the port-80 redirect, say
        depth = 0
        for index in range(start, end + 1):
            code = _code(lines[index])
            if depth == 1 and re.match(r"^\s*location\b", code):
                indent = _indent_of(lines[index])
                lines[index:index] = block([NGINX_INCLUDE], comment=HASH_COMMENT, indent=indent)
                return "".join(lines)
            depth += code.count("{") - code.count("}")
        raise CannotEdit("the meet server block has no location to put the include before")
    raise CannotEdit("no server block serving Jitsi's /config.js in the nginx site")


_AUTH_LOCATION = re.compile(r"^\s*location\s+\^~\s+/auth/\s*\{(?P<body>.*?)^\}", re.DOTALL | re.M)
# unix:/run/jitsi-auth-sidecar/http.sock as shipped, or host:port ([v6]:port) where
# the admin pointed it elsewhere.
_DIRECT_PASS = re.compile(
    r"^\s*proxy_pass\s+http://(unix:[^;\s]+?|\[[0-9a-fA-F:.]+\](?::\d+)?|[^;\s/:\[]+(?::\d+)?)/?;",
    re.M,
)


def without_upstream(include: str) -> str:
    """The include with its checks sent straight to the sidecar, a new connection
    each, for an nginx without the http-level upstream file (the web container of
    docker-jitsi-meet reads only server-level files): to the address the include's
    own ``/auth/`` location names, comments aside."""
    through = f"proxy_pass http://{NGINX_UPSTREAM}/"
    if through not in include:
        return include  # an include of the admin's own, sent as it is
    code = "\n".join(_code(line) for line in include.splitlines())
    auth = _AUTH_LOCATION.search(code)
    direct = _DIRECT_PASS.search(auth.group("body")) if auth else None
    if direct is None:
        raise CannotEdit("the include's location ^~ /auth/ names no address of the sidecar")
    address = direct.group(1)
    # nginx separates a socket's path from the URI with a colon.
    prefix = f"{address}:/" if address.startswith("unix:") else f"{address}/"
    note = "# setup --docker: straight to the sidecar, a new connection each (no upstream here)\n"
    lines = []
    for line in include.splitlines(keepends=True):
        if through in _code(line):
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(indent + note)
            line = line.replace(through, f"proxy_pass http://{prefix}")
        lines.append(line)
    return "".join(lines)


# -- docker-jitsi-meet --------------------------------------------------------------------


def env_values(text: str) -> dict[str, str]:
    """An env file's assignments, the last one of each name winning (as compose reads it)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        name, value = stripped.split("=", 1)
        values[name.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def _joined(existing: str, wanted: Iterable[str]) -> str:
    names = [name.strip() for name in existing.split(",") if name.strip()]
    return ",".join(names + [name for name in wanted if name not in names])


def docker_env(text: str, *, token: TokenSettings) -> str:
    """docker-jitsi-meet's .env with JWT authentication for the sidecar's tokens.

    The image's Prosody configuration adds JWT_TOKEN_AUTH_MODULE
    (token_verification) to the conference component itself when
    AUTH_TYPE=jwt, and sets http_default_host; guests would be a way in
    without a token, so they are off.
    """
    pristine = without_blocks(text, comment=HASH_COMMENT)
    values = env_values(pristine)
    if any(ch in token.app_secret + token.app_id for ch in "\n\r\"' #"):
        raise CannotEdit("the app id or secret cannot be written into .env")
    settings = [
        "ENABLE_AUTH=1",
        "ENABLE_GUESTS=0",
        "AUTH_TYPE=jwt",
        f"JWT_APP_ID={token.app_id}",
        f"JWT_APP_SECRET={token.app_secret}",
        "JWT_ALLOW_EMPTY=0",
        f"XMPP_MODULES={_joined(values.get('XMPP_MODULES', ''), MAIN_HOST_MODULES)}",
        "XMPP_MUC_MODULES="
        + _joined(
            values.get("XMPP_MUC_MODULES", ""),
            (m for m in CONFERENCE_MODULES if m != "token_verification"),
        ),
        "ENABLE_AUTO_OWNER=0",
    ]
    return "".join(as_lines(pristine) + block(settings, comment=HASH_COMMENT))
