"""Failure counting and bans, with a clock the test moves by hand."""

from __future__ import annotations

import pytest

from sidecar.config import RegulationSettings
from sidecar.regulation import Regulator

PER_USER = 3
PER_ADDRESS = 5
WINDOW = 600
BAN_TIME = 900


class Clock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_regulator(clock: Clock, *, ban_time: int = BAN_TIME) -> Regulator:
    settings = RegulationSettings(
        max_failures_per_user=PER_USER,
        max_failures_per_address=PER_ADDRESS,
        window=WINDOW,
        ban_time=ban_time,
    )
    return Regulator(settings, clock=clock)


@pytest.fixture
def regulator(clock: Clock) -> Regulator:
    return make_regulator(clock)


def test_nobody_is_banned_at_first(regulator: Regulator) -> None:
    assert regulator.banned_for("anna", "192.0.2.1") == 0


def test_a_name_is_banned_after_its_limit_of_failures(regulator: Regulator) -> None:
    for address in ("192.0.2.1", "192.0.2.2"):
        regulator.failed("anna", address)
    assert regulator.banned_for("anna", "192.0.2.9") == 0
    regulator.failed("anna", "192.0.2.3")
    # The name is banned from everywhere; other names from the same addresses are not.
    assert regulator.banned_for("anna", "192.0.2.9") == BAN_TIME
    assert regulator.banned_for("bert", "192.0.2.1") == 0


def test_names_are_counted_case_insensitively(regulator: Regulator) -> None:
    regulator.failed("Anna", "192.0.2.1")
    regulator.failed("anna", "192.0.2.2")
    assert regulator.banned_for("ANNA", "192.0.2.3") == 0
    regulator.failed("ANNA", "192.0.2.3")
    assert regulator.banned_for("aNNa", "192.0.2.4") == BAN_TIME


def test_an_address_is_banned_after_its_limit_across_names(regulator: Regulator) -> None:
    for number in range(PER_ADDRESS - 1):
        regulator.failed(f"user{number}", "192.0.2.1")
    assert regulator.banned_for("someone", "192.0.2.1") == 0
    regulator.failed("user-last", "192.0.2.1")
    # Every name from that address is banned; the names themselves are not.
    assert regulator.banned_for("someone", "192.0.2.1") == BAN_TIME
    assert regulator.banned_for("user0", "192.0.2.2") == 0


def test_addresses_are_counted_apart(regulator: Regulator) -> None:
    for number in range(PER_ADDRESS - 1):
        regulator.failed(f"user{number}", "192.0.2.1")
        regulator.failed(f"user{number}", "192.0.2.2")
    assert regulator.banned_for("someone", "192.0.2.1") == 0
    assert regulator.banned_for("someone", "192.0.2.2") == 0


def test_a_ban_counts_down_and_ends(regulator: Regulator, clock: Clock) -> None:
    for _ in range(PER_USER):
        regulator.failed("anna", "192.0.2.1")
    clock.advance(100)
    assert regulator.banned_for("anna", "192.0.2.1") == BAN_TIME - 100
    clock.advance(BAN_TIME - 101)
    assert regulator.banned_for("anna", "192.0.2.1") == 1
    clock.advance(0.5)
    assert regulator.banned_for("anna", "192.0.2.1") == 0.5
    clock.advance(0.5)
    assert regulator.banned_for("anna", "192.0.2.1") == 0


def test_after_a_ban_the_count_starts_again(clock: Clock) -> None:
    # A ban shorter than the window: the failures before it are still in the
    # window when it ends, and must not ban again at the next mistake.
    regulator = make_regulator(clock, ban_time=60)
    for number in range(PER_USER):
        regulator.failed("anna", f"192.0.2.{number}")
    clock.advance(60)
    assert regulator.banned_for("anna", "192.0.2.99") == 0
    regulator.failed("anna", "192.0.2.10")
    assert regulator.banned_for("anna", "192.0.2.99") == 0
    for number in range(PER_USER - 1):
        regulator.failed("anna", f"192.0.2.{20 + number}")
    assert regulator.banned_for("anna", "192.0.2.99") == 60


def test_failures_older_than_the_window_do_not_count(regulator: Regulator, clock: Clock) -> None:
    regulator.failed("anna", "192.0.2.1")  # at 0
    clock.advance(300)
    regulator.failed("anna", "192.0.2.1")  # at 300
    clock.advance(300)
    regulator.failed("anna", "192.0.2.1")  # at 600: the first one has left the window
    assert regulator.banned_for("anna", "192.0.2.1") == 0
    clock.advance(WINDOW - 301)
    regulator.failed("anna", "192.0.2.1")  # at 899: 300, 600 and 899 are in the window
    assert regulator.banned_for("anna", "192.0.2.1") == BAN_TIME


def test_a_failure_counts_until_the_window_has_passed(regulator: Regulator, clock: Clock) -> None:
    regulator.failed("anna", "192.0.2.1")
    regulator.failed("anna", "192.0.2.1")
    clock.advance(WINDOW - 1)
    regulator.failed("anna", "192.0.2.1")
    assert regulator.banned_for("anna", "192.0.2.1") == BAN_TIME


def test_a_quiet_name_is_forgotten_after_the_window(regulator: Regulator, clock: Clock) -> None:
    for _ in range(PER_USER - 1):
        regulator.failed("anna", "192.0.2.1")
    clock.advance(WINDOW)
    regulator.failed("anna", "192.0.2.1")
    regulator.failed("anna", "192.0.2.1")
    assert regulator.banned_for("anna", "192.0.2.1") == 0


def test_the_address_window_slides_too(regulator: Regulator, clock: Clock) -> None:
    for number in range(PER_ADDRESS - 1):
        regulator.failed(f"user{number}", "192.0.2.1")
    clock.advance(WINDOW)
    regulator.failed("late", "192.0.2.1")
    assert regulator.banned_for("someone", "192.0.2.1") == 0


def test_success_clears_the_name_but_not_the_address(regulator: Regulator) -> None:
    for _ in range(PER_USER - 1):
        regulator.failed("anna", "192.0.2.1")
    regulator.succeeded("ANNA")
    for _ in range(PER_USER - 1):
        regulator.failed("anna", "192.0.2.1")
    # Two failures since the success: the name is not banned.
    assert regulator.banned_for("anna", "192.0.2.2") == 0
    # The address has counted all four, and one more reaches its limit.
    assert regulator.banned_for("bert", "192.0.2.1") == 0
    regulator.failed("bert", "192.0.2.1")
    assert regulator.banned_for("carl", "192.0.2.1") == BAN_TIME
    assert regulator.banned_for("anna", "192.0.2.2") == 0


def test_an_empty_address_is_not_tracked(regulator: Regulator) -> None:
    for number in range(PER_ADDRESS * 2):
        regulator.failed(f"user{number}", "")
    assert regulator.banned_for("someone", "") == 0
    # The names themselves are still counted.
    for _ in range(PER_USER):
        regulator.failed("anna", "")
    assert regulator.banned_for("anna", "") == BAN_TIME


def test_unicode_lookalike_names_count_as_one() -> None:
    """slapd matches a fullwidth t in "tom" to "tom" (NFKC); so must the ban."""
    clock = [1000.0]
    regulator = Regulator(
        RegulationSettings(
            max_failures_per_user=2, max_failures_per_address=100, window=60, ban_time=60
        ),
        clock=lambda: clock[0],
    )
    regulator.failed("tom.berger", "")
    regulator.failed("\uff34om.berger", "")
    assert regulator.banned_for("tom.berger", "") > 0
    assert regulator.banned_for("\uff54om.berger", "") > 0
