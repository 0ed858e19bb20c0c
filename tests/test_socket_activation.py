"""Socket activation and readiness as systemd does them, and a restart nobody notices.

The test plays systemd: it owns the listening socket, hands it to the daemon
as file descriptor 3 (``LISTEN_FDS``/``LISTEN_PID``), waits for ``READY=1``
on ``NOTIFY_SOCKET``, and restarts the daemon while nginx keeps sending it
requests: they wait in the socket's backlog, and none fails.
"""

from __future__ import annotations

import http.client as http_client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.nginx import Nginx, free_port
from demo.processes import terminate
from demo.run import write_demo_config
from demo.school import SCHOOL
from demo.slapd import Slapd
from tests.conftest import LENIENT_REGULATION
from tests.stack import XmppStandIn, basic_auth, request

TEACHER = SCHOOL.teachers[0]
PASSED_FD = 3


class ActivatedSidecar:
    """The daemon started the way systemd starts a socket-activated Type=notify service."""

    def __init__(self, workdir: Path, config: Path, listening: socket.socket) -> None:
        self.workdir = workdir
        self.config = config
        self.listening = listening
        self.notify_path = workdir / "notify.sock"
        self.notifications = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notifications.bind(str(self.notify_path))
        self.notifications.settimeout(30)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        fd = self.listening.fileno()
        env = {k: v for k, v in os.environ.items() if not k.startswith("JITSI_AUTH_SIDECAR_")}
        env["NOTIFY_SOCKET"] = str(self.notify_path)
        log = (self.workdir / "sidecar.log").open("ab")

        def hand_over_socket() -> None:
            os.dup2(fd, PASSED_FD)

        self.process = subprocess.Popen(
            [
                "/bin/sh",
                "-c",
                # exec keeps the shell's pid: LISTEN_PID names the daemon.
                'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" -m sidecar.cli serve --config "$1"',
                sys.executable,
                str(self.config),
            ],
            pass_fds=(fd, PASSED_FD),
            preexec_fn=hand_over_socket,
            stdout=log,
            stderr=log,
            env=env,
        )
        log.close()
        message, _ = self.notifications.recvfrom(1024)
        assert message == b"READY=1", message

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.send_signal(signal.SIGTERM)
            message, _ = self.notifications.recvfrom(1024)
            assert message == b"STOPPING=1", message
            terminate(process)

    def close(self) -> None:
        terminate(self.process)
        self.notifications.close()


@pytest.fixture
def activated(slapd: Slapd, tmp_path: Path) -> Iterator[tuple[ActivatedSidecar, Nginx]]:
    port = free_port()
    config = write_demo_config(
        tmp_path, port=port, ldap_url=slapd.ldap_url, extra=LENIENT_REGULATION
    )
    socket_path = tmp_path / "sidecar.sock"
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(socket_path))
    listening.listen(4096)
    sidecar = ActivatedSidecar(tmp_path, config, listening)
    xmpp = XmppStandIn(tmp_path)
    xmpp.start()
    (tmp_path / "nginx").mkdir()
    nginx = Nginx(tmp_path / "nginx", port=port, sidecar_socket=socket_path, xmpp_port=xmpp.port)
    try:
        sidecar.start()
        nginx.start()
        yield sidecar, nginx
    finally:
        nginx.stop()
        sidecar.close()
        xmpp.stop()
        listening.close()


def test_the_daemon_serves_the_socket_it_is_handed(
    activated: tuple[ActivatedSidecar, Nginx],
) -> None:
    sidecar, nginx = activated
    reply = request(socket_connection(nginx), "/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password))
    assert reply.status == 302
    assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")
    # The socket is systemd's: the daemon did not bind one of its own there.
    assert "listening on" in (sidecar.workdir / "sidecar.log").read_text()


def socket_connection(nginx: Nginx) -> http_client.HTTPConnection:
    return http_client.HTTPConnection("127.0.0.1", nginx.port, timeout=30)


def test_a_restart_loses_no_request(activated: tuple[ActivatedSidecar, Nginx]) -> None:
    sidecar, nginx = activated
    credentials = basic_auth(TEACHER.uid, TEACHER.password)
    statuses: list[int] = []
    done = threading.Event()

    def keep_asking() -> None:
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            statuses.append(request(socket_connection(nginx), "/Mathe7b", credentials).status)

    asking = threading.Thread(target=keep_asking)
    asking.start()
    try:
        while len(statuses) < 20:
            time.sleep(0.05)
        sidecar.stop()
        stopped_at = len(statuses)
        sidecar.start()
        while len(statuses) < stopped_at + 20:
            time.sleep(0.05)
    finally:
        done.set()
        asking.join()
    assert len(statuses) >= 40
    assert set(statuses) == {302}, [status for status in statuses if status != 302]
