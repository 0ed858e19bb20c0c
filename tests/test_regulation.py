"""Failure counting and bans, with a clock the test moves by hand."""

from __future__ import annotations

import tracemalloc
from contextlib import AsyncExitStack

import pytest

from sidecar.config.settings import RegulationSettings
from sidecar.refusals import Banned, DirectoryUnavailable, InvalidCredentials
from sidecar.regulation import (
    BUSY_RETRY_SECONDS,
    KNOWN_PEOPLE_FACTOR,
    Regulator,
    fold_user_name,
    place_of,
)
from sidecar.regulation_store import MAX_KNOWN_PLACES, MAX_KNOWN_PLACES_PER_PERSON, KnownPlaces
from sidecar.sliding_counter import SlidingCounter

PER_USER = 3
OVERALL = 7
PER_ADDRESS = 5
WINDOW = RegulationSettings().window  # the declared default
BAN_TIME = 900
KNOWN_FOR = 86400


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


def make_regulator(clock: Clock, *, ban_time: int = BAN_TIME, overall: int = OVERALL) -> Regulator:
    settings = RegulationSettings(
        max_failures_per_user=PER_USER,
        max_failures_per_address=PER_ADDRESS,
        ban_time=ban_time,
        max_failures_per_user_overall=overall,
        known_address_lifetime=KNOWN_FOR,
    )
    return Regulator(settings, clock=clock)


@pytest.fixture
def regulator(clock: Clock) -> Regulator:
    return make_regulator(clock)


async def fail(regulator: Regulator, name: str, address: str, entry: str | None = None) -> None:
    """One wrong password, as the authenticator reports it."""
    try:
        async with regulator.attempt(name, address) as attempt:
            if entry is not None:
                await attempt.found_entry(entry)
            raise InvalidCredentials
    except InvalidCredentials:
        return


async def succeed(regulator: Regulator, name: str, address: str) -> None:
    async with regulator.attempt(name, address) as attempt:
        await attempt.succeeded()


async def test_nobody_is_banned_at_first(regulator: Regulator) -> None:
    assert await regulator.banned_for("anna", "192.0.2.1") == 0


async def test_a_name_is_banned_from_the_place_of_its_failures_only(regulator: Regulator) -> None:
    for _ in range(PER_USER - 1):
        await fail(regulator, "anna", "192.0.2.1")
    assert await regulator.banned_for("anna", "192.0.2.1") == 0
    await fail(regulator, "anna", "192.0.2.1")
    assert await regulator.banned_for("anna", "192.0.2.1") == BAN_TIME
    # From elsewhere she still gets in, and so do others from that place.
    assert await regulator.banned_for("anna", "192.0.2.9") == 0
    assert await regulator.banned_for("bert", "192.0.2.1") == 0
    with pytest.raises(Banned) as banned:
        async with regulator.attempt("anna", "192.0.2.1"):
            pass
    assert banned.value.scope == "user"
    assert banned.value.seconds == BAN_TIME


async def test_failures_from_everywhere_reach_a_higher_ceiling(regulator: Regulator) -> None:
    for number in range(OVERALL - 1):
        await fail(regulator, "anna", f"192.0.2.{number}")
    assert await regulator.banned_for("anna", "198.51.100.1") == 0
    await fail(regulator, "anna", "192.0.2.200")
    assert await regulator.banned_for("anna", "198.51.100.1") == BAN_TIME


async def test_her_usual_places_stay_open_when_the_name_is_banned(
    regulator: Regulator, clock: Clock
) -> None:
    await succeed(regulator, "anna", "198.51.100.7")
    for number in range(OVERALL):
        await fail(regulator, "anna", f"192.0.2.{number}")
    assert await regulator.banned_for("anna", "203.0.113.1") == BAN_TIME
    assert await regulator.banned_for("anna", "198.51.100.7") == 0
    await succeed(regulator, "anna", "198.51.100.7")
    # A place is usual for as long as known_address_lifetime after its last good login.
    clock.advance(KNOWN_FOR - 1)
    for number in range(OVERALL):
        await fail(regulator, "anna", f"192.0.2.{100 + number}")
    assert await regulator.banned_for("anna", "198.51.100.7") == 0
    clock.advance(1)
    assert await regulator.banned_for("anna", "198.51.100.7") == BAN_TIME - 1


