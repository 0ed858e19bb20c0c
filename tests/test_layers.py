"""The decision core and every family but web/ import no web framework, and
nothing of web/: the arrows run from the web layer to the core, never back.
And Redis has one door, :class:`sidecar.shared_state.SharedState`.

Only ``sidecar/web/`` may import ``aiohttp.web``; the command line
(``sidecar.cli``) is where the web server is started, so it is the one
module outside web/ that reaches it. Checked in a fresh interpreter, where
nothing else has imported either yet.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import sidecar

ENTRY_POINT = "sidecar.cli"


def _modules_outside_web() -> list[str]:
    names = [
        module.name
        for module in pkgutil.walk_packages(sidecar.__path__, prefix="sidecar.")
        if not module.name.startswith("sidecar.web")
    ]
    return sorted(name for name in names if name != ENTRY_POINT)


def _web_modules_after_importing(modules: list[str]) -> list[str]:
    program = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "web = ('aiohttp.web', 'sidecar.web')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(web))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_the_walk_finds_every_family() -> None:
    families = {name.split(".")[1] for name in _modules_outside_web()}
    assert {"guard", "sessions", "ldap", "jitsi", "config", "admin", "daemon"} <= families


def test_no_module_outside_web_imports_aiohttp_web_or_the_web_layer() -> None:
    assert _web_modules_after_importing(_modules_outside_web()) == []


def test_the_check_sees_a_web_import() -> None:
    # The same check on the command line, which starts the web server, finds it.
    found = _web_modules_after_importing([ENTRY_POINT])
    assert {"aiohttp.web", "sidecar.web.server"} <= set(found)


# What only the door may touch: the client it keeps, and what makes commands outside it.
_REDIS_CLIENT = {"redis", "_redis", "register_script", "from_pool", "from_url"}
_DOOR = {"shared_state.py"}


def _redis_reaches(source: str) -> list[str]:
    """The attribute reads in ``source`` that reach the Redis client past the door."""
    return [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in _REDIS_CLIENT
    ]


def test_only_shared_state_holds_the_redis_client() -> None:
    """Every command to Redis goes through SharedState, so each is bounded, and
    answers None when Redis is away: not by convention, but because nobody else
    holds the client. Callers hand it what to send (a function of the client
    or of a pipeline, a script's keys), never keep it."""
    root = Path(sidecar.__file__).parent
    reaching = {
        str(path.relative_to(root)): found
        for path in sorted(root.rglob("*.py"))
        if path.name not in _DOOR and (found := _redis_reaches(path.read_text()))
    }
    assert reaching == {}


def test_the_door_check_sees_a_reach_past_it() -> None:
    assert _redis_reaches("pipe = shared.redis.pipeline()") == ["line 1: .redis"]
    assert _redis_reaches("script = client.register_script(SOURCE)") == ["line 1: .register_script"]
