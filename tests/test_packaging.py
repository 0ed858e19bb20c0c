"""What ``pip install`` gives an admin: the daemon, and nothing of the demo or the tests.

The wheel is built with the lowest setuptools ``pyproject.toml`` declares and
installed into a fresh virtualenv, as an admin would on a school server.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from demo.ports import free_port
from demo.run import write_demo_config

REPOSITORY = Path(__file__).resolve().parents[1]


def run(*command: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


def lowest_setuptools() -> str:
    document = tomllib.loads((REPOSITORY / "pyproject.toml").read_text("utf-8"))
    requirement = next(
        req for req in document["build-system"]["requires"] if req.startswith("setuptools")
    )
    match = re.fullmatch(r"setuptools>=([0-9.]+)", requirement)
    assert match is not None, requirement
    return match.group(1)


def copy_source_tree(target: Path) -> None:
    """The files git knows of (tracked or not ignored): what a clean clone has, no .venv."""
    listed = run(
        "git", "-C", REPOSITORY, "ls-files", "-z", "--cached", "--others", "--exclude-standard"
    )
    for name in filter(None, listed.stdout.split("\0")):
        origin = REPOSITORY / name
        if origin.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / name)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("wheel")
    builder = workdir / "builder"
    run(sys.executable, "-m", "venv", builder)
    run(builder / "bin" / "pip", "install", "-q", f"setuptools=={lowest_setuptools()}")
    dist = workdir / "dist"
    source = workdir / "source"
    copy_source_tree(source)
    pip = builder / "bin" / "pip"
    run(pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, source)
    (built,) = dist.glob("jitsi_auth_sidecar-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with nothing but the wheel and its dependencies: its bin/."""
    environment = tmp_path_factory.mktemp("installed") / "venv"
    run(sys.executable, "-m", "venv", environment)
    run(environment / "bin" / "pip", "install", "-q", wheel)
    return environment / "bin"


def test_the_wheel_holds_the_daemon_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "sidecar/cli.py" in names
    assert "sidecar/web/templates/login.html" in names
    assert "sidecar/web/static/style.css" in names
    for name in names:
        assert not name.startswith(("demo/", "tests/", "sidecar/demo/")), name
    # The demo school's passwords and its root nginx configuration are not shipped.
    for name in names:
        if name.endswith(".py"):
            text = zipfile.ZipFile(wheel).read(name).decode("utf-8")
            assert "Tafel-Kreide" not in text, name
            assert "user root;" not in text, name


def test_the_installed_command_helps_and_checks_a_configuration(
    installed: Path, tmp_path: Path
) -> None:
    help_text = run(installed / "jitsi-auth-sidecar", "--help").stdout
    assert "check-config" in help_text
    version = tomllib.loads((REPOSITORY / "pyproject.toml").read_text("utf-8"))["project"][
        "version"
    ]
    assert run(installed / "jitsi-auth-sidecar", "--version").stdout.strip() == (
        f"jitsi-auth-sidecar {version}"
    )
    assert "serve" in help_text
    assert "demo" not in help_text
    config = write_demo_config(tmp_path, port=free_port(), ldap_url="ldap://127.0.0.1:389")
    checked = run(installed / "jitsi-auth-sidecar", "check-config", "--offline", "--config", config)
    assert "configuration ok" in checked.stdout