async def test_an_address_is_banned_after_its_limit_across_names(regulator: Regulator) -> None:
    for number in range(PER_ADDRESS - 1):
        await fail(regulator, f"user{number}", "192.0.2.1")
    assert await regulator.banned_for("someone", "192.0.2.1") == 0
    await fail(regulator, "user-last", "192.0.2.1")
    assert await regulator.banned_for("someone", "192.0.2.1") == BAN_TIME
    assert await regulator.banned_for("user0", "192.0.2.2") == 0
    with pytest.raises(Banned) as banned:
        async with regulator.attempt("someone", "192.0.2.1"):
            pass
    assert banned.value.scope == "address"


async def test_a_shared_address_ban_spares_the_people_known_there(regulator: Regulator) -> None:
    """Thirty pupils' typos (or one pupil's spray) behind the school's one address
    must not lock the teachers out."""
    await succeed(regulator, "teacher", "192.0.2.1")
    for number in range(PER_ADDRESS):
        await fail(regulator, f"sprayed{number}", "192.0.2.1")
    assert await regulator.banned_for("newcomer", "192.0.2.1") == BAN_TIME
    assert await regulator.banned_for("teacher", "192.0.2.1") == 0
    await succeed(regulator, "teacher", "192.0.2.1")


async def test_ipv6_is_counted_by_its_64(regulator: Regulator) -> None:
    for host in range(1, PER_USER + 1):
        await fail(regulator, "anna", f"2001:db8:0:1::{host:x}")
    assert await regulator.banned_for("anna", "2001:db8:0:1:ffff::1") == BAN_TIME
    assert await regulator.banned_for("anna", "2001:db8:0:2::1") == 0


