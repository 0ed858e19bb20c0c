"""Liveness and readiness, as a load balancer or systemd's watchdog would ask."""

from __future__ import annotations

import os
import resource
import socket
import time
from collections.abc import Callable
from pathlib import Path

from demo.slapd import Slapd
from testbed.poll import poll_until
from testbed.stack import Reply, Stack, UnixHTTPConnection, request
from tests.systemd_player import restartable_stack


def until(ask: Callable[[], Reply], status: int, seconds: float = 15.0) -> Reply:
    return poll_until(ask, lambda reply: reply.status == status, seconds=seconds, interval=0.1)


def test_ready_only_while_the_directory_answers(
    own_slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(own_slapd)
    assert stack.get("/auth/healthz").status == 200
    ready = stack.get("/auth/readyz")
    assert ready.status == 200
    assert ready.body.replace(" ", "") == '{"ldap":"ok"}'
    own_slapd.stop()
    down = until(lambda: stack.get("/auth/readyz"), 503)
    assert down.status == 503
    assert down.body.replace(" ", "") == '{"ldap":"unreachable"}'
    # The process itself is alive all the while.
    assert stack.get("/auth/healthz").status == 200
    own_slapd.start()
    assert until(lambda: stack.get("/auth/readyz"), 200).status == 200


# What the daemon may hold in these tests: a few dozen past what it needs to start.
SMALL_LIMIT = 64


def descriptor_limits(pid: int) -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE of process ``pid``, as /proc shows them."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no Max open files line")


def test_the_daemon_raises_its_soft_descriptor_limit_to_the_hard_one(
    slapd: Slapd, tmp_path: Path
) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard > 256, "the test needs a hard limit above 256"
    with restartable_stack(tmp_path, slapd.ldap_url) as (player, _nginx):
        # systemd's default: a soft limit far below the hard one.
        player.before_exec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        player.restart()
        assert player.process is not None
        assert descriptor_limits(player.process.pid) == (hard, hard)


def test_out_of_descriptors_the_log_stays_short_health_says_so_and_it_recovers(
    slapd: Slapd, tmp_path: Path
) -> None:
    with restartable_stack(tmp_path, slapd.ldap_url) as (player, _nginx):
        player.before_exec = lambda: resource.setrlimit(
            resource.RLIMIT_NOFILE, (SMALL_LIMIT, SMALL_LIMIT)
        )
        player.restart()
        assert player.process is not None
        pid = player.process.pid
        held = tmp_path / "held.sock"
        # Idle connections until the daemon holds every descriptor it may have.
        idle: list[socket.socket] = []
        while len(os.listdir(f"/proc/{pid}/fd")) < SMALL_LIMIT and len(idle) < 4 * SMALL_LIMIT:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.connect(str(held))
            idle.append(connection)
            time.sleep(0.01)  # paced: the count above catches up with each one
        # One more waits in the listen queue: the daemon cannot take it in now.
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(30)
        probe.connect(str(held))
        probe.sendall(b"GET /auth/healthz HTTP/1.1\r\nHost: sidecar\r\nConnection: close\r\n\r\n")
        poll_until(lambda: "cannot accept connections" in player.log(), seconds=30)
        assert "cannot accept connections" in player.log(), player.log()[-2000:]
        # Descriptors come free: the waiting probe is taken in and answered, and
        # the answer tells the truth about the last seconds.
        for connection in idle:
            connection.close()
        answer = b""
        while chunk := probe.recv(65536):
            answer += chunk
        probe.close()
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"descriptors" in answer
        # Healthy again once accepting has worked for a while.
        reply = until(lambda: held_request(held, "/auth/healthz"), 200, seconds=30)
        assert reply.status == 200
        log = player.log()
    # One line about it, not one (with a traceback) per waiting connection and second.
    assert log.count("cannot accept connections") <= 2
    assert "out of system resource" not in log
    assert "Traceback" not in log


def held_request(path: Path, target: str) -> Reply:
    return request(UnixHTTPConnection(path), target)
