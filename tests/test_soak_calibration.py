"""The soak's rate: which open-loop step counts as kept up, read from the result the
load itself writes (``soak.load.Recorder``), and the report line that says how
the rate was found."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from soak import calibration
from soak.calibration import Step, step_of, sustainable
from soak.load import CACHED_BASIC, NEW_BASIC, Recorder
from soak.report import _calibration

STARTED = 1000.0
SECONDS = 10.0
RATE = 50.0


def result_of(
    per_second: int,
    *,
    cheap_seconds: float = 0.002,
    status: str = "200",
    not_sent: int = 0,
    seconds: float = SECONDS,
) -> dict[str, Any]:
    """A load's result: ``per_second`` answers in each second of the step (a tenth of
    them needing the directory, which may be slow without counting against the step)."""
    record = Recorder()
    for second in range(int(STARTED), int(STARTED + seconds)):
        # The recorder files each answer under the second its clock reads.
        with mock.patch("soak.load.time.monotonic", return_value=second + 0.5):
            for number in range(per_second):
                kind = NEW_BASIC if number % 10 == 0 else CACHED_BASIC
                record.count(kind, status, 2.0 if kind == NEW_BASIC else cheap_seconds)
    if not_sent:
        record.not_sent[int(STARTED) + 1] = not_sent
    return {"started": STARTED, "ended": STARTED + seconds, **record.as_json()}


def test_a_step_answered_in_time_kept_up() -> None:
    # A tenth of the answers take 2 s (logins, never judged): a queue shows in the cheap ones.
    step = step_of(result_of(50), RATE, SECONDS)
    assert step.answers == 500
    assert step.failures == 0
    assert step.not_sent == 0
    assert step.p99_ms is not None
    assert step.p99_ms < 5
    assert step.kept_up


@pytest.mark.parametrize(
    ("why", "result"),
    [
        ("fewer answers than scheduled", result_of(40)),
        ("answers outside what the include lets through", result_of(50, status="502")),
        ("requests the load could not send", result_of(50, not_sent=1)),
        ("cheap requests that waited", result_of(50, cheap_seconds=0.3)),
    ],
)
def test_a_step_that_fell_behind_did_not_keep_up(why: str, result: dict[str, Any]) -> None:
    assert not step_of(result, RATE, SECONDS).kept_up, why


def test_answers_after_the_step_are_not_counted() -> None:
    result = result_of(50, seconds=SECONDS + 5)
    assert step_of(result, RATE, SECONDS).answers == 500


def test_the_sustainable_rate_is_the_highest_step_kept_up() -> None:
    def step(rate: float, kept_up: bool) -> Step:
        p99 = 1.0 if kept_up else calibration.KEPT_UP_P99_MS * 2
        return Step(rate, SECONDS, round(rate * SECONDS), 0, 0, p99)

    assert sustainable([step(900, False), step(800, True)]) == 800
    assert sustainable([step(900, True), step(800, True)]) == 900
    assert sustainable([step(900, False), step(800, False)]) is None
    assert sustainable([]) is None


def test_the_report_says_how_the_rate_was_found() -> None:
    steps = [
        {"req/s": 1_557, "kept up": False},
        {"req/s": 1_384, "kept up": True},
    ]
    found = {
        "closed-loop req/s": 1_730,
        "open-loop steps": steps,
        "sustainable req/s": 1_384,
        "soak rate req/s": 692,
    }
    line = _calibration(found)
    assert "half of 1,384 req/s" in line
    assert "1,557 did not" in line
    assert "1,384 kept up" in line
    assert "1,730" in line
    none = found | {"sustainable req/s": None, "open-loop steps": steps[:1]}
    assert "none kept up" in _calibration(none)
    assert _calibration({"soak rate req/s": 20}) == ""
