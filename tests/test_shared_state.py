"""Several nodes, one Redis: bans, logouts and withdrawn guest links agree everywhere,
survive restarts, and an unreachable Redis never stops a login."""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable

import pytest

from demo.ports import free_port
from demo.school import SCHOOL
from demo.slapd import Slapd
from testbed.guests import create_link, enter_as_guest, guest_urls, teacher_browser
from testbed.redis_server import RedisServer
from testbed.stack import Browser, Reply, Stack, basic_auth, binds_of, request

TEACHER = SCHOOL.teachers[1]
PUPIL = SCHOOL.pupils[0]
SESSION = "jitsi_auth_session"

STRICT = """
[regulation]
max_failures_per_user = 3
max_failures_per_address = 1000
ban_time = 900
"""


def state(url: str) -> str:
    return f'\n[state]\nredis_url = "{url}"\n'


def two_nodes(
    slapd: Slapd, make_stack: Callable[..., Stack], redis: RedisServer, extra: str = STRICT
) -> tuple[Stack, Stack]:
    """Two nginx + sidecar pairs of one site (the same keys), sharing one Redis."""
    first = make_stack(slapd, extra=extra + state(redis.url))
    second = make_stack(slapd, extra=extra + state(redis.url), secrets_of=first)
    return first, second


def moved_to(browser: Browser, stack: Stack) -> Browser:
    """The same browser, now sent to another node by the load balancer."""
    moved = Browser(stack)
    moved.cookies = dict(browser.cookies)
    return moved


def enters(browser: Browser, room: str = "/Mathe7b") -> bool:
    return (browser.get(room).header("Location") or "").startswith(f"{room}?jwt=")


def test_a_ban_made_through_one_node_holds_through_the_other(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer
) -> None:
    first, second = two_nodes(slapd, make_stack, redis_server)
    for _ in range(3):
        assert Browser(first).log_in(TEACHER.uid, "guess").status == 401
    before = binds_of(slapd, TEACHER.uid)
    assert Browser(second).log_in(TEACHER.uid, TEACHER.password).status == 429
    banned = second.get("/Mathe7b", {**basic_auth(TEACHER.uid, TEACHER.password)})
    assert banned.status == 429
    assert binds_of(slapd, TEACHER.uid) == before
    # Nobody else is affected, on either node.
    assert Browser(second).log_in(PUPIL.uid, PUPIL.password).status == 302
    assert Browser(first).log_in(PUPIL.uid, PUPIL.password).status == 302


def test_a_logout_through_one_node_ends_the_session_on_the_other(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer
) -> None:
    first, second = two_nodes(slapd, make_stack, redis_server)
    browser = Browser(first)
    assert browser.log_in(PUPIL.uid, PUPIL.password).status == 302
    kept = moved_to(browser, second)  # the same cookie, kept by someone
    assert enters(kept)
    page = browser.get("/auth/logout")
    assert browser.post("/auth/logout", {"csrf_token": browser.csrf_token(page)}).status == 200
    reply = kept.get("/Mathe7b")
    assert reply.status == 302
    assert (reply.header("Location") or "").startswith("/auth/login")


def test_a_link_made_on_one_node_is_withdrawn_through_the_other(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer
) -> None:
    first, second = two_nodes(slapd, make_stack, redis_server)
    teacher = teacher_browser(first)
    path = create_link(teacher, "Mathe7b")
    guest, entered = enter_as_guest(second, path, "Gast")
    assert entered.status == 302
    assert enters(guest)
    # On the other node she sees her link, and withdraws it there.
    elsewhere = moved_to(teacher, second)
    start = elsewhere.get("/auth/?room=Mathe7b")
    assert [url.split("/auth/guest/")[1] for url in guest_urls(start)] == [
        path.removeprefix("/auth/guest/")
    ]
    match = re.search(r'withdraw\?link_id=([^&"]+)', start.body)
    assert match is not None
    withdrawn = elsewhere.post(
        "/auth/guest-links/withdraw",
        {"csrf_token": elsewhere.csrf_token(start), "link_id": match.group(1), "room": "Mathe7b"},
    )
    assert withdrawn.status == 200
    assert "The guest link for Mathe7b is withdrawn." in withdrawn.body
    assert guest_urls(teacher.get("/auth/?room=Mathe7b")) == []
    ended = moved_to(guest, first).get("/Mathe7b")
    assert ended.status == 403
    assert "withdrawn" in Browser(first).get(path).body


