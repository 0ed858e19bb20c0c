"""Waiting for something that happens in another process: ask again until it
holds or a deadline passes. Never a sleep of a guessed length: a loaded
machine is slow, and the deadline only bounds how long a failure takes."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import TypeVar

Answer = TypeVar("Answer")

POLL_INTERVAL = 0.05


def poll_until(
    ask: Callable[[], Answer],
    done: Callable[[Answer], object] = bool,
    *,
    seconds: float = 20.0,
    interval: float = POLL_INTERVAL,
) -> Answer:
    """``ask()`` again and again until ``done`` holds for its answer or ``seconds`` have
    passed; the last answer either way, for the caller's assertion to judge."""
    deadline = time.monotonic() + seconds
    while True:
        answer = ask()
        if done(answer) or time.monotonic() >= deadline:
            return answer
        time.sleep(interval)


async def poll_until_async(
    ask: Callable[[], Answer],
    done: Callable[[Answer], object] = bool,
    *,
    seconds: float = 20.0,
    interval: float = POLL_INTERVAL,
) -> Answer:
    """:func:`poll_until` inside an event loop, which keeps running meanwhile."""
    deadline = time.monotonic() + seconds
    while True:
        answer = ask()
        if done(answer) or time.monotonic() >= deadline:
            return answer
        await asyncio.sleep(interval)


def accepts(address: tuple[str, int] | str) -> bool:
    """Whether a TCP (host, port) or a unix socket (its path) takes a connection now."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(address)
        except OSError:
            return False
    return True
