"""``make demo``: the embedded default works as the README says, and Ctrl-C leaves nothing."""

from __future__ import annotations

import base64
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from demo.ports import free_port
from demo.school import SCHOOL, Person
from testbed.demo_process import REPOSITORY, wait_for_banner
from testbed.poll import poll_until
from testbed.stack import token_in
from tests.jitsi_rules import JitsiSite, admit


def basic(person: Person) -> dict[str, str]:
    raw = f"{person.uid}:{person.password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read().decode("utf-8", errors="replace")
        return response.status, response.getheader("Location") or "", body
    finally:
        connection.close()


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_demo_lets_a_teacher_in_and_stops_cleanly() -> None:
    port = free_port()
    jitsi_port = 0
    process = subprocess.Popen(
        [sys.executable, "-m", "demo", "--port", str(port)],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group, as a terminal's Ctrl-C would reach it.
        start_new_session=True,
    )
    try:
        banner = wait_for_banner(process, time.monotonic() + 60)
        assert f"http://127.0.0.1:{port}/Mathe7b" in banner
        # It says how another machine reaches it: it listens on loopback only.
        assert f"ssh -N -L {port}:127.0.0.1:{port} " in banner
        teacher = SCHOOL.teachers[0]
        assert f"{teacher.uid}" in banner
        assert teacher.password in banner
        workdir = Path(re.search(r"Configuration: (\S+)/config\.toml", banner).group(1))  # type: ignore[union-attr]

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        raw = f"{teacher.uid}:{teacher.password}".encode()
        connection.request(
            "GET", "/Mathe7b", headers={"Authorization": "Basic " + base64.b64encode(raw).decode()}
        )
        response = connection.getresponse()
        response.read()
        connection.close()
        assert response.status == 302
        location = response.getheader("Location") or ""
        assert location.startswith("/Mathe7b?jwt=")
        site = JitsiSite(
            app_id="school-meet",
            app_secret=(workdir / "app_secret").read_bytes(),
            subject="meet.school.example",
        )
        assert admit(token_in(location), site, "Mathe7b").moderator is True

        # Pupils wait until a teacher has the room open; the stand-in page opens it.
        config = (workdir / "config.toml").read_text("utf-8")
        jitsi_port = int(re.search(r"room_size_url = \"http://127.0.0.1:(\d+)/", config).group(1))  # type: ignore[union-attr]
        pupil = SCHOOL.pupils[0]
        waiting = get(port, "/Mathe7b", basic(pupil))
        assert waiting[0] == 200
        assert 'http-equiv="refresh"' in waiting[2]
        config_js = get(port, "/config.js", {})[2]
        assert f"http://127.0.0.1:{jitsi_port}/demo/rooms" in config_js
        opened = http.client.HTTPConnection("127.0.0.1", jitsi_port, timeout=20)
        opened.request("POST", "/demo/rooms/mathe7b/open")
        assert opened.getresponse().status == 204
        opened.close()
        reply = poll_until(
            lambda: get(port, "/Mathe7b", basic(pupil)),
            lambda answer: answer[0] == 302,
            seconds=10,
            interval=0.2,
        )
        assert reply[0] == 302, reply
        assert reply[1].startswith("/Mathe7b?jwt=")
        # The start page and the videobridge's figures answer.
        assert get(port, "/auth/statistics", basic(teacher))[0] == 200
        assert get(port, "/auth/", basic(teacher))[0] == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "nothing left running" in output
    assert not port_is_open(port)
    assert not port_is_open(jitsi_port)
    assert not workdir.exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", str(workdir)], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout == ""


def test_a_taken_port_is_named_and_nothing_starts() -> None:
    """On a Jitsi host the videobridge often holds 8080: the demo must not claim it runs."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "demo", "--port", str(port)],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1, result
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr
    assert "nothing was started" in result.stderr
    suggested = re.search(r"DEMO_PORT=(\d+)", result.stderr)
    assert suggested is not None
    assert int(suggested[1]) != port
    assert "is running" not in result.stdout


def test_a_port_out_of_range_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--port", "70000"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--port 70000" in result.stderr


def make_plan(target: str, tmp_path: Path) -> str:
    """What ``make TARGET`` would run for a fresh virtualenv (``make -n``: nothing runs)."""
    result = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / 'venv'}"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def debian_packages(plan: str) -> set[str]:
    """The Debian packages the plan's apt-get step checks for."""
    names: set[str] = set()
    for found in re.findall(r"for package in ([^;]+);", plan):
        names.update(found.split())
    return names


def test_make_demo_installs_only_what_the_demo_needs(tmp_path: Path) -> None:
    demo = make_plan("demo", tmp_path)
    assert {"slapd", "nginx"} <= debian_packages(demo)
    assert not {"chromium", "redis-server", "wrk"} & debian_packages(demo)
    assert re.search(r"pip install -q -e \.$", demo, re.MULTILINE), demo
    assert "[dev" not in demo
    # make test still installs everything, the browser and the dev tools too.
    test = make_plan("test", tmp_path)
    assert {"chromium", "redis-server", "slapd", "nginx"} <= debian_packages(test)
    assert "-e '.[dev]'" in test


def test_the_demo_imports_no_test_tool() -> None:
    """The demo runs with the daemon's libraries alone (make demo installs no more)."""
    probe = (
        "import sys, demo.__main__, demo.run\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(result.stdout.split())
    assert "sidecar" in loaded
    assert not {"pytest", "playwright", "hypothesis", "mypy", "ruff", "tests"} & loaded
