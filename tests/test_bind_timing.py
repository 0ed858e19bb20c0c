"""The durations an unknown name waits: drawn from recent binds, never exactly one of them."""

from __future__ import annotations

from sidecar.ldap.bind_timing import FIRST_GUESS_SECONDS, JITTER, RECENT_BINDS, BindTimings


def test_before_any_bind_a_first_guess() -> None:
    drawn = [BindTimings().draw() for _ in range(50)]
    assert all(
        FIRST_GUESS_SECONDS * (1 - JITTER) <= value <= FIRST_GUESS_SECONDS * (1 + JITTER)
        for value in drawn
    )


def test_draws_follow_the_recent_binds_with_jitter() -> None:
    timings = BindTimings()
    for _ in range(RECENT_BINDS):
        timings.record(1.0)  # old binds, pushed out below
    for seconds in (0.004, 0.008):
        for _ in range(RECENT_BINDS // 2):
            timings.record(seconds)
    drawn = [timings.draw() for _ in range(400)]
    assert all(0.004 * (1 - JITTER) <= value <= 0.008 * (1 + JITTER) for value in drawn)
    assert any(value < 0.006 for value in drawn)
    assert any(value > 0.006 for value in drawn)
    assert len(set(drawn)) > 300  # jitter: not just the two recorded values
