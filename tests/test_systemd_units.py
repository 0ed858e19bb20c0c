"""The systemd units, as systemd reads them: they load cleanly, their sandbox
scores well, and the socket is the one nginx and the daemon expect.

``systemd-analyze`` reads unit files without a running systemd, so these run
in a container (no systemd as PID 1) as well as on a host. It comes with
Debian's ``systemd`` package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.config.settings import ServerSettings, UnixAddress
from sidecar.web.server import LISTEN_BACKLOG, STOP_SECONDS

REPO = Path(__file__).resolve().parent.parent
SERVICE = REPO / "systemd" / "jitsi-auth-sidecar.service"
SOCKET = REPO / "systemd" / "jitsi-auth-sidecar.socket"
NGINX_INCLUDE = REPO / "nginx" / "jitsi-auth-sidecar.conf"
# Where docs/install.md installs the daemon; the units name it in ExecStartPre= and ExecStart=.
INSTALLED_BINARY = "/opt/jitsi-auth-sidecar/bin/jitsi-auth-sidecar"
# systemd-analyze security's scale: 0 (locked down) to 10 (not sandboxed at all).
MAX_EXPOSURE = 2.0
OVERALL = re.compile(r"Overall exposure level for (\S+): (\d+(?:\.\d+)?)")


def analyze() -> str:
    """The systemd-analyze binary; a missing one fails the tests rather than skipping them."""
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd")
    return found


def run_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    # Plain text: no colours, no pager, untranslated messages to match on.
    env = dict(os.environ, SYSTEMD_COLORS="0", SYSTEMD_PAGER="", LC_ALL="C.UTF-8")
    return subprocess.run(
        [analyze(), *args, "--no-pager"], capture_output=True, text=True, env=env, check=False
    )


def directives(unit: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, repeated keys included, in file order."""
    found: list[tuple[str, str, str]] = []
    section = ""
    for raw in unit.read_text("utf-8").splitlines():
        line = raw.strip()
        # The units use no continuation lines; this reader would misread one.
        assert not line.endswith("\\"), raw
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, raw
        found.append((section, key.strip(), value.strip()))
    return found


def values(unit: Path, section: str, key: str) -> list[str]:
    return [v for s, k, v in directives(unit) if s == section and k == key]


