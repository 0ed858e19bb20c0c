"""Socket activation and readiness as systemd does them, and restarts nobody notices.

The test plays systemd (tests.systemd_player): it owns the listening socket,
hands it to the daemon as file descriptor 3 (``LISTEN_FDS``/``LISTEN_PID``)
after the ``ExecStartPre=`` check, waits for ``READY=1`` on ``NOTIFY_SOCKET``,
and restarts the daemon while nginx keeps sending it requests: they wait in
the socket's listen queue, and none fails.
"""

from __future__ import annotations

import http.client
import os
import select
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.nginx import Nginx
from demo.school import SCHOOL
from demo.slapd import Slapd
from soak.proxy import DelayingProxy
from testbed.poll import poll_until
from testbed.stack import basic_auth, request
from tests.systemd_player import (
    SystemdPlayer,
    prime,
    restartable_stack,
    restarts_under_load,
)

TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[0]
# Seconds each answer of the slow directory is late.
SLOW = 2.0
KEEP_CACHE = '\n[cache]\nbasic_state_file = "{path}"\n'


@pytest.fixture
def slow_directory(own_slapd: Slapd) -> Iterator[DelayingProxy]:
    """The directory behind a proxy that can make it slow or unreachable."""
    proxy = DelayingProxy(own_slapd.port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def activated(slapd: Slapd, tmp_path: Path) -> Iterator[tuple[SystemdPlayer, Nginx]]:
    with restartable_stack(tmp_path, slapd.ldap_url) as running:
        yield running


def test_the_daemon_serves_the_socket_it_is_handed(
    activated: tuple[SystemdPlayer, Nginx],
) -> None:
    player, nginx = activated
    reply = request(nginx_connection(nginx), "/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password))
    assert reply.status == 302
    assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")
    # The socket is systemd's: the daemon did not bind one of its own there.
    assert "(the socket systemd passed)" in player.log()


def nginx_connection(nginx: Nginx) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=30)


def test_restarts_in_a_row_under_load_lose_no_request(
    activated: tuple[SystemdPlayer, Nginx],
) -> None:
    player, nginx = activated
    tally = restarts_under_load(player, nginx, restarts=8, clients=16, between=150)
    assert tally.total >= 9 * 150
    # 500 (a reset under auth_request), 502 (a reset), 504, or no answer: none.
    assert tally.failed == 0, dict(tally.statuses)
    assert player.killed == 0


def test_restarts_with_a_slow_directory_lose_no_request(
    slow_directory: DelayingProxy, tmp_path: Path
) -> None:
    restarts, clients = 3, 8  # two of the clients: wrong passwords, a slow search and bind each
    # The cache is kept across restarts: otherwise every cached person would need
    # a (here: slow) bind again after each of them.
    extra = KEEP_CACHE.format(path=tmp_path / "basic_cache")
    with restartable_stack(tmp_path, slow_directory.url, extra=extra) as (player, nginx):
        prime(nginx)
        slow_directory.delay = SLOW
        tally = restarts_under_load(player, nginx, restarts=restarts, clients=clients, between=150)
    statuses = dict(tally.statuses)
    assert set(statuses) <= {200, 302, 401, 503}, statuses
    # A directory check under way when a stop begins is cut short after a few
    # seconds (with the "directory unreachable" page), so that the requests
    # waiting for the next process are answered before nginx gives up.
    assert statuses.get(503, 0) <= clients // 4 * restarts, statuses
    assert player.killed == 0


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_stop_closes_idle_connections_at_once_and_answers_busy_ones(
    slow_directory: DelayingProxy, tmp_path: Path
) -> None:
    with restartable_stack(tmp_path, slow_directory.url) as (player, _nginx):
        assert player.process is not None
        held = tmp_path / "held.sock"
        # A keep-alive connection that has had its answer and now waits.
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle.settimeout(30)
        idle.connect(str(held))
        idle.sendall(b"GET /auth/healthz HTTP/1.1\r\nHost: sidecar\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        # A request the directory keeps busy (a wrong password: a slow search and bind).
        slow_directory.delay = SLOW
        before = open_descriptors(player.process.pid)
        busy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        busy.settimeout(30)
        busy.connect(str(held))
        wrong = basic_auth(PUPIL.uid, "not the password")["Authorization"]
        busy.sendall(
            b"GET /auth/verify HTTP/1.1\r\nHost: sidecar\r\nX-Original-URI: /Mathe7b\r\n"
            + f"Authorization: {wrong}\r\nConnection: close\r\n\r\n".encode()
        )
        # Taken in (and its directory connection opened): the daemon holds more descriptors.
        pid = player.process.pid
        assert poll_until(lambda: open_descriptors(pid) > before, seconds=30)
        player.process.send_signal(signal.SIGTERM)
        # The idle connection is closed while the busy one still waits for its answer...
        assert idle.recv(4096) == b""
        readable, _, _ = select.select([busy], [], [], 0)
        assert readable == []
        # ...which then comes, whole: never a reset.
        answer = b""
        while chunk := busy.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 "), answer
        assert int(answer.split()[1]) in {200, 401, 403}
        idle.close()
        busy.close()
        player.process.wait(30)


def test_a_cached_basic_user_gets_in_after_a_restart_while_the_directory_is_down(
    slow_directory: DelayingProxy, tmp_path: Path
) -> None:
    kept = tmp_path / "basic_cache"
    extra = KEEP_CACHE.format(path=kept)
    with restartable_stack(tmp_path, slow_directory.url, extra=extra) as (player, nginx):
        credentials = basic_auth(TEACHER.uid, TEACHER.password)
        first = request(nginx_connection(nginx), "/Mathe7b", credentials)
        assert (first.header("Location") or "").startswith("/Mathe7b?jwt=")
        slow_directory.forwarding = False  # the directory is down from here on
        player.restart()
        again = request(nginx_connection(nginx), "/Mathe7b", credentials)
        assert (again.header("Location") or "").startswith("/Mathe7b?jwt="), again.status
        # Someone the cache does not know gets the "directory unreachable" page.
        other = request(nginx_connection(nginx), "/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password))
        assert other.status == 503
    # Sealed: neither the password nor even the name can be read in the file.
    sealed = kept.read_bytes()
    assert TEACHER.password.encode() not in sealed
    assert TEACHER.uid.encode() not in sealed


def test_without_the_setting_a_restart_forgets_cached_users(
    slow_directory: DelayingProxy, tmp_path: Path
) -> None:
    # The default: nothing about credentials outlives the process.
    with restartable_stack(tmp_path, slow_directory.url) as (player, nginx):
        credentials = basic_auth(TEACHER.uid, TEACHER.password)
        assert request(nginx_connection(nginx), "/Mathe7b", credentials).status == 302
        slow_directory.forwarding = False
        player.restart()
        assert request(nginx_connection(nginx), "/Mathe7b", credentials).status == 503
    assert not list(tmp_path.glob("*cache*"))
