"""The Redis-backed state against a real redis-server: parallel checks in several
processes, a Redis that refuses writes or does not answer, and what is written
once it answers again."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from sidecar.config.settings import GuestSettings, RegulationSettings, Secret, StateSettings
from sidecar.guest_links import GuestLinks, InvalidLink
from sidecar.metrics import Metrics
from sidecar.refusals import Banned, InvalidCredentials
from sidecar.regulation import Regulator
from sidecar.rooms import room_named
from sidecar.shared_state import (
    PAUSE_SECONDS,
    REFUSED_PAUSE_SECONDS,
    SharedState,
    close_idle_connections,
    open_redis,
    optional_text,
)
from sidecar.site_limits import SiteLimit
from testbed.redis_server import RedisServer

LIMIT = 3
SETTINGS = RegulationSettings(max_failures_per_user=LIMIT, max_failures_per_address=1000)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = open_redis(StateSettings(redis_url=redis_server.url))
    assert client is not None
    yield client
    await client.aclose()


def shared(redis: Redis, clock: Callable[[], float] | None = None) -> SharedState:
    if clock is None:
        return SharedState(redis, prefix="test:", metrics=Metrics())
    return SharedState(redis, prefix="test:", metrics=Metrics(), clock=clock)


async def guesses(regulators: list[Regulator], count: int, *, pause: float) -> int:
    """``count`` wrong passwords at once, spread over ``regulators``; how many got a bind."""
    binds = 0

    async def guess(regulator: Regulator) -> None:
        nonlocal binds
        try:
            async with regulator.attempt("anna", "192.0.2.1"):
                binds += 1
                await asyncio.sleep(pause)  # the bind, taking its time
                raise InvalidCredentials
        except (Banned, InvalidCredentials):
            return

    await asyncio.gather(*(guess(regulators[n % len(regulators)]) for n in range(count)))
    return binds


async def test_parallel_guesses_through_two_processes_get_the_limit_in_binds(
    redis: Redis,
) -> None:
    nodes = [Regulator(SETTINGS, shared=shared(redis)) for _ in range(2)]
    binds = await guesses(nodes, 40, pause=0.05)
    assert binds <= LIMIT
    # One at a time, through either node, the rest of the limit and no more.
    for number in range(10):
        binds += await guesses([nodes[number % 2]], 1, pause=0)
    assert binds == LIMIT
    assert await nodes[1].banned_for("anna", "192.0.2.1") > 0
    # Without the shared marks each would allow the limit: the test can tell.
    apart = [Regulator(SETTINGS) for _ in range(2)]
    assert await guesses(apart, 40, pause=0.05) == 2 * LIMIT


async def test_a_redis_that_refuses_writes_still_bans(
    redis: Redis, redis_server: RedisServer
) -> None:
    """A replica after a failover, or out of memory: reads answer, writes fail."""
    await redis.replicaof("127.0.0.1", 1)
    try:
        regulator = Regulator(SETTINGS, shared=shared(redis))
        binds = 0
        for _ in range(20):
            binds += await guesses([regulator], 1, pause=0)
        assert binds == LIMIT
    finally:
        await redis.replicaof("NO", "ONE")
    # Redis takes writes again and knows of no failure: this process's ban still holds.
    assert await guesses([regulator], 1, pause=0) == 0
    assert await regulator.banned_for("anna", "192.0.2.1") > 0


async def test_a_redis_that_refuses_connections_is_left_alone_for_a_moment() -> None:
    clock = Clock()
    client = open_redis(StateSettings(redis_url="unix:///nonexistent/redis.sock"))
    assert client is not None
    state = shared(client, clock)
    sent: list[str] = []

    def command(name: str) -> Callable[[Redis], Awaitable[object]]:
        def build(redis: Redis) -> Awaitable[object]:
            sent.append(name)
            return redis.get("x")

        return build

    assert await state.command("first", command("first"), optional_text) is None
    assert sent == ["first"]
    clock.now += REFUSED_PAUSE_SECONDS - 0.1
    assert await state.command("paused", command("paused"), optional_text) is None
    assert sent == ["first"]  # never sent
    clock.now += 0.2
    assert await state.command("again", command("again"), optional_text) is None
    assert sent == ["first", "again"]
    await client.aclose()


async def test_a_redis_that_does_not_answer_is_left_alone_for_a_while(
    redis_server: RedisServer,
) -> None:
    """A hung Redis (stopped, not ended): one command waits the timeout, the next
    ones for PAUSE_SECONDS are not sent at all."""
    clock = Clock()
    client = open_redis(StateSettings(redis_url=redis_server.url, timeout=0.1))
    assert client is not None
    state = shared(client, clock)
    sent: list[str] = []

    def command(name: str) -> Callable[[Redis], Awaitable[object]]:
        def build(redis: Redis) -> Awaitable[object]:
            sent.append(name)
            return redis.get("x")

        return build

    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        assert await state.command("first", command("first"), optional_text) is None
        clock.now += REFUSED_PAUSE_SECONDS + 0.1  # longer than after a refusal
        assert await state.command("paused", command("paused"), optional_text) is None
        clock.now = 1000.0 + PAUSE_SECONDS - 0.1
        assert await state.command("paused", command("paused"), optional_text) is None
        assert sent == ["first"]
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    clock.now += 0.2
    await state.command("again", command("again"), optional_text)
    assert sent == ["first", "again"]
    await client.aclose()


async def probe_bans(nodes: list[Regulator], probes: int, tag: str) -> int:
    """A ban made through the first node, looked for through the second, ``probes``
    times (a new name each); how many the second node saw."""
    seen = 0
    for number in range(probes):
        name = f"{tag}-{number}"
        await guesses_for(nodes[0], name, LIMIT)
        seen += await nodes[1].banned_for(name, "192.0.2.1") > 0
    return seen


async def guesses_for(regulator: Regulator, name: str, count: int) -> None:
    for _ in range(count):
        try:
            async with regulator.attempt(name, "192.0.2.1"):
                raise InvalidCredentials
        except (Banned, InvalidCredentials):
            pass


async def test_bans_are_shared_again_at_once_after_a_redis_restart(
    redis_server: RedisServer,
) -> None:
    """Every pooled connection is stale after a restart of Redis; each is replaced by
    its first command, which goes through: no probe after the restart misses a ban."""
    clock = Clock()
    # A timeout no busy machine reaches: this is about closed connections, not slow ones.
    settings = StateSettings(redis_url=redis_server.url, timeout=5.0)
    clients = [open_redis(settings), open_redis(settings)]
    try:
        nodes = [Regulator(SETTINGS, shared=shared(client, clock)) for client in clients if client]
        # Many connections in each pool, as under load.
        await asyncio.gather(
            *(guesses_for(nodes[number % 2], f"warm-{number}", 1) for number in range(40))
        )
        assert clients[0] is not None
        assert len(await clients[0].client_list()) >= 10
        assert await probe_bans(nodes, 5, "before") == 5
        redis_server.stop()
        redis_server.start()
        assert await probe_bans(nodes, 20, "after") == 20
        # A probe while Redis is down: refused, left alone a moment only.
        redis_server.stop()
        await guesses_for(nodes[0], "while-down", LIMIT)
        assert await nodes[1].banned_for("while-down", "192.0.2.1") == 0
        redis_server.start()
        clock.now += REFUSED_PAUSE_SECONDS
        assert await probe_bans(nodes, 20, "back") == 20
    finally:
        for client in clients:
            if client is not None:
                await client.aclose()


async def test_a_logout_made_while_redis_is_away_is_written_once_it_answers(
    redis: Redis, redis_server: RedisServer
) -> None:
    clock = Clock()
    state = shared(redis, clock)
    redis_server.stop()
    await state.mark("ended-session", "session-1", 4_000_000_000)
    redis_server.start()
    clock.now += PAUSE_SECONDS
    assert await state.marked("ended-session", "session-1") is None  # this call writes it
    other_node = shared(redis)
    assert await other_node.marked("ended-session", "session-1") == 4_000_000_000


async def test_a_link_made_while_redis_is_away_can_be_withdrawn_later(
    redis: Redis, redis_server: RedisServer
) -> None:
    clock = Clock()
    settings = GuestSettings(keys=(Secret(b"k" * 40),))
    here = GuestLinks(settings, shared=shared(redis, clock))
    elsewhere = GuestLinks(settings, shared=shared(redis))
    redis_server.stop()
    path = await here.create(room_named("Mathe7b"), 1, "anna", "Anna")
    redis_server.start()
    clock.now += PAUSE_SECONDS
    value = path.removeprefix("/auth/guest/")
    assert [link.room for link in await here.created_by("anna")] == ["Mathe7b"]
    # Listed there too now, and withdrawn through the other node.
    assert [link.room for link in await elsewhere.created_by("anna")] == ["Mathe7b"]
    (link,) = await elsewhere.created_by("anna")
    assert await elsewhere.withdraw(link.link_id, "anna")
    assert await here.created_by("anna") == []
    for node in (here, elsewhere):
        with pytest.raises(InvalidLink) as invalid:
            await node.open(value)
        assert invalid.value.problem == "withdrawn"


async def test_marks_answered_once_hold_while_redis_is_away(
    redis: Redis, redis_server: RedisServer
) -> None:
    settings = GuestSettings(keys=(Secret(b"k" * 40),))
    here = GuestLinks(settings, shared=shared(redis))
    elsewhere = GuestLinks(settings, shared=shared(redis))
    path = await here.create(room_named("Mathe7b"), 1, "anna", "Anna")
    (link,) = await elsewhere.created_by("anna")
    await elsewhere.withdraw(link.link_id, "anna")
    value = path.removeprefix("/auth/guest/")
    with pytest.raises(InvalidLink):
        await here.open(value)  # told by Redis, and kept
    redis_server.stop()
    with pytest.raises(InvalidLink):
        await here.open(value)


async def wrong_guess(regulator: Regulator, name: str = "anna") -> None:
    try:
        async with regulator.attempt(name, "192.0.2.1") as attempt:
            await attempt.found_entry(f"uid={name},ou=people")
            raise InvalidCredentials
    except (Banned, InvalidCredentials):
        pass


SPOILED = {
    "list": lambda redis, key: redis.rpush(key, "1", "2"),
    "hash": lambda redis, key: redis.hset(key, mapping={"1": "2"}),
    "sorted set": lambda redis, key: redis.zadd(key, {"1": 1e300}),
    "huge number": lambda redis, key: redis.set(key, "9" * 4000),
    "not a number": lambda redis, key: redis.set(key, b"\xff{1e9"),
}


@pytest.mark.parametrize("shape", SPOILED)
async def test_answers_of_the_wrong_shape_are_an_outage(redis: Redis, shape: str) -> None:
    """Every key the sidecar reads, of a type or value it never writes: each read falls
    back to this process's own state, is counted as an error, and raises nothing."""
    metrics = Metrics()
    state = SharedState(redis, prefix="test:", metrics=metrics)
    regulator = Regulator(SETTINGS, shared=state, metrics=metrics)
    links = GuestLinks(GuestSettings(keys=(Secret(b"k" * 40),)), shared=state)
    names = SiteLimit("guest-names", LIMIT, window=3600, ban_time=3600, shared=state)
    await state.mark("ended-session", "session-1", 4_000_000_000)
    path = await links.create(room_named("Mathe7b"), 1, "anna", "Anna")
    withdrawn = await links.create(room_named("Physik9a"), 1, "anna", "Anna")
    (withdrawn_link,) = [link for link in await links.created_by("anna") if link.room != "Mathe7b"]
    assert await links.withdraw(withdrawn_link.link_id, "anna")
    await wrong_guess(regulator)
    assert await names.wait_for("192.0.2.1") == 0
    keys = await redis.keys("*")
    kinds = {(key.decode() if isinstance(key, bytes) else key).split(":")[1] for key in keys}
    assert {"ended-session", "guest-link", "entry", "failures", "guest-names"} <= kinds, kinds
    for key in keys:
        await redis.delete(key)
        await SPOILED[shape](redis, key)

    assert await state.marked("ended-session", "session-1") is None
    assert (await links.open(path.removeprefix("/auth/guest/"))).room == "Mathe7b"
    with pytest.raises(InvalidLink):  # withdrawn here: this process knows
        await links.open(withdrawn.removeprefix("/auth/guest/"))
    assert [link.room for link in await links.created_by("anna")] == ["Mathe7b"]
    assert await regulator.banned_for("anna", "192.0.2.1") == 0
    for _ in range(LIMIT):
        await wrong_guess(regulator)
    assert await regulator.banned_for("anna", "192.0.2.1") > 0  # this process's own count
    assert [await names.wait_for("192.0.2.1") for _ in range(LIMIT)][-1] > 0
    counted = {labels[0] for labels in metrics.state_errors._metrics}
    assert "ended-session" in counted, counted


