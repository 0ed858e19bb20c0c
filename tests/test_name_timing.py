"""An unknown user name costs as much time as a wrong password (through nginx).

Not a speed test: the two kinds of failure are sent interleaved, in the same
run, and only their distributions are compared. Before the fix an unknown
name was answered without a bind and came back faster nearly every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from demo.school import SCHOOL
from demo.slapd import Slapd
from tests.stack import Browser, Stack, basic_auth

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


def test_basic_unknown_name_and_wrong_password_take_as_long(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd)
    unknown_times, wrong_times = measure(
        lambda n: stack.get("/Mathe7b", basic_auth(f"nobody.{n}", "guess")).status,
        lambda n: stack.get("/Mathe7b", basic_auth(PUPIL.uid, f"guess-{n}")).status,
        401,
    )
    share = faster_share(unknown_times, wrong_times)
    assert 1 - MOST_UNEQUAL < share < MOST_UNEQUAL, share


def test_form_unknown_name_and_wrong_password_take_as_long(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd)
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
