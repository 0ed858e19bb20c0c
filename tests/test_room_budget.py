"""Who pays for a room-size request, in process: the rules behind "one pupil keeps
nobody else waiting" (the same through nginx is in test_waiting).

The room-size API is ``demo.jitsi_http``, the stand-in for Prosody's
``mod_muc_size``; clocks are frozen so that every check falls in one window.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from demo.jitsi_http import JitsiHttp
from sidecar.config.settings import ClassroomSettings, StateSettings
from sidecar.jitsi.room_budget import (
    NEW_NAMES_SHARE,
    PER_ADDRESS,
    PER_PERSON,
    SITE_PER_SECOND,
    RoomBudget,
    WindowCounts,
)
from sidecar.jitsi.room_size import ANSWER_SECONDS, Asker, RoomSize
from sidecar.metrics import Metrics
from sidecar.shared_state import SharedState, open_redis
from testbed.redis_server import RedisServer

DOMAIN = "meet.school.example"
NEW_NAMES_PER_SECOND = int(SITE_PER_SECOND * NEW_NAMES_SHARE)


@pytest.fixture
def fake() -> Iterator[JitsiHttp]:
    running = JitsiHttp(domain=DOMAIN).start()
    yield running
    running.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def room_size(
    fake: JitsiHttp, client: aiohttp.ClientSession, clock: Clock, budget: RoomBudget | None = None
) -> RoomSize:
    return RoomSize(
        ClassroomSettings(wait_for_teacher=True, room_size_url=fake.room_size_url),
        domain=DOMAIN,
        client=client,
        token_for=None,
        clock=clock,
        budget=budget or RoomBudget(clock=clock),
    )


def asked(fake: JitsiHttp, prefix: str) -> int:
    return sum(1 for request in fake.requests if request.room.startswith(prefix))


async def test_a_person_over_her_budget_waits_and_nobody_else_does(
    fake: JitsiHttp, client: aiohttp.ClientSession
) -> None:
    clock = Clock()
    rooms = room_size(fake, client, clock)
    fake.open("mathe7b")
    sprayer = Asker("eva", "192.0.2.7")
    answers = [await rooms.is_open(f"spray{number}", asker=sprayer) for number in range(40)]
    assert not any(answers)
    assert asked(fake, "spray") == PER_PERSON
    # Over her budget even an open room is "wait" for her (nothing fresh is known of it) ...
    assert not await rooms.is_open("mathe7b", asker=sprayer)
    assert asked(fake, "mathe7b") == 0
    # ... and not for anybody else at the same address, who gets in at once.
    assert await rooms.is_open("mathe7b", asker=Asker("ben", "192.0.2.7"))
    # Then the answer is fresh: shared by everybody, the sprayer too, at no cost.
    assert await rooms.is_open("mathe7b", asker=sprayer)
    assert asked(fake, "mathe7b") == 1
    # Her budget comes back with time.
    clock.now += 30
    await rooms.is_open("spray-later", asker=sprayer)
    assert asked(fake, "spray-later") == 1
    held = rooms.metrics.registry.get_sample_value(
        "jitsi_auth_room_size_held_total", {"budget": "person"}
    )
    assert held == 40 - PER_PERSON + 1


async def test_an_address_pays_for_names_nobody_else_waits_in(
    fake: JitsiHttp, client: aiohttp.ClientSession
) -> None:
    """Many accounts at one address, each a few made-up names: the address's budget;
    the rooms a class is in are not charged to it (a school may be one address)."""
    clock = Clock()
    rooms = room_size(fake, client, clock)
    fake.open("mathe7b")
    place = "198.51.100.1"
    assert await rooms.is_open("mathe7b", asker=Asker("teacherless-1", place))
    for person in range(PER_ADDRESS):
        if person % 20 == 19:
            clock.now += 2  # not the site's budget for new names: the address's
        assert not await rooms.is_open(f"name{person}", asker=Asker(f"p{person}", place))
    assert asked(fake, "name") == PER_ADDRESS - 1  # mathe7b's first check was charged
    assert not await rooms.is_open("one-more", asker=Asker("fresh", place))
    assert asked(fake, "one-more") == 0
    # Elsewhere, the same new name is asked.
    assert not await rooms.is_open("one-more", asker=Asker("fresh", "203.0.113.5"))
    assert asked(fake, "one-more") == 1
    # A room that was open is no new name: asked for somebody at the full address.
    clock.now += 2
    assert await rooms.is_open("mathe7b", asker=Asker("another", place))
    assert asked(fake, "mathe7b") == 2


async def test_rooms_in_use_go_before_new_names_when_the_site_budget_is_short(
    fake: JitsiHttp, client: aiohttp.ClientSession
) -> None:
    """Many people each asking a new name fill only a share of the site's budget; rooms
    that others wait in, or that were open, have the rest; past all of it the last
    answer stands."""
    clock = Clock()
    rooms = room_size(fake, client, clock)
    in_use = [f"class{number}" for number in range(SITE_PER_SECOND)]
    for number, room in enumerate(in_use):
        if number % 10 == 9:
            clock.now += 2  # first asked over a few seconds, as new names
        fake.open(room)
        assert await rooms.is_open(room, asker=Asker(f"first-{room}", f"10.0.{number}.1"))
    clock.now += ANSWER_SECONDS  # every answer expired, a new second
    for number in range(2 * SITE_PER_SECOND):
        await rooms.is_open(f"new{number}", asker=Asker(f"sprayer{number}", f"10.1.{number}.1"))
    assert asked(fake, "new") == NEW_NAMES_PER_SECOND
    before = asked(fake, "class")
    for room in in_use:
        fake.close(room)  # closed meanwhile: a room asked again reads closed
    answers = [
        await rooms.is_open(room, asker=Asker(f"pupil-{room}", "10.2.0.1")) for room in in_use
    ]
    asked_again = asked(fake, "class") - before
    assert asked_again == SITE_PER_SECOND - NEW_NAMES_PER_SECOND
    # Those not asked again kept the last answer (open) instead of a made-up "closed".
    assert answers.count(True) == SITE_PER_SECOND - asked_again
    again = [await rooms.is_open(room, asker=Asker(f"again-{room}", "10.3.0.1")) for room in in_use]
    assert again == answers  # fresh answers shared, the others still the last known


async def test_a_room_asked_by_many_at_once_costs_one_request(
    fake: JitsiHttp, client: aiohttp.ClientSession
) -> None:
    clock = Clock()
    rooms = room_size(fake, client, clock)
    fake.open("mathe7b")
    class_ = [Asker(f"pupil{number}", "10.9.0.1") for number in range(30)]
    answers = await asyncio.gather(*(rooms.is_open("mathe7b", asker=who) for who in class_))
    assert all(answers)
    assert asked(fake, "mathe7b") == 1
    # The first asker giving up does not take the answer from the others.
    clock.now += ANSWER_SECONDS
    first = asyncio.ensure_future(rooms.is_open("mathe7b", asker=class_[0]))
    await asyncio.sleep(0)
    others = asyncio.gather(*(rooms.is_open("mathe7b", asker=who) for who in class_[1:]))
    first.cancel()
    assert all(await others)
    assert asked(fake, "mathe7b") == 2


def test_a_count_table_is_bounded_idle_entries_first() -> None:
    clock = Clock()
    counts = WindowCounts(10, clock=clock, max_keys=100)
    counts.add("busy")
    for number in range(99):
        counts.add(f"idle{number}")
    clock.now += 5
    counts.add("busy")  # "busy" used last
    for number in range(50):
        counts.add(f"new{number}")
    assert len(counts) == 100
    assert counts.recent("busy") == 2
    assert counts.recent("idle0") == 0
    assert counts.recent("new49") == 1


async def test_with_redis_the_budget_is_the_sites_not_the_processes(
    fake: JitsiHttp, client: aiohttp.ClientSession, redis_server: RedisServer
) -> None:
    """Two workers sharing one Redis: Prosody gets the site's budget, not twice it; and
    a person's budget holds across them."""
    clock = Clock()
    wall = Clock()
    redis = open_redis(StateSettings(redis_url=redis_server.url))
    assert redis is not None
    try:
        workers = [
            room_size(
                fake,
                client,
                clock,
                RoomBudget(
                    SharedState(redis, prefix="site:", metrics=Metrics(), clock=clock),
                    clock=clock,
                    wall_clock=wall,
                ),
            )
            for _ in range(2)
        ]
        for number in range(2 * SITE_PER_SECOND):
            worker = workers[number % 2]
            await worker.is_open(f"new{number}", asker=Asker(f"p{number}", f"10.4.{number}.1"))
        assert asked(fake, "new") == NEW_NAMES_PER_SECOND
        wall.now += 60
        eva = Asker("eva", "10.5.0.1")
        for number in range(4 * PER_PERSON):
            await workers[number % 2].is_open(f"eva{number}", asker=eva)
        assert asked(fake, "eva") == PER_PERSON
        # Redis gone: each process counts for itself, and nobody sees an error.
        redis_server.stop()
        clock.now += 60
        assert not await workers[0].is_open("after", asker=Asker("anna", "10.6.0.1"))
        assert asked(fake, "after") == 1
    finally:
        await redis.aclose()
