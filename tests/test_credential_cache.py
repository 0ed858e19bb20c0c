"""The cache of good Basic credentials: hits, misses, sharing one check, and its keys."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sidecar.config.settings import CacheSettings, Secret
from sidecar.credential_cache import CredentialCache
from sidecar.credentials import Credentials
from sidecar.people import Person

TTL = 300
ANNA = Person(
    user_id="anna.beispiel",
    display_name="Anna Beispiel",
    email="anna@school.example",
    groups=frozenset({"cn=pupils,ou=groups,dc=school,dc=example"}),
)
GOOD = Credentials(username="anna.beispiel", password="correct horse battery staple")


class Clock:
    def __init__(self, now: float = 5_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class WrongPassword(Exception):
    pass


class Directory:
    """A stand-in for the LDAP check: counts its calls, optionally waits for a gate."""

    def __init__(self, *, good: Credentials = GOOD, gate: asyncio.Event | None = None) -> None:
        self.good = good
        self.gate = gate
        self.calls: list[Credentials] = []

    async def check(self, credentials: Credentials) -> Person:
        self.calls.append(credentials)
        if self.gate is not None:
            await self.gate.wait()
        if credentials != self.good:
            raise WrongPassword
        return ANNA


def make_cache(clock: Clock | None = None, *, ttl: int = TTL, size: int = 100) -> CredentialCache:
    return CredentialCache(CacheSettings(basic_ttl=ttl, basic_size=size), clock=clock or Clock())


async def test_a_good_check_is_remembered() -> None:
    cache, directory = make_cache(), Directory()
    assert cache.cached(GOOD) is None
    assert await cache.get_or_check(GOOD, directory.check) == ANNA
    assert await cache.get_or_check(GOOD, directory.check) == ANNA
    assert directory.calls == [GOOD]
    assert cache.cached(GOOD) == ANNA
    assert len(cache) == 1


async def test_failures_are_never_remembered() -> None:
    cache, directory = make_cache(), Directory(good=Credentials("someone", "else"))
    for _ in range(3):
        with pytest.raises(WrongPassword):
            await cache.get_or_check(GOOD, directory.check)
    assert len(directory.calls) == 3
    assert len(cache) == 0
    assert cache.cached(GOOD) is None


async def test_a_failure_does_not_stop_a_later_success_from_being_remembered() -> None:
    cache = make_cache()
    with pytest.raises(WrongPassword):
        await cache.get_or_check(GOOD, Directory(good=Credentials("x", "y")).check)
    directory = Directory()
    assert await cache.get_or_check(GOOD, directory.check) == ANNA
    assert await cache.get_or_check(GOOD, directory.check) == ANNA
    assert len(directory.calls) == 1


async def test_another_password_for_the_same_user_is_checked() -> None:
    cache, directory = make_cache(), Directory()
    await cache.get_or_check(GOOD, directory.check)
    wrong = Credentials(username=GOOD.username, password="correct horse battery stapl")
    assert cache.cached(wrong) is None
    with pytest.raises(WrongPassword):
        await cache.get_or_check(wrong, directory.check)
    assert directory.calls == [GOOD, wrong]


async def test_the_same_password_for_another_user_is_checked() -> None:
    cache, directory = make_cache(), Directory()
    await cache.get_or_check(GOOD, directory.check)
    other = Credentials(username="bert", password=GOOD.password)
    with pytest.raises(WrongPassword):
        await cache.get_or_check(other, directory.check)
    assert directory.calls == [GOOD, other]


async def test_the_split_between_name_and_password_matters() -> None:
    joined = Credentials(username="anna", password="bcd")
    moved = Credentials(username="annab", password="cd")
    cache, directory = make_cache(), Directory(good=joined)
    await cache.get_or_check(joined, directory.check)
    assert cache.cached(moved) is None
    with pytest.raises(WrongPassword):
        await cache.get_or_check(moved, directory.check)


async def test_concurrent_identical_checks_share_one_call() -> None:
    gate = asyncio.Event()
    cache, directory = make_cache(), Directory(gate=gate)

    async def open_gate() -> None:
        # Runs after every caller has started and is waiting.
        gate.set()

    results = await asyncio.gather(
        *(cache.get_or_check(GOOD, directory.check) for _ in range(20)), open_gate()
    )
    assert results[:20] == [ANNA] * 20
    assert directory.calls == [GOOD]
    assert len(cache) == 1


async def test_concurrent_identical_failures_are_shared_and_not_remembered() -> None:
    gate = asyncio.Event()
    cache = make_cache()
    directory = Directory(good=Credentials("someone", "else"), gate=gate)

    async def open_gate() -> None:
        gate.set()

    results = await asyncio.gather(
        *(cache.get_or_check(GOOD, directory.check) for _ in range(20)),
        open_gate(),
        return_exceptions=True,
    )
    assert all(isinstance(result, WrongPassword) for result in results[:20])
    assert directory.calls == [GOOD]
    assert len(cache) == 0
    # The next attempt asks again.
    with pytest.raises(WrongPassword):
        await cache.get_or_check(GOOD, directory.check)
    assert len(directory.calls) == 2


async def test_concurrent_different_credentials_are_checked_apart() -> None:
    gate = asyncio.Event()
    cache, directory = make_cache(), Directory(gate=gate)
    wrong = Credentials(username=GOOD.username, password="guess")

    async def open_gate() -> None:
        gate.set()

    results = await asyncio.gather(
        cache.get_or_check(GOOD, directory.check),
        cache.get_or_check(wrong, directory.check),
        open_gate(),
        return_exceptions=True,
    )
    assert results[0] == ANNA
    assert isinstance(results[1], WrongPassword)
    assert directory.calls == [GOOD, wrong]


async def test_a_waiter_checks_for_itself_when_the_first_caller_is_cancelled() -> None:
    gate = asyncio.Event()
    cache, directory = make_cache(), Directory(gate=gate)
    first = asyncio.create_task(cache.get_or_check(GOOD, directory.check))
    second = asyncio.create_task(cache.get_or_check(GOOD, directory.check))
    # One turn of the loop (no waiting): the first checks, the second waits for it.
    await asyncio.sleep(0)
    assert directory.calls == [GOOD]
    first.cancel()
    gate.set()
    assert await second == ANNA
    assert first.cancelled()
    assert directory.calls == [GOOD, GOOD]


async def test_an_entry_lives_for_the_ttl() -> None:
    clock = Clock()
    cache, directory = make_cache(clock), Directory()
    await cache.get_or_check(GOOD, directory.check)
    clock.now += TTL - 1
    assert cache.cached(GOOD) == ANNA
    await cache.get_or_check(GOOD, directory.check)
    assert len(directory.calls) == 1
    clock.now += 1
    assert cache.cached(GOOD) is None
    await cache.get_or_check(GOOD, directory.check)
    assert len(directory.calls) == 2


async def test_a_ttl_of_zero_turns_the_cache_off() -> None:
    cache, directory = make_cache(ttl=0), Directory()
    for _ in range(3):
        assert await cache.get_or_check(GOOD, directory.check) == ANNA
    assert len(directory.calls) == 3
    assert cache.cached(GOOD) is None
    assert len(cache) == 0


async def test_the_size_is_bounded() -> None:
    cache = make_cache(size=2)
    for number in range(5):
        credentials = Credentials(username=f"user{number}", password="secret")
        await cache.get_or_check(credentials, Directory(good=credentials).check)
    assert len(cache) == 2


async def test_keys_hold_neither_the_name_nor_the_password() -> None:
    cache = make_cache()
    await cache.get_or_check(GOOD, Directory().check)
    keys = list(cache._people.keys())
    assert len(keys) == 1
    key = keys[0]
    assert len(key) == 32  # an HMAC-SHA256
    for secret in (GOOD.username, GOOD.password, "correct", "anna"):
        assert secret.encode() not in key
        assert secret.encode("utf-16-le") not in key
    assert key == cache._cache_key(GOOD)


def test_every_cache_has_its_own_key() -> None:
    one, two = make_cache(), make_cache()
    assert one._cache_key(GOOD) == one._cache_key(GOOD)
    assert one._cache_key(GOOD) != two._cache_key(GOOD)


async def test_concurrent_identical_checks_from_two_places_are_two_checks() -> None:
    """Each place's bans and counts are its own: a check from a banned place must
    not answer for another place, nor the other way round."""
    gate = asyncio.Event()
    cache, directory = make_cache(), Directory(gate=gate)

    async def open_gate() -> None:
        gate.set()

    callers = [cache.get_or_check(GOOD, directory.check, place=place) for place in "aabb"]
    results = await asyncio.gather(*callers, open_gate())
    assert results[:4] == [ANNA] * 4
    assert directory.calls == [GOOD, GOOD]


# -- kept across restarts (cache.basic_state_file) ------------------------------

SESSION_KEY = Secret(b"k" * 40)
OTHER_KEY = Secret(b"o" * 40)


class WallClock(Clock):
    pass


def names_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def kept_cache(
    state_file: Path,
    *,
    keys: tuple[Secret, ...] = (SESSION_KEY,),
    clock: Clock | None = None,
    wall: WallClock | None = None,
) -> CredentialCache:
    return CredentialCache(
        CacheSettings(basic_ttl=TTL, basic_size=100),
        keys=keys,
        state_file=state_file,
        clock=clock or Clock(),
        wall_clock=wall or WallClock(1_000_000.0),
    )


async def test_a_kept_cache_lets_people_in_after_a_restart_without_a_check(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "basic_cache"
    before = kept_cache(state_file)
    await before.get_or_check(GOOD, Directory().check)
    before.save()
    # Another process: another monotonic clock, the same session keys.
    after = kept_cache(state_file, clock=Clock(10.0))
    assert after.load() == 1
    assert after.cached(GOOD) == ANNA
    assert after.cached(Credentials(GOOD.username, "another password")) is None


async def test_a_kept_entry_lives_only_what_was_left_of_its_ttl(tmp_path: Path) -> None:
    state_file = tmp_path / "basic_cache"
    clock = Clock()
    before = kept_cache(state_file, clock=clock)
    await before.get_or_check(GOOD, Directory().check)
    clock.now += TTL - 100
    before.save()
    # The restart itself took 30 seconds.
    after_clock = Clock(10.0)
    after = kept_cache(state_file, clock=after_clock, wall=WallClock(1_000_030.0))
    assert after.load() == 1
    after_clock.now += 69
    assert after.cached(GOOD) == ANNA
    after_clock.now += 2
    assert after.cached(GOOD) is None


async def test_a_kept_file_holds_neither_name_nor_password(tmp_path: Path) -> None:
    state_file = tmp_path / "basic_cache"
    cache = kept_cache(state_file)
    await cache.get_or_check(GOOD, Directory().check)
    cache.save()
    sealed = state_file.read_bytes()
    for secret in (GOOD.password, GOOD.username, ANNA.display_name, ANNA.email):
        assert secret.encode() not in sealed
    assert state_file.stat().st_mode & 0o077 == 0
    assert names_in(tmp_path) == ["basic_cache"]  # no temporary file left


async def test_a_file_sealed_with_other_keys_is_ignored(tmp_path: Path) -> None:
    state_file = tmp_path / "basic_cache"
    cache = kept_cache(state_file, keys=(OTHER_KEY,))
    await cache.get_or_check(GOOD, Directory().check)
    cache.save()
    assert kept_cache(state_file).load() == 0


def test_a_damaged_or_missing_file_is_a_cold_cache(tmp_path: Path) -> None:
    state_file = tmp_path / "basic_cache"
    assert kept_cache(state_file).load() == 0
    state_file.write_bytes(b"not a sealed file")
    assert kept_cache(state_file).load() == 0


async def test_the_kept_key_is_derived_from_the_session_key(tmp_path: Path) -> None:
    # Two processes with the same session key agree on the cache key (that is
    # what lets an entry survive), and another session key gives another one.
    one = kept_cache(tmp_path / "one")
    two = kept_cache(tmp_path / "two")
    other = kept_cache(tmp_path / "three", keys=(OTHER_KEY,))
    await one.get_or_check(GOOD, Directory().check)
    one.save()
    (tmp_path / "one").rename(tmp_path / "two")
    assert two.load() == 1
    assert two.cached(GOOD) == ANNA
    assert other.load() == 0


async def test_without_a_state_file_nothing_is_written(tmp_path: Path) -> None:
    cache = CredentialCache(
        CacheSettings(basic_ttl=TTL, basic_size=100), keys=(SESSION_KEY,), clock=Clock()
    )
    await cache.get_or_check(GOOD, Directory().check)
    cache.save()
    assert cache.load() == 0
    assert names_in(tmp_path) == []


async def test_a_write_a_kill_cut_short_leaves_nothing_behind_at_the_next_start(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "basic_cache"
    before = kept_cache(state_file)
    await before.get_or_check(GOOD, Directory().check)
    before.save()
    assert names_in(tmp_path) == ["basic_cache"]
    # What a kill between writing and renaming leaves.
    (tmp_path / ".basic_cache.x1y2z3.tmp").write_bytes(b"half")
    after = kept_cache(state_file, clock=Clock(10.0))
    assert after.load() == 1
    assert names_in(tmp_path) == ["basic_cache"]
    assert oct(state_file.stat().st_mode & 0o777) == "0o600"
