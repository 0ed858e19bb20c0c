"""Redis keys bounded by time, not by the number of logins (a real redis-server).

Every login remembers its place, every logout its session: kept per person and
per session as long as they can matter, never one key per login for 30 days.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.regulation_store import MAX_KNOWN_PLACES_PER_PERSON
from sidecar.shared_state import digest
from testbed.configs import LENIENT_REGULATION
from testbed.redis_server import RedisServer
from testbed.stack import Browser, Stack

PUPIL = SCHOOL.pupils[1]
TEACHER = SCHOOL.teachers[0]
PLACES = MAX_KNOWN_PLACES_PER_PERSON + 8
IDLE_TIMEOUT = 3600
KNOWN_LIFETIME = 30 * 86400


def redis_stack(slapd: Slapd, make_stack: Callable[..., Stack], server: RedisServer) -> Stack:
    state = f'\n[state]\nredis_url = "{server.url}"\n'
    sessions = f"idle_timeout = {IDLE_TIMEOUT}\n"
    return make_stack(
        slapd, extra=LENIENT_REGULATION + state, replace={"[sessions]\n": "[sessions]\n" + sessions}
    )


def client(server: RedisServer) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(server.socket_path))


def keys_of(connection: redis.Redis, kind: str) -> list[bytes]:
    return [key for key in connection.scan_iter() if f":{kind}:".encode() in key]


def test_her_known_places_are_one_capped_set_not_a_key_per_login(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer
) -> None:
    stack = redis_stack(slapd, make_stack, redis_server)
    for number in range(PLACES):
        reply = Browser(stack, source=f"127.0.1.{number + 1}").log_in(PUPIL.uid, PUPIL.password)
        assert reply.status == 302
    connection = client(redis_server)
    known = keys_of(connection, "known") + keys_of(connection, "known-places")
    # One set for her name and one for her directory entry, whatever the logins.
    assert len(known) <= 2, known
    for key in known:
        assert connection.type(key) == b"zset"
        assert connection.zcard(key) == MAX_KNOWN_PLACES_PER_PERSON
        assert 0 < connection.ttl(key) <= KNOWN_LIFETIME
    # The places she came from last are the ones kept, the first ones forgotten.
    assert known
    for key in known:
        places = set(connection.zrange(key, 0, -1))
        assert digest(f"127.0.1.{PLACES}").encode() in places
        assert digest("127.0.1.1").encode() not in places


def test_a_logout_is_kept_only_while_the_session_could_still_open(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer
) -> None:
    """An ended session's mark lives no longer than the session could have: with
    idle_timeout at an hour, an hour, not the 12 hours of sessions.lifetime."""
    stack = redis_stack(slapd, make_stack, redis_server)
    cycles = 20
    for _ in range(cycles):
        browser = Browser(stack)
        assert browser.log_in(TEACHER.uid, TEACHER.password).status == 302
        page = browser.get("/auth/logout")
        assert browser.post("/auth/logout", {"csrf_token": browser.csrf_token(page)}).status == 200
    connection = client(redis_server)
    ended = keys_of(connection, "ended-session")
    assert len(ended) == cycles
    for key in ended:
        assert 0 < connection.ttl(key) <= IDLE_TIMEOUT
