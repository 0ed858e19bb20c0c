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

from demo.nginx import free_port
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
