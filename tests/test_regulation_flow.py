"""Flow 7: too many failures -> "try again in N minutes", checked before any bind."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sidecar.demo.school import SCHOOL
from sidecar.demo.slapd import Slapd
from tests.stack import Browser, Stack, basic_auth, binds_of

TEACHER = SCHOOL.teachers[1]
PUPIL = SCHOOL.pupils[0]

REGULATION = """
[regulation]
max_failures_per_user = 3
max_failures_per_address = 1000
window = 600
ban_time = {ban_time}
"""


def test_form_ban_blocks_even_the_right_password_without_a_bind(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd, extra=REGULATION.format(ban_time=900))
    for _ in range(3):
        assert Browser(stack).log_in(TEACHER.uid, "guess").status == 401
    before = binds_of(slapd, TEACHER.uid)
    banned = Browser(stack).log_in(TEACHER.uid, TEACHER.password)
    assert banned.status == 429
    assert "Please try again in 15 minutes." in banned.body
    assert banned.header("Retry-After") == "900"
    german = Browser(stack, "de").log_in(TEACHER.uid, TEACHER.password)
    assert "Bitte in 15 Minuten noch einmal versuchen." in german.body
    # Basic is banned alike, and shows the same page (429) through nginx.
    reply = stack.get(
        "/Mathe7b", {**basic_auth(TEACHER.uid, TEACHER.password), "Accept-Language": "en"}
    )
    assert reply.status == 429
    assert "try again in 15 minutes" in reply.body
    assert binds_of(slapd, TEACHER.uid) == before
    # Another person is not affected.
    assert Browser(stack).log_in(PUPIL.uid, PUPIL.password).status == 302


def test_unknown_user_counts_like_a_wrong_password(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd, extra=REGULATION.format(ban_time=900))
    for _ in range(3):
        assert Browser(stack).log_in("no.such.user", "guess").status == 401
    assert Browser(stack).log_in("no.such.user", "guess").status == 429


def test_address_ban(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    extra = "[regulation]\nmax_failures_per_user = 100\nmax_failures_per_address = 4\n"
    stack = make_stack(slapd, extra=extra)
    for number in range(4):
        assert Browser(stack).log_in(f"sprayed.name{number}", "guess").status == 401
    # From the same address (127.0.0.1, as nginx's X-Real-IP says), even a
    # right password waits.
    assert Browser(stack).log_in(PUPIL.uid, PUPIL.password).status == 429


def test_ban_expires(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(slapd, extra=REGULATION.format(ban_time=2))
    for _ in range(3):
        stack.get("/Mathe7b", basic_auth(TEACHER.uid, "guess"))
    assert stack.get("/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password)).status == 429
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        reply = stack.get("/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password))
        if reply.status != 429:
            break
        time.sleep(0.2)
    assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")


def test_failures_are_never_cached(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(slapd)
    before = binds_of(slapd, PUPIL.uid)
    for _ in range(3):
        assert stack.get("/Mathe7b", basic_auth(PUPIL.uid, "wrong")).status == 401
    assert binds_of(slapd, PUPIL.uid) == before + 3


def test_good_basic_credentials_are_cached(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(slapd)
    before = binds_of(slapd, PUPIL.uid)
    for _ in range(5):
        reply = stack.get("/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password))
        assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")
    assert binds_of(slapd, PUPIL.uid) == before + 1


def test_parallel_guesses_cannot_pass_the_limit(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd, extra=REGULATION.format(ban_time=900))
    victim = SCHOOL.pupils[2]
    before = binds_of(slapd, victim.uid)

    def guess(number: int) -> int:
        return stack.get("/Mathe7b", basic_auth(victim.uid, f"guess-{number}")).status

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(guess, range(40)))
    assert 500 not in statuses
    assert binds_of(slapd, victim.uid) - before <= 3  # max_failures_per_user
    assert statuses.count(429) >= 37


def test_address_ban_through_basic(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    extra = "[regulation]\nmax_failures_per_user = 100\nmax_failures_per_address = 3\n"
    stack = make_stack(slapd, extra=extra)
    for number in range(3):
        assert stack.get("/Mathe7b", basic_auth(f"sprayed{number}", "guess")).status == 401
    assert stack.get("/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password)).status == 429
