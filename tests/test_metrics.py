"""Prometheus metrics on their own listener: what the admin's alerts count."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from pathlib import Path

from demo.jitsi_http import JitsiHttp
from demo.ports import free_port
from demo.run import classroom_config
from demo.school import SCHOOL
from demo.slapd import Slapd
from testbed.metrics import Samples, metrics_line, scrape, value
from testbed.stack import Browser, Stack, UnixHTTPConnection, basic_auth

TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[0]
GUESSER = SCHOOL.teachers[1]
REGULATION = """
[regulation]
max_failures_per_user = 2
max_failures_per_address = 1000
"""


def test_what_happened_is_counted(
    slapd: Slapd, make_stack: Callable[..., Stack], jitsi: JitsiHttp
) -> None:
    port = free_port()
    stack = make_stack(
        slapd,
        extra=REGULATION + classroom_config(jitsi),
        replace=metrics_line(f"127.0.0.1:{port}"),
    )

    def metrics() -> Samples:
        return scrape(http.client.HTTPConnection("127.0.0.1", port, timeout=10))

    before = metrics()
    assert value(before, "jitsi_auth_decisions_total", outcome="token") == 0
    teacher = basic_auth(TEACHER.uid, TEACHER.password)
    assert stack.get("/Mathe7b", teacher).status == 302
    assert stack.get("/Mathe7b", teacher).status == 302  # from the credential cache
    for _ in range(2):
        assert stack.get("/Mathe7b", basic_auth(GUESSER.uid, "guess")).status == 401
    assert stack.get("/Mathe7b", basic_auth(GUESSER.uid, GUESSER.password)).status == 429
    pupil = Browser(stack)
    assert pupil.log_in(PUPIL.uid, PUPIL.password).status == 302
    assert pupil.get("/Mathe7b").status == 200  # waiting: the room is not open

    after = metrics()
    decisions = "jitsi_auth_decisions_total"
    assert value(after, decisions, outcome="token", method="basic", role="teacher") == 2
    assert value(after, decisions, outcome="challenge", method="basic", role="-") == 2
    assert value(after, decisions, outcome="banned", method="basic", role="-") == 1
    assert value(after, decisions, outcome="waiting", method="session", role="pupil") == 1
    assert value(after, "jitsi_auth_logins_total", outcome="ok") == 1
    assert value(after, "jitsi_auth_credential_cache_total", result="hit") == 1
    assert value(after, "jitsi_auth_credential_cache_total", result="miss") >= 3
    assert value(after, "jitsi_auth_bans_total", scope="user") == 1
    assert value(after, "jitsi_auth_tokens_minted_total", role="teacher") == 2
    assert value(after, "jitsi_auth_room_size_checks_total", result="closed") == 1
    ldap = "jitsi_auth_ldap_operations_total"
    assert value(after, ldap, operation="bind", result="ok") == 2  # teacher, pupil
    assert value(after, ldap, operation="bind", result="invalid") == 2
    assert value(after, ldap, operation="search", result="ok") >= 4
    assert value(after, "jitsi_auth_ldap_seconds_count", operation="bind") == 4
    assert ("jitsi_auth_ldap_pool_in_use", frozenset()) in after


def test_metrics_are_never_served_through_the_include(
    slapd: Slapd, make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    socket_path = tmp_path / "metrics.sock"
    stack = make_stack(slapd, replace=metrics_line(f"unix:{socket_path}"))
    samples = scrape(UnixHTTPConnection(socket_path))
    assert ("jitsi_auth_ldap_pool_in_use", frozenset()) in samples
    assert socket_path.stat().st_mode & 0o777 == 0o660
    for path in ("/metrics", "/auth/metrics", "/auth/../metrics", "/auth/verify/../metrics"):
        reply = stack.get(path)
        assert "jitsi_auth_" not in reply.body, path