@pytest.mark.parametrize(
    ("address", "place"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:0:1:2:3:4:5", "2001:db8:0:1::/64"),
        ("2001:DB8:0:1::5", "2001:db8:0:1::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("not an address", "not an address"),
        ("", ""),
    ],
)
def test_place_of(address: str, place: str) -> None:
    assert place_of(address) == place


@pytest.mark.parametrize(
    ("spelling", "folded"),
    [
        ("Anna", "anna"),
        ("hausmeİster", "hausmeister"),  # U+0130: LDAP folds it to a plain i
        ("\uff34om.berger", "tom.berger"),  # fullwidth
        ("Müller", "muller"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
    ],
)
def test_fold_user_name(spelling: str, folded: str) -> None:
    assert fold_user_name(spelling) == folded


async def test_look_alike_spellings_share_one_count(regulator: Regulator) -> None:
    await fail(regulator, "hausmeister", "192.0.2.1")
    await fail(regulator, "HAUSMEISTER", "192.0.2.1")
    await fail(regulator, "hausmeİster", "192.0.2.1")
    for spelling in ("hausmeister", "hausmeİster", "Hausme\u0131ster".replace("\u0131", "i")):
        assert await regulator.banned_for(spelling, "192.0.2.1") == BAN_TIME


async def succeed_as(regulator: Regulator, name: str, address: str, entry: str) -> None:
    async with regulator.attempt(name, address, entry_first=True) as attempt:
        await attempt.found_entry(entry)
        await attempt.succeeded()


async def usual_entry(regulator: Regulator, name: str, address: str) -> str | None:
    async with regulator.attempt(name, address, entry_first=True) as attempt:
        return await attempt.usual_entry()


async def test_her_entry_is_named_before_the_search_only_at_her_usual_places(
    regulator: Regulator,
) -> None:
    entry = "uid=anna,ou=people,dc=school,dc=example"
    assert await usual_entry(regulator, "anna", "192.0.2.1") is None
    await succeed_as(regulator, "anna", "192.0.2.1", entry)
    assert await usual_entry(regulator, "anna", "192.0.2.1") == entry
    assert await usual_entry(regulator, "ANNA", "192.0.2.1") == entry
    assert await usual_entry(regulator, "anna", "192.0.2.9") is None
    assert await usual_entry(regulator, "bert", "192.0.2.1") is None


async def test_a_banned_entry_is_refused_before_a_bind_to_it(regulator: Regulator) -> None:
    """Another spelling's failures banned her entry here: naming it for a bind
    before the search is refused, as the search's finding it would be."""
    entry = "uid=anna,ou=people,dc=school,dc=example"
    await succeed_as(regulator, "anna", "192.0.2.1", entry)
    for _ in range(PER_USER):
        await fail(regulator, "a.mueller", "192.0.2.1", entry)
    with pytest.raises(Banned):
        await usual_entry(regulator, "anna", "192.0.2.1")


async def test_an_entry_named_before_the_search_is_counted_once(regulator: Regulator) -> None:
    entry = "uid=anna,ou=people,dc=school,dc=example"
    await succeed_as(regulator, "anna", "192.0.2.1", entry)

    async def wrong_password(spelling: str) -> None:
        async with regulator.attempt(spelling, "192.0.2.1", entry_first=True) as attempt:
            assert await attempt.usual_entry() == entry
            await attempt.found_entry(entry)  # the search confirms it
            raise InvalidCredentials

    for spelling in ("anna", "Anna", "ANNA")[:PER_USER]:
        with pytest.raises(InvalidCredentials):
            await wrong_password(spelling)
        if spelling != "ANNA":
            assert await regulator.banned_for("anna", "192.0.2.1") == 0
    assert await regulator.banned_for("anna", "192.0.2.1") == BAN_TIME


async def test_every_spelling_that_reaches_one_entry_shares_its_count(regulator: Regulator) -> None:
    """What the directory folds (or a filter matching uid or mail) joins here too."""
    entry = "uid=anna,ou=people,dc=school,dc=example"
    await fail(regulator, "anna", "192.0.2.1", entry)
    await fail(regulator, "anna@school.example", "192.0.2.1", entry)
    await fail(regulator, "ANNA.M", "192.0.2.1", entry)
    # A fourth spelling is refused once the search names the same entry: before the bind.
    with pytest.raises(Banned):
        async with regulator.attempt("a.mueller", "192.0.2.1") as attempt:
            await attempt.found_entry(entry)
    # The page for a spelling already seen knows the ban too.
    assert await regulator.banned_for("anna@school.example", "192.0.2.1") == BAN_TIME


async def test_checks_under_way_count_against_the_limit(regulator: Regulator) -> None:
    async with regulator.attempt("anna", "192.0.2.1"), regulator.attempt("anna", "192.0.2.1"):
        async with regulator.attempt("anna", "192.0.2.1"):
            with pytest.raises(Banned) as busy:
                async with regulator.attempt("anna", "192.0.2.1"):
                    pass
            assert busy.value.seconds == BUSY_RETRY_SECONDS
        # One ended: one more may start.
        async with regulator.attempt("anna", "192.0.2.1"):
            pass
    # None is left counted once they are over.
    for _ in range(PER_USER):
        async with regulator.attempt("anna", "192.0.2.1"):
            pass


async def test_an_outage_counts_against_nobody(regulator: Regulator) -> None:
    for _ in range(PER_USER * 3):
        with pytest.raises(DirectoryUnavailable):
            async with regulator.attempt("anna", "192.0.2.1"):
                raise DirectoryUnavailable
    assert await regulator.banned_for("anna", "192.0.2.1") == 0


async def test_a_ban_counts_down_and_ends(regulator: Regulator, clock: Clock) -> None:
    for _ in range(PER_USER):
        await fail(regulator, "anna", "192.0.2.1")
    clock.advance(100)
    assert await regulator.banned_for("anna", "192.0.2.1") == BAN_TIME - 100
    clock.advance(BAN_TIME - 101)
    assert await regulator.banned_for("anna", "192.0.2.1") == 1
    clock.advance(0.5)
    assert await regulator.banned_for("anna", "192.0.2.1") == 0.5
    clock.advance(0.5)
    assert await regulator.banned_for("anna", "192.0.2.1") == 0


async def test_after_a_ban_the_count_starts_again(clock: Clock) -> None:
    # A ban shorter than the window: the failures before it are still in the
    # window when it ends, and must not ban again at the next mistake.
    regulator = make_regulator(clock, ban_time=60)
    for _ in range(PER_USER):
        await fail(regulator, "anna", "")
    clock.advance(60)
    assert await regulator.banned_for("anna", "") == 0
    await fail(regulator, "anna", "")
    assert await regulator.banned_for("anna", "") == 0
    for _ in range(PER_USER - 1):
        await fail(regulator, "anna", "")
    assert await regulator.banned_for("anna", "") == 60


async def test_failures_older_than_the_window_do_not_count(
    regulator: Regulator, clock: Clock
) -> None:
    await fail(regulator, "anna", "192.0.2.1")  # at 0
    clock.advance(300)
    await fail(regulator, "anna", "192.0.2.1")  # at 300
    clock.advance(300)
    await fail(regulator, "anna", "192.0.2.1")  # at 600: the first one has left the window
    assert await regulator.banned_for("anna", "192.0.2.1") == 0
    clock.advance(WINDOW - 301)
    await fail(regulator, "anna", "192.0.2.1")  # at 899: 300, 600 and 899 are in the window
    assert await regulator.banned_for("anna", "192.0.2.1") == BAN_TIME


async def test_a_quiet_name_is_forgotten_after_the_window(
    regulator: Regulator, clock: Clock
) -> None:
    for _ in range(PER_USER - 1):
        await fail(regulator, "anna", "192.0.2.1")
    clock.advance(WINDOW)
    await fail(regulator, "anna", "192.0.2.1")
    await fail(regulator, "anna", "192.0.2.1")
    assert await regulator.banned_for("anna", "192.0.2.1") == 0


async def test_the_address_window_slides_too(regulator: Regulator, clock: Clock) -> None:
    for number in range(PER_ADDRESS - 1):
        await fail(regulator, f"user{number}", "192.0.2.1")
    clock.advance(WINDOW)
    await fail(regulator, "late", "192.0.2.1")
    assert await regulator.banned_for("someone", "192.0.2.1") == 0


async def test_success_clears_her_count_from_there_only(regulator: Regulator) -> None:
    for _ in range(PER_USER - 1):
        await fail(regulator, "anna", "192.0.2.1")
    await succeed(regulator, "ANNA", "192.0.2.1")
    for _ in range(PER_USER - 1):
        await fail(regulator, "anna", "192.0.2.1")
    # Two failures since the success: not banned from there.
    assert await regulator.banned_for("anna", "192.0.2.1") == 0
    # The address has counted all four, and one more reaches its limit for
    # everybody not known there.
    await fail(regulator, "bert", "192.0.2.1")
    assert await regulator.banned_for("carl", "192.0.2.1") == BAN_TIME
    assert await regulator.banned_for("anna", "192.0.2.1") == 0


async def test_an_empty_address_is_not_tracked_as_a_place(regulator: Regulator) -> None:
    for number in range(PER_ADDRESS * 2):
        await fail(regulator, f"user{number}", "")
    assert await regulator.banned_for("someone", "") == 0
    # The names themselves are still counted.
    for _ in range(PER_USER):
        await fail(regulator, "anna", "")
    assert await regulator.banned_for("anna", "") == BAN_TIME


async def test_a_check_counts_once_against_its_place_whatever_it_names(
    regulator: Regulator,
) -> None:
    """A name and the entry it leads to are one person, and one failure of the place."""
    for number in range(PER_ADDRESS - 1):
        await fail(regulator, f"user{number}", "192.0.2.1", f"uid=user{number},dc=example")
    assert await regulator.banned_for("someone", "192.0.2.1") == 0
    await fail(regulator, "late", "192.0.2.1", "uid=late,dc=example")
    assert await regulator.banned_for("someone", "192.0.2.1") == BAN_TIME


async def test_guesses_at_the_people_known_at_a_place_are_bounded_too(regulator: Regulator) -> None:
    """Known people are spared the address ban, up to ten times its limit: a pupil
    behind the school's address cannot guess at every teacher for ever."""
    teachers = [f"teacher{number}" for number in range(KNOWN_PEOPLE_FACTOR * PER_ADDRESS)]
    for teacher in teachers:
        await succeed(regulator, teacher, "192.0.2.1")
    for teacher in teachers[:-1]:
        await fail(regulator, teacher, "192.0.2.1")
    assert await regulator.banned_for(teachers[0], "192.0.2.1") == 0
    await fail(regulator, teachers[-1], "192.0.2.1")
    assert await regulator.banned_for(teachers[0], "192.0.2.1") == BAN_TIME
    with pytest.raises(Banned) as banned:
        async with regulator.attempt(teachers[1], "192.0.2.1"):
            pass
    assert banned.value.scope == "address"
    # Elsewhere, nobody is affected.
    assert await regulator.banned_for(teachers[0], "198.51.100.1") == 0


async def test_her_own_login_does_not_reset_the_count_from_everywhere(regulator: Regulator) -> None:
    for number in range(OVERALL - 1):
        await fail(regulator, "anna", f"192.0.2.{number}")
    await succeed(regulator, "anna", "198.51.100.7")
    await fail(regulator, "anna", "192.0.2.100")
    assert await regulator.banned_for("anna", "203.0.113.1") == BAN_TIME


async def test_parallel_guesses_at_many_names_from_one_place_are_bounded(
    regulator: Regulator,
) -> None:
    async with AsyncExitStack() as under_way:
        for number in range(PER_ADDRESS):
            await under_way.enter_async_context(regulator.attempt(f"user{number}", "192.0.2.1"))
        with pytest.raises(Banned) as busy:
            async with regulator.attempt("one-more", "192.0.2.1"):
                pass
        assert (busy.value.scope, busy.value.seconds) == ("address", BUSY_RETRY_SECONDS)


async def test_parallel_guesses_through_spellings_of_one_entry_are_bounded(
    regulator: Regulator,
) -> None:
    entry = "uid=anna,dc=example"
    async with AsyncExitStack() as under_way:
        for number in range(PER_USER):
            attempt = await under_way.enter_async_context(
                regulator.attempt(f"spelling{number}", "192.0.2.1")
            )
            await attempt.found_entry(entry)
        attempt = await under_way.enter_async_context(
            regulator.attempt("one-more-spelling", "192.0.2.1")
        )
        with pytest.raises(Banned) as busy:
            await attempt.found_entry(entry)
        assert (busy.value.scope, busy.value.seconds) == ("user", BUSY_RETRY_SECONDS)


# -- bounded memory: a spray of made-up names costs a fixed amount ----------------------

CAP = 500


def counter(clock: Clock, *, limit: int = 5) -> SlidingCounter:
    return SlidingCounter(limit, window=WINDOW, ban_time=BAN_TIME, clock=clock, max_keys=CAP)


def test_a_counter_holds_at_most_its_cap_of_keys(clock: Clock) -> None:
    counting = counter(clock)
    for number in range(20 * CAP):
        counting.record(f"sprayed-{number}")
        assert counting.counted_keys <= CAP
    assert counting.counted_keys > CAP // 2
    assert counting.banned_keys == 0
    # The newest are counted.
    assert counting.recent(f"sprayed-{20 * CAP - 1}") == 1


def test_a_spray_of_names_never_pushes_a_ban_out(clock: Clock) -> None:
    counting = counter(clock)
    for _ in range(5):
        counting.record("victim-at-attacker")
    assert counting.banned_for("victim-at-attacker") == BAN_TIME
    # Single failures, and failures just short of a ban, on ever new names.
    for number in range(20 * CAP):
        for _ in range(1 + number % 4):
            counting.record(f"sprayed-{number}")
    assert counting.banned_for("victim-at-attacker") == BAN_TIME
    # Only other bans push a ban out, the one that ends soonest first, once the
    # bans are full: each of them cost the limit in failures.
    clock.advance(1)
    for number in range(CAP - 1):
        for _ in range(5):
            counting.record(f"banned-{number}")
    assert counting.banned_for("victim-at-attacker") == BAN_TIME - 1
    for _ in range(5):
        counting.record("one-more-ban")
    assert counting.banned_for("victim-at-attacker") == 0
    assert counting.banned_for("one-more-ban") == BAN_TIME
    assert counting.banned_keys <= CAP


def test_a_count_near_its_limit_outlasts_a_spray_of_single_failures(clock: Clock) -> None:
    counting = counter(clock)
    for _ in range(4):
        counting.record("victim")
    for number in range(20 * CAP):
        counting.record(f"sprayed-{number}")
    assert counting.recent("victim") == 4
    counting.record("victim")
    assert counting.banned_for("victim") == BAN_TIME


def test_keys_past_the_window_go_before_fresh_ones(clock: Clock) -> None:
    """Keys with more failures are kept before keys with fewer, unless their
    failures are all past the window: then they are nothing worth keeping."""
    counting = counter(clock)
    for number in range(CAP // 2):
        for _ in range(3):
            counting.record(f"old-{number}")
    clock.advance(WINDOW + 1)
    for number in range(CAP // 2):
        counting.record(f"fresh-{number}")
    counting.record("one-more")
    assert all(counting.recent(f"fresh-{number}") == 1 for number in range(CAP // 2))
    assert counting.recent("one-more") == 1
    assert counting.counted_keys <= CAP // 2 + 1


async def test_a_spray_from_many_places_fills_no_table_past_its_cap(clock: Clock) -> None:
    """Ever new names from ever new /64s, as an attacker with an IPv6 prefix sends
    them: every table of the regulator stays at its cap, and the ban and the count
    that hold somebody back hold on."""
    settings = RegulationSettings(
        max_failures_per_user=PER_USER, max_failures_per_address=PER_ADDRESS
    )
    regulator = Regulator(settings, clock=clock, max_tracked_keys=CAP)
    for _ in range(PER_USER):
        await fail(regulator, "anna", "2001:db8:1::1")
    for _ in range(PER_USER - 1):
        await fail(regulator, "berta", "2001:db8:2::1")
    for number in range(10 * CAP):
        await fail(
            regulator, f"sprayed-{number}", f"2001:db8:{number >> 16:x}:{number & 0xFFFF:x}::1"
        )
        clock.advance(0.01)
    sizes = regulator.tracked()
    assert max(sizes.values()) <= CAP, sizes
    assert sizes["person counted"] > CAP // 2  # the spray did reach the cap
    assert await regulator.banned_for("anna", "2001:db8:1::1") > 0
    assert await regulator.banned_for("berta", "2001:db8:2::1") == 0
    await fail(regulator, "berta", "2001:db8:2::1")
    assert await regulator.banned_for("berta", "2001:db8:2::1") > 0


async def test_known_places_stay_at_their_cap(clock: Clock) -> None:
    regulator = Regulator(RegulationSettings(), clock=clock, max_tracked_keys=CAP)
    for number in range(3 * CAP):
        await succeed(regulator, f"person-{number}", f"192.0.2.{number % 250}")
    assert regulator.tracked()["known places"] <= CAP


def test_a_full_table_of_known_places_takes_little_memory() -> None:
    """Every person's usual places at the cap (a school's logins fill it over weeks):
    kept as hashes and times, not as the pairs' text in two tables."""
    places = KnownPlaces(30 * 86400, clock=lambda: 1_800_000_000.0, max_keys=MAX_KNOWN_PLACES)
    people = MAX_KNOWN_PLACES // MAX_KNOWN_PLACES_PER_PERSON
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for person in range(people):
            for place in range(MAX_KNOWN_PLACES_PER_PERSON):
                places.learn(f"schueler.{person:05d}\n2001:db8:{person:x}:{place:x}::")
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(places) == people * MAX_KNOWN_PLACES_PER_PERSON
    assert places.knows("schueler.00007\n2001:db8:7:3::")
    assert not places.knows("schueler.00007\n2001:db8:8:3::")
    # The pairs' text in both tables took about 280 bytes a pair.
    assert grown / len(places) < 200


async def test_a_person_is_known_at_her_places_seen_last_only(
    regulator: Regulator, clock: Clock
) -> None:
    """Logins from many addresses neither fill the table nor keep them all open."""
    places = [f"198.51.100.{number}" for number in range(MAX_KNOWN_PLACES_PER_PERSON + 4)]
    for place in places:
        await succeed(regulator, "anna", place)
        clock.advance(1)
    for number in range(OVERALL):
        await fail(regulator, "anna", f"192.0.2.{number}")
    assert await regulator.banned_for("anna", places[0]) == BAN_TIME
    assert await regulator.banned_for("anna", places[3]) == BAN_TIME
    assert await regulator.banned_for("anna", places[4]) == 0
    assert await regulator.banned_for("anna", places[-1]) == 0
    assert regulator.tracked()["known places"] == MAX_KNOWN_PLACES_PER_PERSON


# -- places learnt from cached credentials ---------------------------------------------


async def admitted_from_cache(regulator: Regulator, name: str, address: str) -> None:
    """A good answer from the Basic cache, as the authenticator gives it."""
    await regulator.learn_places(await regulator.refuse_if_banned(name, address))


async def test_cached_credentials_at_a_new_place_make_it_a_usual_place(
    regulator: Regulator,
) -> None:
    await succeed(regulator, "anna", "198.51.100.7")
    # Her browser sends the same Basic header from school: the cache answers, no bind.
    await admitted_from_cache(regulator, "anna", "203.0.113.5")
    for number in range(OVERALL):
        await fail(regulator, "anna", f"192.0.2.{number}")
    assert await regulator.banned_for("anna", "192.0.2.200") == BAN_TIME
    assert await regulator.banned_for("anna", "203.0.113.5") == 0


async def test_a_place_already_usual_is_not_written_again(regulator: Regulator) -> None:
    await succeed(regulator, "anna", "198.51.100.7")
    assert await regulator.refuse_if_banned("anna", "198.51.100.7") == ()
    assert await regulator.refuse_if_banned("anna", "203.0.113.5") != ()


async def test_a_banned_answer_learns_no_place(regulator: Regulator) -> None:
    for number in range(OVERALL):
        await fail(regulator, "anna", f"192.0.2.{number}")
    with pytest.raises(Banned):
        await admitted_from_cache(regulator, "anna", "203.0.113.5")
    assert await regulator.banned_for("anna", "203.0.113.5") == BAN_TIME


async def test_without_usual_places_a_cached_answer_learns_nothing(clock: Clock) -> None:
    settings = RegulationSettings(known_address_lifetime=0)
    regulator = Regulator(settings, clock=clock)
    assert await regulator.refuse_if_banned("anna", "203.0.113.5") == ()
    assert regulator.tracked()["known places"] == 0
