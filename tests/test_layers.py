"""The decision core and every family but web/ import no web framework, and
nothing of web/: the arrows run from the web layer to the core, never back.

Only ``sidecar/web/`` may import ``aiohttp.web``; the command line
(``sidecar.cli``) is where the web server is started, so it is the one
module outside web/ that reaches it. Checked in a fresh interpreter, where
nothing else has imported either yet.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

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
