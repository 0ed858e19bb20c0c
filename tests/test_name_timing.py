"""An unknown user name costs as much time as a wrong password (through nginx).

Not a speed test: the two kinds of failure are sent interleaved, in the same
run, and only their distributions are compared. Before the fix an unknown
name was answered without a bind and came back faster nearly every time.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demo.school import SCHOOL
from demo.slapd import Slapd
from testbed.configs import LENIENT_REGULATION as LENIENT
from testbed.redis_server import RedisServer
from testbed.stack import Browser, Stack, basic_auth

PUPIL = SCHOOL.pupils[0]
ROUNDS = 60
# How often an unknown name may come back faster than a wrong password: about
# half the time when both cost the same, nearly always (> 0.9) without the fix.
MOST_UNEQUAL = 0.8


def faster_share(unknown: list[float], wrong: list[float]) -> float:
    """P(unknown < wrong) over all pairs (the Mann-Whitney statistic, scaled to 0..1)."""
    wins = sum(1.0 if a < b else 0.5 if a == b else 0.0 for a in unknown for b in wrong)
    return wins / (len(unknown) * len(wrong))


def timed(send: Callable[[int], int], number: int, expected: int) -> float:
    started = time.perf_counter()
    status = send(number)
    elapsed = time.perf_counter() - started
    assert status == expected
    return elapsed


def measure(
    unknown: Callable[[int], int], wrong: Callable[[int], int], expected: int
) -> tuple[list[float], list[float]]:
    # Warm both paths (connections, the bind timings) before counting.
    for number in range(5):
        unknown(number)
        wrong(number)
    unknown_times: list[float] = []
    wrong_times: list[float] = []
    for number in range(ROUNDS):
        unknown_times.append(timed(unknown, number, expected))
        wrong_times.append(timed(wrong, number, expected))
    return unknown_times, wrong_times


@pytest.fixture(params=["memory", "redis"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The ``[state]`` section: none (each sidecar counts alone), or a real redis-server."""
    if request.param == "memory":
        yield ""
        return
    with RedisServer(tmp_path / "redis") as server:
        yield f'\n[state]\nredis_url = "{server.url}"\n'


def test_basic_unknown_name_and_wrong_password_take_as_long(
    slapd: Slapd, make_stack: Callable[..., Stack], state: str
) -> None:
    stack = make_stack(slapd, extra=LENIENT + state)
    unknown_times, wrong_times = measure(
        lambda n: stack.get("/Mathe7b", basic_auth(f"nobody.{n}", "guess")).status,
        lambda n: stack.get("/Mathe7b", basic_auth(PUPIL.uid, f"guess-{n}")).status,
        401,
    )
    share = faster_share(unknown_times, wrong_times)
    assert 1 - MOST_UNEQUAL < share < MOST_UNEQUAL, share


def test_form_unknown_name_and_wrong_password_take_as_long(
    slapd: Slapd, make_stack: Callable[..., Stack], state: str
) -> None:
    stack = make_stack(slapd, extra=LENIENT + state)
    browser = Browser(stack)
    page = browser.get("/auth/login?next=%2FMathe7b")
    token = browser.csrf_token(page)

    def post(username: str, password: str) -> int:
        form = {"csrf_token": token, "next": "/Mathe7b", "username": username}
        return browser.post("/auth/login", {**form, "password": password}).status

    unknown_times, wrong_times = measure(
        lambda n: post(f"nobody.{n}", "guess"), lambda n: post(PUPIL.uid, f"guess-{n}"), 401
    )
    share = faster_share(unknown_times, wrong_times)
    assert 1 - MOST_UNEQUAL < share < MOST_UNEQUAL, share


# -- the same Redis commands, in the same order (deterministic) ----------------

_COMMAND = re.compile(r'^\+[0-9.]+ \[[^\]]*\] "([a-z]+)"')


class RedisMonitor:
    """The commands a real redis-server carries out, as ``MONITOR`` reports them."""

    def __init__(self, server: RedisServer) -> None:
        self._server = server
        self._socket = socket.socket(socket.AF_UNIX)
        self._socket.settimeout(20)
        self._socket.connect(str(server.socket_path))
        self._socket.sendall(b"MONITOR\r\n")
        self._buffer = b""
        assert self._line() == "+OK"
        self._marker = 0

    def _line(self) -> str:
        while b"\r\n" not in self._buffer:
            chunk = self._socket.recv(65536)
            assert chunk, "redis-server closed the monitor"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def commands(self) -> list[str]:
        """The commands since the last call: everything before a marker sent now."""
        self._marker += 1
        marker = f"marker-{self._marker}"
        with socket.socket(socket.AF_UNIX) as other:
            other.settimeout(20)
            other.connect(str(self._server.socket_path))
            other.sendall(f"ECHO {marker}\r\n".encode())
            other.recv(1024)
        seen: list[str] = []
        while True:
            line = self._line()
            if marker in line and '"echo"' in line.lower():
                return seen
            matched = _COMMAND.match(line.lower())
            if matched:
                seen.append(matched.group(1))

    def close(self) -> None:
        self._socket.close()


@pytest.mark.parametrize("method", ["basic", "form"])
def test_unknown_name_and_wrong_password_send_redis_the_same_commands(
    slapd: Slapd, make_stack: Callable[..., Stack], tmp_path: Path, method: str
) -> None:
    """Counted, not timed: each Redis round trip costs time an attacker can see."""
    with RedisServer(tmp_path / "redis") as server:
        stack = make_stack(slapd, extra=LENIENT + f'\n[state]\nredis_url = "{server.url}"\n')
        browser = Browser(stack)
        page = browser.get("/auth/login?next=%2FMathe7b")
        token = browser.csrf_token(page)

        def send(username: str, password: str) -> int:
            if method == "basic":
                return stack.get("/Mathe7b", basic_auth(username, password)).status
            form = {"csrf_token": token, "next": "/Mathe7b", "username": username}
            return browser.post("/auth/login", {**form, "password": password}).status

        # Warm: connections made, the name's directory entry learnt as it is after a first try.
        assert send("nobody.warm", "guess") == 401
        assert send(PUPIL.uid, "guess-warm") == 401
        monitor = RedisMonitor(server)
        try:
            for number in range(3):
                monitor.commands()
                assert send(f"nobody.{number}", "guess") == 401
                unknown = monitor.commands()
                assert send(PUPIL.uid, f"guess-{number}") == 401
                wrong = monitor.commands()
                assert unknown, "no Redis command at all: not the path under test"
                assert unknown == wrong, f"{unknown}\n{wrong}"
        finally:
            monitor.close()
