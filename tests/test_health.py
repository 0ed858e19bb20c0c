"""Liveness and readiness, as a load balancer or systemd's watchdog would ask."""

from __future__ import annotations

import time
from collections.abc import Callable

from demo.slapd import Slapd
from tests.stack import Reply, Stack


def until(ask: Callable[[], Reply], status: int, seconds: float = 15.0) -> Reply:
    deadline = time.monotonic() + seconds
    while (reply := ask()).status != status and time.monotonic() < deadline:
        time.sleep(0.1)
    return reply


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
