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
from demo.school import SCHOOL
from tests.jitsi_rules import JitsiSite, admit
from tests.stack import token_in

REPOSITORY = Path(__file__).resolve().parents[1]


REPOSITORY = Path(__file__).resolve().parents[1]


def wait_for_banner(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    seen = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        if "Ctrl-C stops everything" in line:
            return seen
    raise AssertionError(f"no banner; output so far:\n{seen}")


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_demo_lets_a_teacher_in_and_stops_cleanly() -> None:
    port = free_port()
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
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "nothing left running" in output
    assert not port_is_open(port)
    assert not workdir.exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", str(workdir)], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout == ""