def value(unit: Path, section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, (unit.name, key, found)
    return found[0]


def runnable_copies(directory: Path) -> tuple[Path, Path]:
    """Both units in ``directory``, the service starting this checkout's console script.

    verify refuses a unit whose ExecStart= binary does not exist, and
    /opt/jitsi-auth-sidecar is where an admin installs, not where the tests
    run; the script next to this interpreter is the same entry point.
    """
    binary = Path(sys.executable).parent / "jitsi-auth-sidecar"
    assert os.access(binary, os.X_OK), binary
    text = SERVICE.read_text("utf-8")
    assert text.count(INSTALLED_BINARY) == 2, "ExecStartPre= and ExecStart= name the binary"
    service = directory / SERVICE.name
    service.write_text(text.replace(INSTALLED_BINARY, str(binary)), "utf-8")
    socket = directory / SOCKET.name
    shutil.copyfile(SOCKET, socket)
    return service, socket


def verify(service: Path, socket: Path) -> subprocess.CompletedProcess[str]:
    return run_analyze("verify", "--man=no", str(service), str(socket))


def verified(result: subprocess.CompletedProcess[str]) -> bool:
    # systemd ignores a line it cannot read with only a warning and exit status
    # 0, and the unit then runs without it: a misspelt ProtectSystem= is a
    # sandbox gone. So any message at all counts as a failure.
    return result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip()


def test_units_verify(tmp_path: Path) -> None:
    result = verify(*runnable_copies(tmp_path))
    assert verified(result), result.stdout + result.stderr


@pytest.mark.parametrize(
    ("unit", "old", "new"),
    [
        pytest.param(SERVICE.name, "Type=notify", "Type=notifyy", id="bad-type"),
        pytest.param(SERVICE.name, "ProtectSystem=strict", "ProtectSytem=strict", id="misspelt"),
        pytest.param(SOCKET.name, "SocketMode=0660", "SocketMode=0x660", id="bad-mode"),
        pytest.param(
            SERVICE.name, "ExecStart=", "ExecStart=/nonexistent/jitsi-auth-sidecar ", id="no-binary"
        ),
    ],
)
def test_verify_catches_a_broken_unit(tmp_path: Path, unit: str, old: str, new: str) -> None:
    # The check above is only worth something if it can fail.
    service, socket = runnable_copies(tmp_path)
    broken = tmp_path / unit
    text = broken.read_text("utf-8")
    assert text.count(f"\n{old}") == 1, old
    broken.write_text(text.replace(f"\n{old}", f"\n{new}"), "utf-8")
    result = verify(service, socket)
    assert not verified(result), result


def exposure(unit: Path) -> float:
    result = run_analyze("security", "--offline=yes", str(unit))
    assert result.returncode == 0, result.stderr
    found = OVERALL.findall(result.stdout)
    assert len(found) == 1, result.stdout
    name, score = found[0]
    assert name == unit.name
    return float(score)


def test_service_sandbox_exposure() -> None:
    # The shipped file itself: offline scoring needs no installed binary.
    score = exposure(SERVICE)
    assert score <= MAX_EXPOSURE, f"systemd-analyze security: {score}"
    # systemd's own verdict agrees (its threshold counts tenths).
    limit = f"--threshold={round(MAX_EXPOSURE * 10)}"
    result = run_analyze("security", "--offline=yes", limit, str(SERVICE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_exposure_reflects_the_sandbox(tmp_path: Path) -> None:
    # The same service without its sandbox scores as exposed: the number above
    # comes from the file's hardening, not from how it is read.
    bare = tmp_path / SERVICE.name
    kept = ("Type=", "ExecStart", "Restart")
    lines = [
        line for line in SERVICE.read_text("utf-8").splitlines() if line.startswith(("[", *kept))
    ]
    bare.write_text("\n".join(lines) + "\n", "utf-8")
    assert exposure(bare) >= 9.0


def test_socket_is_where_the_daemon_and_nginx_expect_it() -> None:
    default = ServerSettings.__dataclass_fields__["listen"].default
    assert isinstance(default, UnixAddress)
    listen = value(SOCKET, "Socket", "ListenStream")
    assert listen == str(default.path)
    # Every unix: address in nginx's include is this socket.
    in_nginx = set(re.findall(r"unix:(/[^\s:;]+)", NGINX_INCLUDE.read_text("utf-8")))
    assert in_nginx == {listen}


def test_socket_lets_only_nginx_in() -> None:
    assert value(SOCKET, "Socket", "SocketGroup") == "www-data"
    assert value(SOCKET, "Socket", "SocketMode") == "0660"
    assert values(SOCKET, "Socket", "SocketUser") in ([], ["root"])
    # Requests wait here while the service restarts; as deep as the daemon's own.
    assert int(value(SOCKET, "Socket", "Backlog")) == LISTEN_BACKLOG


def test_service_takes_over_the_socket() -> None:
    # Socket and service pair up by name.
    assert SOCKET.stem == SERVICE.stem
    assert values(SOCKET, "Socket", "Service") == []
    # READY=1 is what the daemon sends once it serves the inherited socket.
    assert value(SERVICE, "Service", "Type") == "notify"
    assert SOCKET.name in values(SERVICE, "Unit", "Requires")
    assert SOCKET.name in values(SERVICE, "Unit", "After")
    # A RuntimeDirectory= of the service is removed when it stops, and the
    # socket in it with it: requests during a restart would fail.
    assert values(SERVICE, "Service", "RuntimeDirectory") == []


def test_the_check_before_each_start_needs_no_directory() -> None:
    # The daemon copes with a directory or Redis that is down for a moment; the
    # check in front of it must not turn that into a service that never starts.
    (check,) = values(SERVICE, "Service", "ExecStartPre")
    assert check.split()[1:3] == ["check-config", "--offline"]


def test_the_service_may_hold_many_descriptors() -> None:
    # systemd's default soft limit is 1024: a directory outage under load used it up.
    limit = value(SERVICE, "Service", "LimitNOFILE")
    assert ":" not in limit, "one value: soft and hard limit alike"
    assert int(limit) >= 65536


def test_a_stop_has_time_to_drain() -> None:
    # The daemon bounds its own stop (sidecar.web.server.STOP_SECONDS); systemd must not
    # kill it before, or the requests it took in are cut.
    timeout = value(SERVICE, "Service", "TimeoutStopSec")
    assert timeout.endswith("s")
    assert float(timeout[:-1]) >= 2 * STOP_SECONDS
