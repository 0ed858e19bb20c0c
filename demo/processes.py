"""Ending the demo's child processes: politely, then firmly."""

from __future__ import annotations

import signal
import subprocess
from types import FrameType


def terminate(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; nothing is left running."""
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_on_sigterm() -> None:
    """SIGTERM stops a run as Ctrl-C does, so that every server it started is
    stopped on the way out (``kill`` of a benchmark or soak run left slapd,
    nginx and the sidecar running)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            raise KeyboardInterrupt  # started in the background: Ctrl-C is ignored
        # Through SIGINT's own handler: within asyncio.run, it cancels the task cleanly.
        signal.raise_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, interrupt)