def test_bans_and_withdrawals_outlive_a_restart_with_redis(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer
) -> None:
    stack = make_stack(slapd, extra=STRICT + state(redis_server.url))
    for _ in range(3):
        assert Browser(stack).log_in(TEACHER.uid, "guess").status == 401
    teacher = teacher_browser(stack, SCHOOL.teachers[0])
    path = create_link(teacher, "Mathe7b")
    start = teacher.get("/auth/?room=Mathe7b")
    match = re.search(r'withdraw\?link_id=([^&"]+)', start.body)
    assert match is not None
    teacher.post(
        "/auth/guest-links/withdraw",
        {"csrf_token": teacher.csrf_token(start), "link_id": match.group(1)},
    )
    # The state file is gone: what the restarted daemon knows, it knows from Redis.
    (stack.sidecar.config.parent / "guest_links.json").unlink()
    stack.sidecar.stop()
    stack.sidecar.start()
    assert Browser(stack).log_in(TEACHER.uid, TEACHER.password).status == 429
    assert "withdrawn" in Browser(stack).get(path).body


def test_redis_holds_no_names_addresses_or_session_ids(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer
) -> None:
    stack = make_stack(slapd, extra=STRICT + state(redis_server.url))
    browser = Browser(stack)
    browser.log_in(PUPIL.uid, "guess")
    browser.log_in(PUPIL.uid, PUPIL.password)
    page = browser.get("/auth/logout")
    browser.post("/auth/logout", {"csrf_token": browser.csrf_token(page)})
    keys = redis_server.keys()
    assert any(":ban" in key or ":failures" in key or ":known" in key for key in keys), keys
    assert all(key.startswith("jitsi-auth-sidecar:") for key in keys)
    for text in (PUPIL.uid, "127.0.0.1"):
        assert not [key for key in keys if text in key]


