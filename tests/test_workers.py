"""Several worker processes on one socket (server.workers): all serve, a ban or a
logout holds in every one, a worker that dies comes back, SIGTERM ends them all."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import signal
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import ConfigError, load_settings
from sidecar.daemon.workers import MAX_START_FAILURES, Supervisor, Worker, restart_pause
from testbed.configs import MINIMAL, write_config
from testbed.metrics import metrics_line, scrape, value
from testbed.poll import poll_until
from testbed.redis_server import RedisServer
from testbed.stack import Browser, Stack, UnixHTTPConnection, basic_auth

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
    assert poll_until(condition, seconds=seconds), "timed out"


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


# -- the supervisor itself, with workers small enough to be killed often ----------------


def tiny_worker(directory: Path) -> Worker:
    """A worker that answers each connection with its pid; worker 1, once ``broken``
    is in ``directory``, ends before it serves, as a worker that cannot start would."""

    def run(listener: socket.socket, number: int, ready: Callable[[], None]) -> int:
        if number == 1 and (directory / "broken").exists():
            return 1
        (directory / f"worker{number}.pid").write_text(str(os.getpid()))
        ready()
        while True:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(f"{os.getpid()}\n".encode())

    return run


def supervised(tmp_path: Path, *, first: float, longest: float) -> tuple[int, Path]:
    """A Supervisor of two tiny workers, in a process of its own: its pid, its socket."""
    listen = tmp_path / "supervised.sock"
    body = (
        MINIMAL.replace("[server]\n", f'[server]\nworkers = 2\nlisten = "unix:{listen}"\n', 1)
        + '\n[state]\nredis_url = "redis://127.0.0.1:6379/0"\n'
    )
    settings = load_settings(write_config(tmp_path, body), environ={})
    log = tmp_path / "supervisor.log"
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the supervisor's own process)
        code = 1
        try:
            handler = logging.FileHandler(log)
            logging.getLogger().handlers = [handler]
            logging.getLogger().setLevel(logging.INFO)
            supervisor = Supervisor(
                settings,
                tiny_worker(tmp_path),
                backlog=16,
                first_pause=first,
                longest_pause=longest,
            )
            code = supervisor.supervise()
        finally:
            os._exit(code)
    wait_for(lambda: len(children(pid)) == 2 and answering(listen) is not None)
    return pid, listen


def answering(listen: Path) -> int | None:
    """The pid of the worker that answered, or None."""
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(listen))
            return int(client.recv(64))
    except (OSError, ValueError):
        return None


def replaced(supervisor: int, gone: set[int]) -> bool:
    """Two workers again, none of them one of ``gone``."""
    now = set(children(supervisor))
    return len(now) == 2 and not now & gone


def test_the_pause_before_a_restart_doubles_up_to_the_longest() -> None:
    pauses = [restart_pause(deaths, first=0.5, longest=30) for deaths in range(1, 9)]
    assert pauses == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_workers_that_keep_crashing_are_started_again_for_ever(tmp_path: Path) -> None:
    """Twenty deaths within seconds (the daemon used to give up at the sixth): the
    supervisor starts each worker again, later each time, and the socket keeps answering."""
    supervisor, listen = supervised(tmp_path, first=0.1, longest=0.4)
    try:
        for _ in range(10):
            workers = children(supervisor)
            for worker in workers:
                os.kill(worker, signal.SIGKILL)
            wait_for(functools.partial(replaced, supervisor, set(workers)))
            assert answering(listen) in children(supervisor)
        assert os.waitpid(supervisor, os.WNOHANG) == (0, 0)  # still running
        log = (tmp_path / "supervisor.log").read_text()
        pauses = re.findall(r"starting it again in ([0-9.]+) s", log)
        assert len(pauses) == 20
        assert pauses[:3] == ["0.1", "0.2", "0.4"]  # doubled, up to the longest
        assert set(pauses[3:]) == {"0.4"}
    finally:
        os.kill(supervisor, signal.SIGTERM)
        _, status = os.waitpid(supervisor, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not listen.exists()


def test_a_worker_that_cannot_start_again_stops_them_all_with_a_failure(tmp_path: Path) -> None:
    supervisor, listen = supervised(tmp_path, first=0.01, longest=0.05)
    try:
        (tmp_path / "broken").touch()  # from now on, worker 1 ends before it serves
        os.kill(int((tmp_path / "worker1.pid").read_text()), signal.SIGKILL)
        _, status = os.waitpid(supervisor, 0)
    except BaseException:
        os.kill(supervisor, signal.SIGKILL)
        raise
    assert os.waitstatus_to_exitcode(status) == 1
    log = (tmp_path / "supervisor.log").read_text()
    assert f"ended before it served (code 1), {MAX_START_FAILURES} times in a row" in log
    assert not listen.exists()
