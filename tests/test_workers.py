"""Several worker processes on one socket (server.workers): all serve, a ban or a
logout holds in every one, a worker that dies comes back, SIGTERM ends them all."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config import ConfigError, load_settings
from tests.redis_server import RedisServer
from tests.stack import Browser, Stack, UnixHTTPConnection, basic_auth
from tests.test_config import MINIMAL, write_config
from tests.test_metrics import metrics_line, scrape, value

PUPIL = SCHOOL.pupils[0]
TEACHER = SCHOOL.teachers[1]
STRICT = """
[regulation]
max_failures_per_user = 3
max_failures_per_address = 1000
"""


def children(pid: int) -> list[int]:
    listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in listed]


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def two_workers(
    slapd: Slapd,
    make_stack: Callable[..., Stack],
    redis: RedisServer,
    metrics: Path,
    *,
    tcp_metrics: int | None = None,
) -> Stack:
    listen = f"unix:{metrics}" if tcp_metrics is None else f"127.0.0.1:{tcp_metrics}"
    replace = metrics_line(listen)
    replace['public_url = "'] = "workers = 2\n" + replace['public_url = "']
    # Redis keeps logouts and guest links: no file for every worker to overwrite.
    replace["revocation_file = "] = "# revocation_file = "
    replace["state_file = "] = "# state_file = "
    extra = STRICT + f'\n[state]\nredis_url = "{redis.url}"\n'
    return make_stack(slapd, extra=extra, replace=replace)


def test_two_workers_share_the_load_and_the_bans(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer, tmp_path: Path
) -> None:
    metrics = tmp_path / "metrics.sock"
    stack = two_workers(slapd, make_stack, redis_server, metrics)
    assert stack.sidecar.process is not None
    parent = stack.sidecar.process.pid
    wait_for(lambda: len(children(parent)) == 2)
    pupil = basic_auth(PUPIL.uid, PUPIL.password)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: stack.get("/Mathe7b", pupil).status, range(200)))
    assert statuses == [302] * 200
    served = [
        value(scrape(UnixHTTPConnection(Path(f"{metrics}.{number}"))), "jitsi_auth_decisions_total",
              outcome="token", method="basic", role="pupil")
        for number in (0, 1)
    ]  # fmt: skip
    assert sum(served) == 200
    assert min(served) > 0, served  # both accepted on the one socket
    for _ in range(3):
        assert Browser(stack).log_in(TEACHER.uid, "guess").status == 401
    # Whichever worker answers now knows the ban.
    for _ in range(6):
        assert Browser(stack).log_in(TEACHER.uid, TEACHER.password).status == 429


def test_a_worker_that_dies_comes_back_and_sigterm_ends_them_all(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer, tmp_path: Path
) -> None:
    stack = two_workers(slapd, make_stack, redis_server, tmp_path / "metrics.sock")
    assert stack.sidecar.process is not None
    parent = stack.sidecar.process.pid
    wait_for(lambda: len(children(parent)) == 2)
    first, second = children(parent)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: len(children(parent)) == 2 and first not in children(parent))
    pupil = basic_auth(PUPIL.uid, PUPIL.password)
    assert all(stack.get("/Mathe7b", pupil).status == 302 for _ in range(20))
    assert "worker 0 ended" in stack.sidecar.log() or "worker 1 ended" in stack.sidecar.log()
    workers = children(parent)
    stack.sidecar.process.send_signal(signal.SIGTERM)
    assert stack.sidecar.process.wait(timeout=20) == 0
    # Every worker ended (and was waited for), and the socket is gone.
    for pid in (*workers, second):
        assert not Path(f"/proc/{pid}").exists()
    assert not stack.sidecar.socket_path.exists()


def test_more_than_one_worker_needs_redis_and_no_state_files(tmp_path: Path) -> None:
    body = MINIMAL.replace("[server]\n", "[server]\nworkers = 2\n", 1)
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, body), environ={})
    assert raised.value.key == "state.redis_url"
    shared = body + '\n[state]\nredis_url = "redis://127.0.0.1:6379/0"\n'
    assert load_settings(write_config(tmp_path, shared), environ={}).server.workers == 2
    with_file = {"JITSI_AUTH_SIDECAR_SESSIONS_REVOCATION_FILE": str(tmp_path / "revoked.json")}
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, shared), environ=with_file)
    assert raised.value.key == "sessions.revocation_file"


def test_a_worker_that_cannot_start_stops_them_all_with_a_failure(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer, tmp_path: Path
) -> None:
    """Worker 1's metrics port is taken: it ends with code 2, and so does the daemon,
    for systemd to see, instead of being started again for ever."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        stack: Stack | None = None
        # It may end before its first answer, or after worker 0 gave one.
        with contextlib.suppress(RuntimeError):
            stack = two_workers(
                slapd, make_stack, redis_server, tmp_path / "unused", tcp_metrics=port - 1
            )
        if stack is not None and stack.sidecar.process is not None:
            assert stack.sidecar.process.wait(timeout=30) == 2
        log = (tmp_path / "stack0" / "sidecar.log").read_text()
        assert "metrics_listen" in log
    finally:
        taken.close()