async def test_a_site_limit_holds_across_processes_and_falls_back_to_its_own(
    redis: Redis, redis_server: RedisServer
) -> None:
    nodes = [
        SiteLimit("guest-names", 30, window=3600, ban_time=3600, shared=shared(redis))
        for _ in range(2)
    ]
    allowed = [await nodes[n % 2].wait_for("192.0.2.1") == 0 for n in range(60)]
    assert sum(allowed) == 30
    assert all(allowed[:30])
    assert await nodes[1].wait_for("192.0.2.9") == 0  # another address has its own
    # Redis away: each process's own count, never an exception.
    redis_server.stop()
    alone = SiteLimit("guest-names", 3, window=3600, ban_time=3600, shared=shared(redis))
    assert [await alone.wait_for("192.0.2.2") == 0 for _ in range(5)] == [True] * 3 + [False] * 2


# -- round trips: what each login costs in Redis --------------------------------


class CountingState(SharedState):
    """A SharedState that notes the operation of every round trip it makes."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis, prefix="test:", metrics=Metrics())
        self.round_trips: list[str] = []

    async def _ask(self, operation: str, command: Awaitable[Any], expect: Any) -> Any:
        self.round_trips.append(operation)
        return await super()._ask(operation, command, expect)


async def login(
    regulator: Regulator, state: CountingState, name: str, entry: str | None, *, right: bool
) -> list[str]:
    """One password check as a directory that searches first makes it (``entry``:
    what the search found); the round trips it cost."""
    state.round_trips.clear()
    try:
        async with regulator.attempt(name, "192.0.2.7", entry_first=True) as attempt:
            if entry is None:
                raise InvalidCredentials  # found nothing
            await attempt.found_entry(entry)
            if not right:
                raise InvalidCredentials
            await attempt.succeeded()
    except InvalidCredentials:
        pass
    return list(state.round_trips)


async def under_way(redis: Redis) -> list[bytes]:
    return [key async for key in redis.scan_iter("test:under-way:*")]


async def test_a_login_costs_two_round_trips(redis: Redis) -> None:
    state = CountingState(redis)
    regulator = Regulator(SETTINGS, shared=state)
    entry = "uid=anna,ou=people,dc=school"
    # Begun against the name and the entry at once (the entry learnt), ended at once.
    for _ in range(2):
        assert await login(regulator, state, "anna", entry, right=True) == ["begin", "succeed"]
    assert await login(regulator, state, "Anna", entry, right=False) == ["begin", "fail"]
    # What Redis holds is what the counts need: the entry learnt, no mark left behind.
    assert await redis.get(state.key("entry", "name:anna")) == f"entry:{entry}".encode()
    assert await under_way(redis) == []


async def test_cached_credentials_learn_a_new_place_once_for_every_process(
    redis: Redis,
) -> None:
    """A cached answer reads the entry and the bans; at a place new to her it
    writes it once as a usual place, which the other process then knows too."""
    state = CountingState(redis)
    regulator = Regulator(SETTINGS, shared=state)
    entry = "uid=anna,ou=people,dc=school"
    await login(regulator, state, "anna", entry, right=True)
    trips = []
    for _ in range(2):
        state.round_trips.clear()
        await regulator.learn_places(await regulator.refuse_if_banned("anna", "198.51.100.9"))
        trips.append(list(state.round_trips))
    assert trips == [["entry", "read", "end"], ["entry", "read"]]
    other = Regulator(SETTINGS, shared=CountingState(redis))
    assert await other.refuse_if_banned("anna", "198.51.100.9") == ()
    assert await other.refuse_if_banned("anna", "198.51.100.10") != ()


async def test_a_name_the_directory_lacks_costs_the_round_trips_of_a_wrong_password(
    redis: Redis,
) -> None:
    state = CountingState(redis)
    regulator = Regulator(SETTINGS, shared=state)
    for number in range(2):
        wrong = await login(regulator, state, "bert", "uid=bert,dc=school", right=False)
        unknown = await login(regulator, state, f"nobody{number}", None, right=False)
        assert wrong == unknown == ["begin", "fail"]
    assert await under_way(redis) == []


async def test_the_checks_ban_is_seen_before_the_bind_and_the_failure_is_the_entrys(
    redis: Redis,
) -> None:
    """Two spellings of one entry share its count; its ban is told before the bind."""
    state = CountingState(redis)
    regulator = Regulator(SETTINGS, shared=state)
    entry = "uid=carla,ou=people,dc=school"
    for number in range(LIMIT):
        await login(regulator, state, f"carla{number}", entry, right=False)
    bound = False

    async def another_spelling() -> None:
        nonlocal bound
        async with regulator.attempt("Carla", "192.0.2.7", entry_first=True) as attempt:
            await attempt.found_entry(entry)
            bound = True

    with pytest.raises(Banned):
        await another_spelling()
    assert not bound
    assert await under_way(redis) == []


# -- the pool's connections ------------------------------------------------------------


async def clients(redis: Redis) -> int:
    """Connections Redis has open, this question's own among them."""
    return len(await redis.client_list())


async def test_connections_a_burst_opened_are_closed_once_idle(redis: Redis) -> None:
    """Requests piled up behind an outage each take a connection (up to the pool's
    cap); once idle they are closed again, and the next command opens what it needs."""
    # Each waits 0.2 s in Redis, holding its connection: twelve at once, twelve connections.
    await asyncio.gather(*(redis.blpop(["test:nothing"], timeout=0.2) for _ in range(12)))
    assert await clients(redis) >= 12
    closing = asyncio.create_task(close_idle_connections(redis, seconds=0.05))
    try:
        await asyncio.sleep(0.3)
        assert await clients(redis) <= 2  # the one asking, and perhaps one closing
        assert await redis.set("test:after", "1")
    finally:
        closing.cancel()