def test_an_unreachable_redis_stops_no_login(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer
) -> None:
    """Fail open: bans from this process only, logouts made here still hold, never a 500."""
    metrics_port = free_port()
    stack = make_stack(
        slapd,
        extra=STRICT + state(redis_server.url),
        replace={'public_url = "': f'metrics_listen = "127.0.0.1:{metrics_port}"\npublic_url = "'},
    )
    redis_server.stop()
    browser = Browser(stack)
    assert browser.log_in(PUPIL.uid, PUPIL.password).status == 302
    assert enters(browser)
    assert enters(Browser(stack), "/Mathe7b") is False  # anonymous: the login page
    assert (
        stack.get("/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password)).header("Location") or ""
    ).startswith("/Mathe7b?jwt=")
    # This process's own count still bans.
    for _ in range(3):
        assert Browser(stack).log_in(TEACHER.uid, "guess").status == 401
    assert Browser(stack).log_in(TEACHER.uid, TEACHER.password).status == 429
    # A logout made here holds here.
    cookie = browser.cookies[SESSION]
    page = browser.get("/auth/logout")
    assert browser.post("/auth/logout", {"csrf_token": browser.csrf_token(page)}).status == 200
    browser.cookies[SESSION] = cookie
    assert not enters(browser)
    log = stack.sidecar.log()
    # Logged when it starts, not for every request (Redis is left alone for a while).
    assert 1 <= log.count("Redis unreachable") <= 3, log
    assert " 500 " not in log
    scraped = request(http.client.HTTPConnection("127.0.0.1", metrics_port), "/metrics").body
    errors = re.findall(r'^jitsi_auth_state_errors_total\{operation="\w+"\} (\S+)$', scraped, re.M)
    assert errors, scraped
    assert sum(float(count) for count in errors) >= 5


def link_ids(page: Reply) -> list[str]:
    """The ids of a start page's guest links, as their "withdraw" links name them."""
    return re.findall(r'withdraw\?link_id=([^&"]+)', page.body)


def spoil(redis_server: RedisServer, shape: str) -> int:
    """Every key the sidecars wrote, replaced by one of ``shape`` (a type or value the
    sidecar never writes there); how many."""
    import redis

    client = redis.Redis(unix_socket_path=str(redis_server.socket_path))
    try:
        keys = client.keys("*")
        for key in keys:
            ttl = max(60, client.ttl(key))
            client.delete(key)
            if shape == "list":
                client.rpush(key, "1", "2")
            elif shape == "hash":
                client.hset(key, mapping={"1": "2"})
            elif shape == "huge number":
                client.set(key, "9" * 4000)
            elif shape == "not a number":
                client.set(key, b"\xff{not a number")
            else:
                client.zadd(key, {"x": 1e300})
            client.expire(key, ttl)
        return len(keys)
    finally:
        client.close()


@pytest.mark.parametrize("shape", ["list", "hash", "huge number", "not a number", "sorted set"])
def test_redis_answers_of_the_wrong_type_are_an_outage_not_a_500(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer, shape: str
) -> None:
    """Whatever Redis holds, every path answers as it does without Redis."""
    stack = make_stack(slapd, extra=STRICT + state(redis_server.url))
    teacher = teacher_browser(stack, SCHOOL.teachers[0])
    path = create_link(teacher, "Mathe7b")
    withdrawn = create_link(teacher, "Physik9a")
    start = teacher.get("/auth/?room=Physik9a")
    ids = link_ids(start)
    csrf = teacher.csrf_token(start)
    pupil = Browser(stack)
    assert pupil.log_in(PUPIL.uid, PUPIL.password).status == 302
    logged_out = Browser(stack)
    assert logged_out.log_in(PUPIL.uid, PUPIL.password).status == 302
    ended_cookie = logged_out.cookies[SESSION]
    page = logged_out.get("/auth/logout")
    logged_out.post("/auth/logout", {"csrf_token": logged_out.csrf_token(page)})
    for link_id in ids:  # the Physik9a link (and the Mathe7b one, which is made again)
        teacher.post("/auth/guest-links/withdraw", {"csrf_token": csrf, "link_id": link_id})
    path = create_link(teacher, "Mathe7b")
    assert Browser(stack).log_in(TEACHER.uid, "guess").status == 401
    assert spoil(redis_server, shape) >= 8

    # Logins: form, Basic, wrong password, the ban still counted here.
    assert Browser(stack).log_in(PUPIL.uid, PUPIL.password).status == 302
    assert (
        stack.get("/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password)).header("Location") or ""
    ).startswith("/Mathe7b?jwt=")
    assert Browser(stack).log_in(TEACHER.uid, "guess").status == 401
    assert Browser(stack).log_in(TEACHER.uid, "guess").status == 401
    assert Browser(stack).log_in(TEACHER.uid, TEACHER.password).status == 429
    banned = stack.get("/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password))
    assert banned.status == 429
    assert "15 Minuten" in banned.body
    # Sessions: a current one enters, an ended one does not.
    assert enters(pupil)
    logged_out.cookies[SESSION] = ended_cookie
    assert not enters(logged_out)
    # Guest links: open, entered, listed, a withdrawn one stays withdrawn, made, withdrawn.
    guest, entered = enter_as_guest(stack, path, "Gast")
    assert entered.status == 302
    assert enters(guest)
    assert "withdrawn" in Browser(stack).get(withdrawn).body
    assert guest_urls(teacher.get("/auth/?room=Mathe7b"))
    before = set(link_ids(teacher.get("/auth/?room=Chemie")))
    create_link(teacher, "Chemie")
    start = teacher.get("/auth/?room=Chemie")
    (chemie,) = set(link_ids(start)) - before
    reply = teacher.post(
        "/auth/guest-links/withdraw",
        {"csrf_token": teacher.csrf_token(start), "link_id": chemie, "room": "Chemie"},
    )
    assert reply.status == 200
    assert "The guest link for Chemie is withdrawn." in reply.body
    assert set(link_ids(teacher.get("/auth/?room=Chemie"))) == before
    # Logout.
    page = pupil.get("/auth/logout")
    assert pupil.post("/auth/logout", {"csrf_token": pupil.csrf_token(page)}).status == 200
    log = stack.sidecar.log()
    assert " 500 " not in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


def test_guest_limits_hold_for_the_site_not_per_node(
    slapd: Slapd, make_stack: Callable[..., Stack], redis_server: RedisServer
) -> None:
    """Links per teacher and guest names per address, asked for through two nodes in
    turn: the limit for the site, not the limit times the nodes."""
    limit = {"[guests]\n": "[guests]\nmax_per_address = 4\n"}
    first = make_stack(slapd, extra=STRICT + state(redis_server.url), replace=limit)
    second = make_stack(
        slapd, extra=STRICT + state(redis_server.url), replace=limit, secrets_of=first
    )
    teacher = teacher_browser(first)
    made = []
    for number in range(8):
        browser = teacher if number % 2 == 0 else moved_to(teacher, second)
        page = browser.get("/auth/")
        form = {"csrf_token": browser.csrf_token(page), "room": f"Raum{number}", "days": "1"}
        made.append(browser.post("/auth/guest-links", form).status)
    assert made == [302] * 4 + [429] * 4
    (url, *_) = guest_urls(teacher.get("/auth/"))
    path = url.split("/auth", 1)[1]
    entered = [
        enter_as_guest((first, second)[number % 2], f"/auth{path}", f"Gast {number}")[1].status
        for number in range(8)
    ]
    assert entered == [302] * 4 + [429] * 4
