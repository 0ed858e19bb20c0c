"""A benchmark or soak run that gets SIGTERM stops what it started, as Ctrl-C does."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

RUN = textwrap.dedent(
    """
    import signal, sys, time
    from demo.processes import stop_on_sigterm
    if sys.argv[1] == "background":
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell's `&` leaves it
    stop_on_sigterm()
    try:
        print("running", flush=True)
        time.sleep(60)
    finally:
        print("servers stopped", flush=True)
    """
)


@pytest.mark.parametrize("started", ["foreground", "background"])
def test_sigterm_runs_the_way_out(started: str) -> None:
    run = subprocess.Popen(
        [sys.executable, "-c", RUN, started],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    assert run.stdout.readline() == "running\n"
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=30)
    assert out == "servers stopped\n"
    assert "KeyboardInterrupt" in err
