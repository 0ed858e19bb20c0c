"""A stopping daemon brings the directory's deadlines forward (sidecar.deadlines)."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.deadlines import Deadlines


async def test_a_hurry_ends_work_under_way_early() -> None:
    deadlines = Deadlines(3600.0)
    started = asyncio.Event()

    async def long_work() -> None:
        async with deadlines.within():
            started.set()
            await asyncio.Event().wait()  # a directory that never answers

    work = asyncio.create_task(long_work())
    await started.wait()
    deadlines.hurry(0.01)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(work, 60)


async def test_after_a_hurry_new_work_gets_no_more_time_either() -> None:
    deadlines = Deadlines(3600.0)
    deadlines.hurry(0.01)
    with pytest.raises(TimeoutError):
        async with deadlines.within():
            await asyncio.wait_for(asyncio.Event().wait(), 60)


async def test_a_hurry_never_gives_work_more_time() -> None:
    deadlines = Deadlines(0.01)
    deadlines.hurry(3600.0)
    with pytest.raises(TimeoutError):
        async with deadlines.within():
            await asyncio.wait_for(asyncio.Event().wait(), 60)


async def test_work_that_ends_in_time_is_untouched() -> None:
    deadlines = Deadlines(3600.0)
    async with deadlines.within():
        await asyncio.sleep(0)
    deadlines.hurry(0.01)  # nothing under way any more: nothing to cut
